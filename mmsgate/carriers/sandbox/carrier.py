"""The sandbox carrier: virtual handsets, kept in the store, that behave as told.

A handset delivers (after its delay), rejects, stays unreachable (the message expires), cannot take
MMS at all, or throttles. A number never configured delivers at once. What a handset receives lands in
its inbox with every part; a handset can also send an MMS to one of an account's numbers.

Every submission is recorded once under its submission id (the message's tracking id) with a count of
calls, so a repeated submit is visible and never delivered twice. Reports are jobs due after the
handset's delay, so they survive restarts.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import msgspec

from mmsgate.carriers.base import (
    Carrier,
    CarrierSink,
    DeliveryReport,
    InboundFile,
    InboundMms,
    InboundSink,
    ReportStatus,
    SubmitResult,
)
from mmsgate.core.mms import Mms
from mmsgate.core.model import SETTLED, Job, JobEffect, JobOutcome
from mmsgate.core.records import Behaviour, SandboxSubmission
from mmsgate.core.roles import SandboxState
from mmsgate.errors import CarrierBusy, CarrierRejected

NAME = "sandbox"
OPERATOR_ID = "99999"
"""The operator id the sandbox reports (no real network uses it)."""

_encoder = msgspec.json.Encoder()


class SandboxCarrier(Carrier):
    """Delivers to virtual handsets."""

    name = NAME

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.sink: CarrierSink | None = None

    async def start(self, sink: CarrierSink) -> None:
        self.sink = sink

    async def submit(self, mms: Mms) -> SubmitResult:
        received = time.time()
        handset = await self.state.get_handset(mms.to)
        if handset.behaviour is Behaviour.NO_MMS:
            raise CarrierRejected("no-mms", f"handset {mms.to} cannot receive MMS", not_mms=True)
        if handset.behaviour is Behaviour.THROTTLES:
            raise CarrierBusy("throttles", f"handset {mms.to}: the network throttles, try later")
        report_at = None
        if handset.behaviour in (Behaviour.DELIVERS, Behaviour.REJECTS):
            report_at = received + handset.delay
        recorded = await self.state.sandbox_submit(
            SandboxSubmission(
                submission_id=mms.tracking_id,
                carrier_message_id=f"sbx-{secrets.token_hex(10)}",
                number=mms.to,
                outcome=handset.behaviour,
                mms=_encoder.encode(mms).decode(),
                received_at=received,
                report_at=report_at,
            )
        )
        return SubmitResult(recorded.carrier_message_id)

    async def reconcile(self, mms: Mms) -> SubmitResult | None:
        found = await self.state.sandbox_submission(mms.tracking_id)
        return SubmitResult(found.carrier_message_id) if found is not None else None


class SandboxReports:
    """Handler of ``sandbox-report`` jobs: the handset takes (or refuses) the MMS, the core hears of it."""

    def __init__(self, state: SandboxState, sink: CarrierSink) -> None:
        self.state = state
        self.sink = sink

    async def run(self, job: Job) -> JobOutcome:
        submission = await self.state.sandbox_submission(job.ref)
        if submission is None:
            return None
        if submission.outcome is Behaviour.DELIVERS:  # its inbox has it since the submission's record
            status, details = ReportStatus.DELIVERED, "Message Delivered"
        else:
            status, details = ReportStatus.REJECTED, f"handset {submission.number} rejected the message"
        settled = await self.sink.report(
            DeliveryReport(
                NAME,
                submission.carrier_message_id,
                status,
                details,
                extra={"operator-id": OPERATOR_ID},
                submission_id=submission.submission_id,
                carried_by=JobEffect.of(job),
            )
        )
        return SETTLED if settled else None  # else the worker ends the job

    async def attempt_failed(
        self, job: Job, error: Exception, attempt: int, max_attempts: int, next_run: datetime
    ) -> None:
        """Nothing to record: a report waiting for its submit's record is no failure of the message."""

    async def give_up(self, job: Job, error: Exception) -> None:
        """Nothing to record: the message stays submitted and expires (N103) if no report comes."""


@dataclass(frozen=True, slots=True)
class HandsetMms:
    """An MMS a handset is to send."""

    sender: str
    to: str
    subject: str | None = None
    text: str | None = None
    files: tuple[InboundFile, ...] = ()
    copy_to: tuple[str, ...] = ()


async def send_from_handset(sink: InboundSink, message: HandsetMms) -> str:
    """A handset sends an MMS (text first, then the files); returns the inbound tracking id."""
    files: list[InboundFile] = []
    if message.text:
        files.append(InboundFile("text/plain; charset=utf-8", message.text.encode(), "text.txt"))
    files.extend(message.files)
    return await sink.receive(
        InboundMms(
            carrier=NAME,
            sender=message.sender,
            recipients=(message.to, *message.copy_to),
            subject=message.subject,
            files=tuple(files),
            operator_id=OPERATOR_ID,
        )
    )
