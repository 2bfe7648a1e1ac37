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
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mmsgate.carriers.base import InboundFile
from mmsgate.carriers.plugin import EdgePorts
from mmsgate.carriers.sandbox.carrier import HandsetMms, send_from_handset
from mmsgate.carriers.sandbox.inbox import inbox_entry, inbox_part, sms_entry
from mmsgate.common.http import api_key_of, json_response
from mmsgate.contract import normalise_number
from mmsgate.core.model import AccountConfig
from mmsgate.core.records import Behaviour, Handset
from mmsgate.errors import ApiError, InboundRefused

MAX_BODY = 8 * 1024 * 1024


def _error(status: int, info: str) -> Response:
    return json_response({"status": "failure", "error-info": info}, status)


class SandboxApi:
    """The handlers of ``/v1/sandbox/``."""

    def __init__(self, ports: EdgePorts) -> None:
        self.state = ports.sandbox
        self.authenticate = ports.authenticate
        self.sink = ports.inbound
        self.blobs = ports.blobs

    def routes(self) -> list[Route]:
        return [
            Route("/v1/sandbox/handsets/{number}", self.handset, methods=["GET", "PUT"]),
            Route("/v1/sandbox/handsets/{number}/inbox", self.inbox, methods=["GET"]),
            Route("/v1/sandbox/handsets/{number}/inbox/{message}/{location}", self.part, methods=["GET"]),
            Route("/v1/sandbox/handsets/{number}/send", self.send, methods=["POST"]),
        ]

    async def _caller(self, request: Request) -> AccountConfig | Response:
        try:
            return await self.authenticate(api_key_of(request.headers.raw))
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
        handset = await self.state.get_handset(number)
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
            await self.state.set_handset(handset)
        return json_response({"number": number, "behaviour": handset.behaviour.value, "delay": handset.delay})

    async def inbox(self, request: Request) -> Response:
        call = await self._handset_call(request)
        if isinstance(call, Response):
            return call
        _, number = call
        rows = await self.state.sandbox_inbox(number)
        sms = await self.state.sandbox_sms_inbox(number)
        return json_response(
            {"number": number, "messages": [inbox_entry(*row) for row in rows], "sms": [sms_entry(s) for s in sms]}
        )

    async def part(self, request: Request) -> Response:
        call = await self._handset_call(request)
        if isinstance(call, Response):
            return call
        _, number = call
        part = await inbox_part(self.state, number, request.path_params["message"], request.path_params["location"])
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
