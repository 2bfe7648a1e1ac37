"""The delivery engine: a message's ``deliver`` job, from accepted to a final state, and the reports
that carriers send back.

One job carries a message through its whole life (see :mod:`mmsgate.core.lifecycle`): it prepares the
media, composes the MMS, records ``submitting``, submits (within the carrier's throughput limit),
records ``submitted`` (N101) and then waits in the job table until the message's expiry. A delivery
report ends the message (N102 / E102) and the waiting job with it; if none comes, the job wakes at the
expiry and ends the message N103. Every step is a compare-and-set in the store, so a step repeated
after a crash or by a second worker changes nothing.

A carrier may report before the gateway has recorded what it took (its answer and its report race). Such
a report is kept in the store (:class:`~mmsgate.core.roles.KeptReports`), never retried and dropped: the
worker that records the submit applies it right after, and a sweep of every worker
(:meth:`Delivery.apply_kept_reports`) applies whatever a crash between the two left, until the message's
expiry.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from mmsgate.carriers.base import Carrier, DeliveryReport, ReportStatus, SubmitResult
from mmsgate.carriers.routing import Router
from mmsgate.carriers.throttle import SendLimiter
from mmsgate.common.cache import AccountSettings
from mmsgate.contract.fields import MMS_EXPIRY_MAX
from mmsgate.core import lifecycle
from mmsgate.core.codes import EventCode, MessageState
from mmsgate.core.compose import compose
from mmsgate.core.mms import Mms
from mmsgate.core.model import SETTLED, Job, JobEffect, JobOutcome, Message, Part, Step, iso, utcnow
from mmsgate.core.records import KeptReport, ReportKind
from mmsgate.core.retry import RETRYING, FailedAttempt, RetryPolicy, attempts_made
from mmsgate.core.roles import KeptReports, Lifecycle, Messages
from mmsgate.delivery.fallback import SmsFallback
from mmsgate.delivery.templates import message_failure
from mmsgate.errors import CarrierBusy, CarrierError, CarrierRejected, MediaError, NotFound, NotYet
from mmsgate.media.stage import MediaStage
from mmsgate.postbacks.events import PostbackBuilder

log = logging.getLogger("mmsgate.delivery")

S = MessageState

_SMS_WORK = frozenset({S.FALLBACK, S.SMS_SUBMITTING, S.SMS_SUBMITTED})
_UNRECORDED = frozenset({S.ACCEPTED, S.MEDIA_READY, S.SUBMITTING})
"""A report for a message in these states came before its submit's record: it is kept."""

KEEP_UNNAMED = MMS_EXPIRY_MAX
"""How long a report that names no recorded message is kept: a message lives no longer, so its submit is
recorded within that time or never."""

_REPORTED: dict[ReportStatus, tuple[MessageState, EventCode]] = {
    ReportStatus.DELIVERED: (S.DELIVERED, EventCode.DELIVERED),
    ReportStatus.REJECTED: (S.REJECTED, EventCode.REJECTED),
    ReportStatus.EXPIRED: (S.EXPIRED, EventCode.EXPIRED),
    ReportStatus.FAILED: (S.FAILED, EventCode.FAILED),
}


def _failure(message: Message, error: Exception) -> tuple[EventCode, str]:
    """The code and details of the failure a message's work met, as its failed attempts and its end say."""
    if isinstance(error, MediaError):
        return message_failure(error)
    if isinstance(error, CarrierError):
        if message.state in lifecycle.SMS_STATES:
            return EventCode.FAILED, f"fallback SMS: {error}"
        return EventCode.FAILED, f"carrier {message.carrier}: {error}" if message.carrier else str(error)
    return EventCode.QUEUE_ERROR, f"{type(error).__name__}: {error}"


class _FellBack(Exception):
    """The carrier cannot take the message as MMS and its SMS fallback was recorded: send it now."""


class Delivery:
    """Handler of ``deliver`` jobs, and the core's receiver of delivery reports."""

    def __init__(
        self,
        messages: Messages,
        lifecycle: Lifecycle,
        stage: MediaStage,
        carriers: Router[Carrier],
        postbacks: PostbackBuilder,
        accounts: AccountSettings,
        limiter: SendLimiter | None = None,
        *,
        fallback: SmsFallback | None = None,
        fallback_codes: frozenset[str] = frozenset(),
        policy: RetryPolicy | None = None,
        kept: KeptReports,
    ) -> None:
        self.messages = messages
        self.lifecycle = lifecycle
        self.kept = kept
        """Reports that came before their submit's record."""
        self.stage = stage
        self.carriers = carriers
        self.postbacks = postbacks
        self.accounts = accounts
        self.policy = policy or RetryPolicy()
        """Its backoff is also the wait before trying a busy carrier again."""
        self.limiter = limiter
        """The gateway-wide limit of the default carrier (connections have their own)."""
        self.fallback = fallback
        self.fallback_codes = fallback_codes
        """Carrier statuses that mean "cannot take MMS" (besides a carrier's own ``not_mms``)."""

    # the job ----------------------------------------------------------------------------------
    async def run(self, job: Job) -> JobOutcome:
        message = job.message if job.message is not None else await self.messages.find_message(job.ref)
        if lifecycle.is_final(message.state):
            return None
        if utcnow() >= message.expires_at:
            await self._expire(message)
            return None
        parts: Sequence[Part] | None = None
        fresh = False
        if message.state in (S.ACCEPTED, S.MEDIA_READY, S.SUBMITTING):
            carrier = self._carrier(message)
        if message.state is S.ACCEPTED:
            # media ready and the record before the submit, in one write
            parts = await self._prepare(message, carrier)
            if parts is None:  # another worker moved it meanwhile: go on from what is stored
                message = await self.messages.find_message(job.ref)
                if message.state in (S.MEDIA_READY, S.SUBMITTING):
                    carrier = self._carrier(message)
            else:
                message, fresh = msgspec.structs.replace(message, state=S.SUBMITTING), True
        if message.state in (S.MEDIA_READY, S.SUBMITTING):
            try:
                if await self._submit(message, parts, job, carrier, fresh=fresh):
                    return SETTLED
            except _FellBack:
                message = msgspec.structs.replace(message, state=S.FALLBACK)
            except CarrierBusy as exc:
                # throttled: try again later, as long as the message lives (not counted as a failure)
                delay = self.policy.busy(job.attempts, exc.retry_after)
                log.info(
                    "message %s: carrier %s busy, again in %.0f s: %s",
                    message.tracking_id,
                    carrier.name,
                    delay,
                    exc,
                )
                return min(utcnow() + timedelta(seconds=delay), message.expires_at)
        if message.state in _SMS_WORK and self.fallback is not None:
            return await self.fallback.run(message, job)
        return message.expires_at  # wait for the report; the job ends the message N103 if none comes

    def _carrier(self, message: Message) -> Carrier:
        """The message's carrier: the one recorded with it, else the one its number routes to."""
        if message.carrier is not None:
            known = self.carriers.get(message.carrier)
            if known is not None:
                return known
            if message.state is S.SUBMITTING:
                raise CarrierError(
                    "unknown-carrier",
                    f"carrier {message.carrier} is no longer configured; it may have the message, which is not "
                    "sent elsewhere",
                    definite=False,
                )
        carrier, broken = self.carriers.route(message.to)
        if carrier is None:
            raise CarrierError("no-route", f"no carrier connection serves {message.to}")
        if broken is not None:
            raise CarrierError("unusable", broken)
        return carrier

    async def attempt_failed(
        self, job: Job, error: Exception, attempt: int, max_attempts: int, next_run: datetime
    ) -> None:
        """An event in the message's timeline for each failed attempt: what failed, attempt n of m, the next
        try's time (no code, so no postback). A message that changed under the attempt (NotYet) is no failure:
        it is only looked at again."""
        if isinstance(error, NotYet):
            return
        message = await self.messages.find_message(job.ref)
        if lifecycle.is_final(message.state):
            return
        _, reason = _failure(message, error)
        failed = FailedAttempt(reason, attempt, max_attempts, next_run)
        await self.lifecycle.record_event(message.tracking_id, RETRYING, failed.details())

    async def give_up(self, job: Job, error: Exception) -> None:
        """The job will not be tried again: end the message with the failure that stopped it, saying how
        often it was tried."""
        try:
            message = await self.messages.find_message(job.ref)
        except NotFound:
            log.warning("job %s: message %s is gone", job.id, job.ref)
            return
        code, details = _failure(message, error)
        await self._step(message, S.FAILED, code, f"{details} ({attempts_made(job.attempts)})")

    # steps ------------------------------------------------------------------------------------
    async def _prepare(self, message: Message, route: Carrier) -> Sequence[Part] | None:
        """Prepare the parts and record the message media-ready and submitting; None if it was no
        longer accepted."""
        carrier = route.name
        if message.mms_id is not None:
            parts = await self.messages.list_parts(message.mms_id)
            copies = [dataclasses.replace(p, owner_id=message.tracking_id) for p in parts]
            done = await self.lifecycle.media_ready(
                message.tracking_id,
                copies,
                code=None,
                status="Media ready",
                details=f"content of template {message.mms_id}",
                submitting=carrier,
            )
            return copies if done else None
        prepared = await self.stage.prepare(
            message.tracking_id,
            message.sending.slides,
            adapt_images=await self.accounts.transcoding(message.account_id),
            transcode_av=False,
            use_cache=message.cache_content,
        )
        if prepared.adapted:
            code = EventCode.TRANSCODED_SENT
            details = "content was adapted to the carrier profile"
            done = await self.lifecycle.media_ready(
                message.tracking_id,
                prepared.parts,
                code=code.value,
                status=code.status,
                details=details,
                postback=await self.postbacks.for_message(message, code, details),
                submitting=carrier,
            )
        else:
            details = "content checked" if prepared.parts else "text only"
            done = await self.lifecycle.media_ready(
                message.tracking_id,
                prepared.parts,
                code=None,
                status="Media ready",
                details=details,
                submitting=carrier,
            )
        return prepared.parts if done else None

    async def _submit(
        self, message: Message, parts: Sequence[Part] | None, job: Job, carrier: Carrier, *, fresh: bool
    ) -> bool:
        """Submit (or reconcile) and record it; True when that record also released the job."""
        if parts is None:
            parts = await self.messages.list_parts(message.tracking_id)
        mms = compose(message, parts)
        result: SubmitResult | None = None
        if message.state is S.SUBMITTING and not fresh:
            # an earlier attempt stopped between the call and its record: ask before sending again
            result = await carrier.reconcile(mms)
            if result is not None:
                log.info("message %s: reconciled with %s as %s", message.tracking_id, carrier.name, result)
        elif message.state is S.MEDIA_READY and not await self.lifecycle.advance(
            Step(
                message.tracking_id,
                S.SUBMITTING,
                None,
                "Submitting",
                f"to carrier {carrier.name}",
                carrier=carrier.name,
            )
        ):
            raise NotYet(f"message {message.tracking_id} changed while being submitted")
        if result is None:
            result = await self._call_carrier(message, mms, carrier)
            if result is None:
                return False
        details = f"submitted to carrier {carrier.name} as {result.carrier_message_id}"
        wait = JobEffect.of(job, message.expires_at.timestamp())
        recorded = await self._step(
            message,
            S.SUBMITTED,
            EventCode.SENT,
            details,
            carrier_message_id=result.carrier_message_id,
            carrier_name=carrier.name,
            jobs=(wait,) if wait is not None else (),
        )
        if recorded:  # a report that came before this record waits for it
            kept = await self.kept.kept_report(message.tracking_id, carrier.name, result.carrier_message_id)
            if kept is not None:
                await self._apply_kept(kept, await self.messages.find_message(message.tracking_id))
        return recorded and wait is not None

    async def _call_carrier(self, message: Message, mms: Mms, carrier: Carrier) -> SubmitResult | None:
        if self.limiter is not None and carrier is self.carriers.default:
            await self.limiter.acquire()
        try:
            return await carrier.submit(mms)
        except CarrierRejected as exc:
            details = f"carrier {carrier.name}: {exc}"
            if exc.not_mms or exc.status in self.fallback_codes:
                if message.sending.disable_fallback_sms:
                    details += "; the message disables the fallback SMS"
                elif self.fallback is None:
                    details += "; no SMS fallback is configured"
                elif await self.fallback.decide(message, details):
                    raise _FellBack from exc
                else:
                    raise NotYet(f"message {message.tracking_id} changed while falling back") from exc
            await self._step(message, S.REJECTED, EventCode.REJECTED, details)
            return None
        except CarrierError as exc:
            if exc.definite:  # not taken: the next attempt submits afresh instead of reconciling
                await self.lifecycle.advance(
                    Step(message.tracking_id, S.MEDIA_READY, None, "Not taken", f"carrier {carrier.name}: {exc}")
                )
            raise

    async def _expire(self, message: Message) -> None:
        details = f"not delivered by the expiry time {iso(message.expires_at)}"
        await self._step(message, S.EXPIRED, EventCode.EXPIRED, details)

    async def _step(
        self,
        message: Message,
        target: MessageState,
        code: EventCode,
        details: str,
        *,
        carrier_message_id: str | None = None,
        carrier_name: str | None = None,
        close_job: bool = False,
        extra: dict[str, str] | None = None,
        jobs: tuple[JobEffect, ...] = (),
    ) -> bool:
        return await self.lifecycle.advance(
            Step(
                message.tracking_id,
                target,
                code.value,
                code.status,
                details,
                postback=await self.postbacks.for_message(
                    message,
                    code,
                    details,
                    extra=extra,
                    sent_as="SMS" if message.state in lifecycle.SMS_STATES else "MMS",
                ),
                carrier=carrier_name if carrier_message_id else None,
                carrier_message_id=carrier_message_id,
                close_job=close_job,
                jobs=jobs,
            )
        )

    # reports ----------------------------------------------------------------------------------
    async def report(self, report: DeliveryReport) -> bool:
        """A carrier's delivery report: end the message (and its waiting job) as reported; True when that
        write also ended the job that carried the report (``report.carried_by``). A report that came before
        its submit's record is kept until that record exists (False: the carrying job ends as done)."""
        message = await self._reported(report)
        if message is None or message.state in _UNRECORDED:
            await self._keep(report, message)
            return False
        return await self._apply(message, report)

    async def _reported(self, report: DeliveryReport) -> Message | None:
        try:
            if report.submission_id is not None:
                return await self.messages.find_message(report.submission_id)
            return await self.messages.find_by_carrier_id(report.carrier, report.carrier_message_id)
        except NotFound:
            return None

    async def _keep(self, report: DeliveryReport, message: Message | None) -> None:
        now = utcnow()
        kept = KeptReport(
            ReportKind.MMS,
            report.carrier,
            report.carrier_message_id,
            report.status.value,
            report.details,
            received_at=now,
            expires_at=message.expires_at if message is not None else now + KEEP_UNNAMED,
            submission_id=report.submission_id,
            code=report.code,
            extra=dict(report.extra),
        )
        if await self.kept.keep_report(kept):
            log.info(
                "report (%s) from %s for %s came before its submit was recorded: kept until it is",
                report.status.value,
                report.carrier,
                message.tracking_id if message is not None else report.carrier_message_id,
            )
        # the submit's record may have been written meanwhile, its worker finding nothing kept yet
        again = await self._reported(report)
        if again is not None and again.state not in _UNRECORDED:
            await self._apply_kept(kept, again)

    async def _apply(self, message: Message, report: DeliveryReport) -> bool:
        target, code = _REPORTED[report.status]
        details = report.details
        if target is S.REJECTED and message.state is S.SUBMITTED and report.code in self.fallback_codes:
            details = f"carrier {report.carrier}: {report.details}"
            if message.sending.disable_fallback_sms:
                details += "; the message disables the fallback SMS"
            elif self.fallback is None:
                details += "; no SMS fallback is configured"
            elif await self.fallback.decide(message, details, wake=True):
                return False
        carried = (report.carried_by,) if report.carried_by is not None else ()
        return await self._step(message, target, code, details, close_job=True, extra=report.extra, jobs=carried)

    async def _apply_kept(self, kept: KeptReport, message: Message) -> None:
        """Apply a kept report to its message, now recorded (nothing changes if it has ended meanwhile),
        and forget it."""
        if kept.kind is ReportKind.SMS:
            if self.fallback is not None and message.state is S.SMS_SUBMITTED:
                await self.fallback.settle(message)
        else:
            report = DeliveryReport(
                kept.carrier,
                kept.carrier_message_id,
                ReportStatus(kept.status),
                kept.details,
                extra=dict(kept.extra),
                submission_id=kept.submission_id,
                code=kept.code,
            )
            if await self._apply(message, report):
                log.info("message %s: the report kept since %s applied", message.tracking_id, iso(kept.received_at))
        await self.kept.forget_report(kept)

    async def apply_kept_reports(self, limit: int = 100) -> int:
        """The sweep: apply the kept reports whose submit is recorded by now (a crash may have come between
        that record and its check), and drop those whose message's expiry passed without one, saying so.
        Returns how many were applied or dropped."""
        done = 0
        for kept, tracking_id in await self.kept.matched_reports(limit):
            try:
                await self._apply_kept(kept, await self.messages.find_message(tracking_id))
            except Exception:  # one that cannot be applied must not stop the others: said, and tried again
                log.exception("report kept for message %s could not be applied", tracking_id)
            else:
                done += 1
        for kept in await self.kept.expire_reports(utcnow(), limit):
            log.warning(
                "report (%s) from %s for %s kept since %s dropped: no submit was recorded for it by %s",
                kept.status,
                kept.carrier,
                kept.submission_id or kept.carrier_message_id,
                iso(kept.received_at),
                iso(kept.expires_at),
            )
            done += 1
        return done
