"""The VASP endpoint, ``POST /mm7/{name}``: what an MMSC sends the gateway over an MM7 connection.

Each request is authenticated with the connection's inbound credentials (HTTP Basic), parsed leniently,
and kept (its body in the blob store, a row and a job in one write) before it is answered, so nothing an
MMSC was told "1000 Success" for is lost; a worker then hands it to the core (``mm7-inbound`` jobs). The
answer is the matching Rsp with the request's TransactionID, well within the MMSC's 10 s. A request seen
before (same TransactionID, or the same LinkedID of an MO) is answered again and not handled twice.
Anything else than DeliverReq, DeliveryReportReq and ReadReplyReq is answered with fault 4003.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from typing import Literal

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mmsgate.carriers.base import InboundSink
from mmsgate.carriers.mm7.records import DeliverReq, DeliveryReportReq, Mm7ParseError, OtherReq, ReadReplyReq
from mmsgate.carriers.mm7.settings import MM7, Mm7Connection
from mmsgate.carriers.mm7.status import Mm7Status
from mmsgate.core.passwords import check_password
from mmsgate.core.roles import Connections
from mmsgate.errors import ConfigError, StoreError

log = logging.getLogger("mmsgate.mm7")

XML = "text/xml; charset=utf-8"
_RESPONSES: dict[type, Literal["DeliverRsp", "DeliveryReportRsp", "ReadReplyRsp"]] = {
    DeliverReq: "DeliverRsp",
    DeliveryReportReq: "DeliveryReportRsp",
    ReadReplyReq: "ReadReplyRsp",
}
_KINDS = {DeliverReq: "deliver", DeliveryReportReq: "report", ReadReplyReq: "read-reply"}


class VaspEndpoint:
    """``POST /mm7/{name}``."""

    def __init__(
        self, connections: Connections, inbound: InboundSink, *, max_bytes: int, answer_within: float = 8.0
    ) -> None:
        self.connections = connections
        self.inbound = inbound
        self.max_bytes = max_bytes
        self.answer_within = answer_within
        self._connections: tuple[float, dict[str, Mm7Connection]] = (0.0, {})
        self._passed: dict[tuple[str, str], float] = {}

    async def handle(self, request: Request) -> Response:
        # the codec (lxml) is loaded by the first request, not by an API process that never gets one
        from mmsgate.carriers.mm7.build import build_response
        from mmsgate.carriers.mm7.parse import parse_request

        name = request.path_params["name"]
        connection = await self._connection(name)
        if connection is None:
            return Response(f"no MM7 connection named {name!r}\n", 404, media_type="text/plain")
        if not self._authorised(name, connection, request.headers.get("authorization", "")):
            return Response(
                "authentication required\n",
                401,
                headers={"WWW-Authenticate": f'Basic realm="mmsgate mm7 {name}"'},
                media_type="text/plain",
            )
        version = connection.version
        body = await self._body(request)
        if body is None:
            return _fault(None, version, 2007, f"the request exceeds {self.max_bytes} bytes", status=413)
        content_type = request.headers.get("content-type")
        try:
            parsed = (
                await asyncio.to_thread(parse_request, body, content_type)
                if len(body) > 65536
                else parse_request(body, content_type)
            )
        except Mm7ParseError as exc:
            return _fault(None, version, 2007, f"Message format corrupt: {exc}")
        version = parsed.version or version
        if isinstance(parsed, OtherReq):
            return _fault(parsed.transaction_id, version, 4003, f"Unsupported operation: {parsed.name}")
        if not parsed.transaction_id:
            return _fault(None, version, 4004, "Validation error: no TransactionID")
        kind = _KINDS[type(parsed)]
        key = parsed.linked_id if isinstance(parsed, DeliverReq) and parsed.linked_id else parsed.transaction_id
        try:
            await asyncio.wait_for(
                self.inbound.keep_request(name, f"{kind}:{key}", kind, body, content_type or XML), self.answer_within
            )
        except (TimeoutError, StoreError, OSError) as exc:
            log.warning("MM7 %s from %s not kept (%s); the MMSC is told to try again", kind, name, exc)
            return _fault(parsed.transaction_id, version, 3000, "Server error: try again later")
        answer = build_response(
            _RESPONSES[type(parsed)],
            transaction_id=parsed.transaction_id,
            version=version,
            status=Mm7Status(1000, "Success"),
        )
        return Response(answer, 200, media_type=XML)

    async def _connection(self, name: str) -> Mm7Connection | None:
        at, known = self._connections
        if time.monotonic() - at > 1.0:
            known = {}
            for connection in await self.connections.list_connections(MM7):
                try:
                    known[connection.name] = msgspec.convert(connection.config, Mm7Connection)
                except (msgspec.ValidationError, ConfigError) as exc:
                    log.error("MM7 connection %s cannot be used: %s", connection.name, exc)
            self._connections = (time.monotonic(), known)
        return known.get(name)

    def _authorised(self, name: str, connection: Mm7Connection, header: str) -> bool:
        username, stored = connection.inbound_username, connection.inbound_password_hash
        if not username or not stored:
            return False  # a connection without inbound credentials takes nothing
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        key = (name, hashlib.sha256(f"{stored}\0{encoded}".encode()).hexdigest())
        if self._passed.get(key, 0.0) > time.monotonic():
            return True  # checked within the minute: scrypt is slow on purpose
        try:
            given_user, _, given_password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if given_user != username or not check_password(given_password, stored):
            return False
        if len(self._passed) > 1000:
            self._passed.clear()
        self._passed[key] = time.monotonic() + 60.0
        return True

    async def _body(self, request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_bytes:
                    return None
                chunks.append(chunk)
        except ClientDisconnect:
            return b""
        return b"".join(chunks)


def _fault(transaction_id: str | None, version: str, code: int, text: str, *, status: int = 500) -> Response:
    from mmsgate.carriers.mm7.build import build_fault

    body = build_fault(transaction_id=transaction_id, version=version, status=Mm7Status(code, text), by_vasp=True)
    return Response(body, status, media_type=XML)
