"""``/v1/sandbox/``: the sandbox carrier's virtual handsets over HTTP (the CLI offers the same).

    PUT  /v1/sandbox/handsets/{number}            {"behaviour": "delivers", "delay": 2}
    GET  /v1/sandbox/handsets/{number}
    GET  /v1/sandbox/handsets/{number}/inbox      newest first, every part described
    GET  /v1/sandbox/handsets/{number}/inbox/{carrier-message-id}/{location}   one part's bytes
    POST /v1/sandbox/handsets/{number}/send       {"to", "subject", "text", "files": [{"content-type",
                                                   "name", "data" (base64)}], "copy-to": [...]}

Every call needs a valid ``x-api-key``; a handset may only send to a number of the key's account.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from mmsgate.api.auth import Authenticator
from mmsgate.api.endpoint import json_response
from mmsgate.carriers.base import InboundFile, InboundSink
from mmsgate.carriers.sandbox import HandsetMms, send_from_handset
from mmsgate.contract.numbers import normalise_number
from mmsgate.core.compose import Mms, MmsPart
from mmsgate.core.model import AccountConfig, Behaviour, Handset, SandboxSms, iso
from mmsgate.delivery.inbound import InboundRefused
from mmsgate.errors import ApiError
from mmsgate.media.blobs import BlobStore
from mmsgate.store.base import Store

_mms = msgspec.json.Decoder(Mms)
MAX_BODY = 8 * 1024 * 1024


async def inbox_part(store: Store, number: str, carrier_message_id: str, location: str) -> MmsPart | None:
    """One part of an MMS in a handset's inbox, by the MMS's carrier message id and the part's location."""
    for received_id, mms_json, _ in await store.sandbox_inbox(number, limit=1000):
        if received_id == carrier_message_id:
            return next((p for p in _mms.decode(mms_json).parts if p.location == location), None)
    return None


def inbox_entry(carrier_message_id: str, mms_json: str, delivered_at: datetime) -> dict[str, Any]:
    """One inbox message as the CLI and the API show it: text parts inline, media described."""
    mms = _mms.decode(mms_json)
    parts: list[dict[str, Any]] = []
    for part in mms.parts:
        entry: dict[str, Any] = {
            "slide": part.slide,
            "content-id": part.content_id,
            "location": part.location,
            "content-type": part.content_type,
            "size": part.size,
        }
        if part.data is not None:
            entry["text"] = part.data.decode("utf-8", "replace")
        if part.sha256 is not None:
            entry["sha256"] = part.sha256
        parts.append(entry)
    return {
        "carrier-message-id": carrier_message_id,
        "tracking-id": mms.tracking_id,
        "from": mms.from_mask or mms.sender,
        "to": mms.to,
        "subject": mms.subject,
        "delivered": iso(delivered_at),
        "smil": mms.smil,
        "parts": parts,
    }


def _error(status: int, info: str) -> Response:
    return json_response({"status": "failure", "error-info": info}, status)


class SandboxApi:
    def __init__(self, store: Store, auth: Authenticator, sink: InboundSink, blobs: BlobStore) -> None:
        self.store = store
        self.auth = auth
        self.sink = sink
        self.blobs = blobs

    async def _caller(self, request: Request) -> AccountConfig | Response:
        try:
            return await self.auth.account_for(request.headers.get("x-api-key"))
        except ApiError as exc:
            return _error(401 if exc.code.value == "E104" else 403, exc.info)

    async def _json(self, request: Request) -> dict[str, Any] | Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return _error(413, f"the body is over {MAX_BODY} bytes")
        try:
            data = msgspec.json.decode(body) if body else {}
        except msgspec.DecodeError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object")
        return data

    async def _handset_call(self, request: Request) -> tuple[AccountConfig, str] | Response:
        """The caller's account and the handset number of the path, or the answer that refuses the call."""
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        number = normalise_number(request.path_params["number"])
        if number is None:
            return _error(400, "the handset number must be digits in international format")
        return caller, number

    async def handset(self, request: Request) -> Response:
        call = await self._handset_call(request)
        if isinstance(call, Response):
            return call
        _, number = call
        handset = await self.store.get_handset(number)
        if request.method == "PUT":  # fields left out keep their current values
            data = await self._json(request)
            if isinstance(data, Response):
                return data
            try:
                behaviour = Behaviour(data.get("behaviour", handset.behaviour.value))
            except ValueError:
                return _error(400, f"behaviour must be one of {', '.join(b.value for b in Behaviour)}")
            delay = data.get("delay", handset.delay)
            if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 86400:
                return _error(400, "delay must be a number of seconds from 0 to 86400")
            handset = Handset(number, behaviour, float(delay))
            await self.store.set_handset(handset)
        return json_response({"number": number, "behaviour": handset.behaviour.value, "delay": handset.delay})

    async def inbox(self, request: Request) -> Response:
        call = await self._handset_call(request)
        if isinstance(call, Response):
            return call
        _, number = call
        rows = await self.store.sandbox_inbox(number)
        sms = await self.store.sandbox_sms_inbox(number)
        return json_response(
            {"number": number, "messages": [inbox_entry(*row) for row in rows], "sms": [sms_entry(s) for s in sms]}
        )

    async def part(self, request: Request) -> Response:
        call = await self._handset_call(request)
        if isinstance(call, Response):
            return call
        _, number = call
        part = await inbox_part(self.store, number, request.path_params["message"], request.path_params["location"])
        if part is None:
            return _error(404, "no such part in this handset's inbox")
        data = part.data if part.data is not None else self.blobs.get(part.sha256 or "")
        return Response(data, media_type=part.content_type)

    async def send(self, request: Request) -> Response:
        call = await self._handset_call(request)
        if isinstance(call, Response):
            return call
        caller, number = call
        data = await self._json(request)
        if isinstance(data, Response):
            return data
        to = normalise_number(data.get("to"))
        if to is None:
            return _error(400, "`to` must be a number in international format")
        if to not in caller.numbers:
            return _error(400, f"{to} is not a number of this account")
        files: list[InboundFile] = []
        for i, item in enumerate(data.get("files") or [], 1):
            if not isinstance(item, dict) or not isinstance(item.get("content-type"), str):
                return _error(400, f"files[{i}] needs a content-type and base64 data")
            try:
                raw = base64.b64decode(str(item.get("data", "")), validate=True)
            except (binascii.Error, ValueError):
                return _error(400, f"files[{i}].data is not base64")
            files.append(InboundFile(item["content-type"], raw, item.get("name")))
        copy_to = tuple(n for n in (normalise_number(c) for c in data.get("copy-to") or []) if n is not None)
        subject, text = data.get("subject"), data.get("text")
        if not (subject is None or isinstance(subject, str)) or not (text is None or isinstance(text, str)):
            return _error(400, "subject and text must be strings")
        try:
            tracking_id = await send_from_handset(
                self.sink, HandsetMms(number, to, subject, text, tuple(files), copy_to)
            )
        except InboundRefused as exc:
            return _error(400, str(exc))
        return json_response({"status": "success", "tracking-id": tracking_id}, 202)


def sms_entry(sms: SandboxSms) -> dict[str, object]:
    """A received SMS as the sandbox API and CLI show it."""
    return {
        "message-id": sms.message_id,
        "tracking-id": sms.tracking_id,
        "from": sms.sender,
        "text": sms.text,
        "received": iso(sms.received_at),
    }
