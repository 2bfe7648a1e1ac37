"""Handler of ``mm7-inbound`` jobs: a request an MMSC posted, kept by the VASP endpoint before it was
answered, handed to the delivery engine's sink.

DeliveryReportReq: ``Retrieved`` and ``Forwarded`` end the message N102; ``Rejected`` and ``Unrecognised``
E102 (or the SMS fallback, for statuses listed in ``MMSGATE_SMS_FALLBACK_CODES``); ``Expired`` N103;
``Indeterminate`` and ``Deferred`` are recorded on the message, which keeps waiting. DeliverReq (an MO)
becomes an inbound MMS (N401); ReadReplyReq an event on the message.
"""

from __future__ import annotations

import logging
from datetime import datetime

from mmsgate.carriers.base import CarrierSink, DeliveryReport, InboundFile, InboundMms, ReportStatus
from mmsgate.carriers.mm7.parse import parse_request
from mmsgate.carriers.mm7.records import DeliverReq, DeliveryReportReq, ReadReplyReq
from mmsgate.core.model import Job
from mmsgate.errors import InboundRefused

log = logging.getLogger("mmsgate.mm7")

_REPORTED = {
    "retrieved": ReportStatus.DELIVERED,
    "forwarded": ReportStatus.DELIVERED,
    "rejected": ReportStatus.REJECTED,
    "unrecognised": ReportStatus.REJECTED,
    "unrecognized": ReportStatus.REJECTED,
    "expired": ReportStatus.EXPIRED,
}
"""MMStatus → how the message ends; statuses not here (Indeterminate, Deferred) leave it waiting."""


class KeptRequests:
    """Handler of ``mm7-inbound`` jobs."""

    def __init__(self, sink: CarrierSink) -> None:
        self.sink = sink

    async def run(self, job: Job) -> None:
        connection, dedupe = job.ref.split(" ", 1)
        kept = await self.sink.kept_request(connection, dedupe)
        request = parse_request(kept.body, kept.content_type)
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
        if message_id:
            await self.sink.note(connection, message_id, status, details)

    async def attempt_failed(
        self, job: Job, error: Exception, attempt: int, max_attempts: int, next_run: datetime
    ) -> None:
        """Nothing to record: a kept request is the carrier's, not a message's work; the worker logs it."""

    async def give_up(self, job: Job, error: Exception) -> None:
        log.error("MM7 request %s could not be handled: %s", job.ref, error)
