"""The VASP endpoint, ``POST /mm7/{name}``: what an MMSC sends the gateway over an MM7 connection.

Each request is authenticated with the connection's inbound credentials (HTTP Basic), parsed leniently,
and kept (its body in the blob store, a row and a job in one write) before it is answered, so nothing an
MMSC was told "1000 Success" for is lost; a worker then hands it to the core (``mm7-inbound`` jobs). The
answer is the matching Rsp with the request's TransactionID, well within the MMSC's 10 s. A request seen
before (same TransactionID, or the same LinkedID of an MO) is answered again and not handled twice.
Anything else than DeliverReq, DeliveryReportReq and ReadReplyReq is answered with fault 4003.

DeliveryReportReq: ``Retrieved`` and ``Forwarded`` end the message N102; ``Rejected`` and ``Unrecognised``
E102 (or the SMS fallback, for statuses listed in ``MMSGATE_SMS_FALLBACK_CODES``); ``Expired`` N103;
``Indeterminate`` and ``Deferred`` are recorded on the message, which keeps waiting.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Literal

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from mmsgate.carriers.base import CarrierSink, DeliveryReport, InboundFile, InboundMms, ReportStatus
from mmsgate.carriers.mm7.build import build_fault, build_response
from mmsgate.carriers.mm7.connection import MM7
from mmsgate.carriers.mm7.parse import parse_request
from mmsgate.carriers.mm7.records import DeliverReq, DeliveryReportReq, Mm7ParseError, OtherReq, ReadReplyReq
from mmsgate.carriers.mm7.status import DEFAULT_VERSION, Mm7Status
from mmsgate.core.model import Connection, Job
from mmsgate.core.passwords import check_password
from mmsgate.delivery.inbound import InboundRefused
from mmsgate.errors import NotFound, StoreError
from mmsgate.media.blobs import BlobStore
from mmsgate.store.base import Store

log = logging.getLogger("mmsgate.mm7")

XML = "text/xml; charset=utf-8"
_RESPONSES: dict[type, Literal["DeliverRsp", "DeliveryReportRsp", "ReadReplyRsp"]] = {
    DeliverReq: "DeliverRsp",
    DeliveryReportReq: "DeliveryReportRsp",
    ReadReplyReq: "ReadReplyRsp",
}
_KINDS = {DeliverReq: "deliver", DeliveryReportReq: "report", ReadReplyReq: "read-reply"}
_REPORTED = {
    "retrieved": ReportStatus.DELIVERED,
    "forwarded": ReportStatus.DELIVERED,
    "rejected": ReportStatus.REJECTED,
    "unrecognised": ReportStatus.REJECTED,
    "unrecognized": ReportStatus.REJECTED,
    "expired": ReportStatus.EXPIRED,
}
"""MMStatus → how the message ends; statuses not here (Indeterminate, Deferred) leave it waiting."""


class VaspEndpoint:
    """``POST /mm7/{name}``."""

    def __init__(self, store: Store, blobs: BlobStore, *, max_bytes: int, answer_within: float = 8.0) -> None:
        self.store = store
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.answer_within = answer_within
        self.after_request: Callable[[], None] | None = None
        """Called once a request is kept (``serve`` wakes its workers)."""
        self._connections: tuple[float, dict[str, Connection]] = (0.0, {})
        self._passed: dict[tuple[str, str], float] = {}

    async def handle(self, request: Request) -> Response:
        name = request.path_params["name"]
        connection = await self._connection(name)
        if connection is None:
            return Response(f"no MM7 connection named {name!r}\n", 404, media_type="text/plain")
        if not self._authorised(connection, request.headers.get("authorization", "")):
            return Response(
                "authentication required\n",
                401,
                headers={"WWW-Authenticate": f'Basic realm="mmsgate mm7 {name}"'},
                media_type="text/plain",
            )
        version = str(connection.config.get("version", DEFAULT_VERSION))
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
            digest = await asyncio.to_thread(self.blobs.put, body)
            kept = await asyncio.wait_for(
                self.store.mm7_receive(name, f"{kind}:{key}", kind, digest, content_type or XML), self.answer_within
            )
        except (TimeoutError, StoreError, OSError) as exc:
            log.warning("MM7 %s from %s not kept (%s); the MMSC is told to try again", kind, name, exc)
            return _fault(parsed.transaction_id, version, 3000, "Server error: try again later")
        if kept and self.after_request is not None:
            self.after_request()
        answer = build_response(
            _RESPONSES[type(parsed)],
            transaction_id=parsed.transaction_id,
            version=version,
            status=Mm7Status(1000, "Success"),
        )
        return Response(answer, 200, media_type=XML)

    async def _connection(self, name: str) -> Connection | None:
        at, known = self._connections
        if time.monotonic() - at > 1.0:
            known = {c.name: c for c in await self.store.list_connections(MM7)}
            self._connections = (time.monotonic(), known)
        return known.get(name)

    def _authorised(self, connection: Connection, header: str) -> bool:
        username, stored = connection.config.get("inbound_username"), connection.config.get("inbound_password_hash")
        if not username or not stored:
            return False  # a connection without inbound credentials takes nothing
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        key = (connection.name, hashlib.sha256(f"{stored}\0{encoded}".encode()).hexdigest())
        if self._passed.get(key, 0.0) > time.monotonic():
            return True  # checked within the minute: scrypt is slow on purpose
        try:
            given_user, _, given_password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if given_user != username or not check_password(given_password, str(stored)):
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
    body = build_fault(transaction_id=transaction_id, version=version, status=Mm7Status(code, text), by_vasp=True)
    return Response(body, status, media_type=XML)


class Mm7Inbound:
    """Handler of ``mm7-inbound`` jobs: a kept request, handed to the core."""

    def __init__(self, store: Store, blobs: BlobStore, sink: CarrierSink) -> None:
        self.store = store
        self.blobs = blobs
        self.sink = sink

    async def run(self, job: Job) -> None:
        connection, dedupe = job.ref.split(" ", 1)
        _, digest, content_type = await self.store.mm7_request(connection, dedupe)
        body = await asyncio.to_thread(self.blobs.get, digest)
        request = parse_request(body, content_type)
        if isinstance(request, DeliveryReportReq):
            await self._report(connection, request)
        elif isinstance(request, DeliverReq):
            await self._deliver(connection, request)
        elif isinstance(request, ReadReplyReq):
            await self._note(connection, request.message_id, "Read reply", f"MMStatus {request.mm_status}")

    async def _report(self, connection: str, request: DeliveryReportReq) -> None:
        details = f"MMStatus {request.mm_status}" + (f": {request.status_text}" if request.status_text else "")
        status = _REPORTED.get(request.mm_status.strip().lower())
        if status is None:
            await self._note(connection, request.message_id, "Delivery report", f"{details}; still waiting")
            return
        if status is ReportStatus.DELIVERED:
            details = "Message Delivered" if not request.status_text else request.status_text
        await self.sink.report(
            DeliveryReport(connection, request.message_id, status, details, code=request.mm_status.strip())
        )

    async def _deliver(self, connection: str, request: DeliverReq) -> None:
        files = tuple(
            InboundFile(p.content_type, p.data, p.location)
            for p in request.parts
            if not p.content_type.lower().startswith("application/smil")
        )
        try:
            await self.sink.receive(
                InboundMms(
                    carrier=connection,
                    sender=request.sender,
                    recipients=request.recipients,
                    subject=request.subject,
                    files=files,
                    linked_id=request.linked_id,
                )
            )
        except InboundRefused as exc:
            log.warning("MM7 MO from %s over %s dropped: %s", request.sender, connection, exc)

    async def _note(self, connection: str, message_id: str | None, status: str, details: str) -> None:
        if not message_id:
            return
        try:
            message = await self.store.find_by_carrier_id(connection, message_id)
        except NotFound:
            log.info("MM7 %s over %s for unknown message %s: %s", status.lower(), connection, message_id, details)
            return
        await self.store.record_event(message.tracking_id, status, details)

    async def give_up(self, job: Job, error: Exception) -> None:
        log.error("MM7 request %s could not be handled: %s", job.ref, error)
