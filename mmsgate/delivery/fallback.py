"""SMS fallback: when an MMS cannot go as MMS, one SMS with the fallback text and a link to a page the
gateway hosts with the message's content (contract section 5).

It continues the message's ``deliver`` job (see :mod:`mmsgate.core.lifecycle`): ``fallback`` (decided,
with its reason) → ``sms-submitting`` (recorded before the connector is called) → ``sms-submitted``
(each segment's SMSC id recorded, the job waiting for the message's expiry) → ``sms-delivered`` (N202)
once every segment's receipt says delivered, or ``sms-failed`` (E202) at the first that says it was not.
Receipts are kept as they come, so one that overtakes the submit's record is applied by that record, or by
the delivery engine's sweep of kept reports if the worker stopped in between.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta

from mmsgate.carriers.base import Sms, SmsConnector
from mmsgate.carriers.routing import Router
from mmsgate.contract.fields import MMS_EXPIRY_MAX
from mmsgate.core.codes import EventCode, MessageState
from mmsgate.core.model import SETTLED, Job, JobEffect, JobOutcome, Message, Step, utcnow
from mmsgate.core.records import SmsReceipt, SmsStatus
from mmsgate.core.retry import RetryPolicy
from mmsgate.core.roles import Lifecycle, Messages
from mmsgate.errors import CarrierBusy, CarrierError, CarrierRejected
from mmsgate.postbacks.events import PostbackBuilder

log = logging.getLogger("mmsgate.fallback")

S = MessageState

LINK_BYTES = 9
"""Randomness of a hosted page's code: 72 bits, 12 URL-safe characters."""


def page_code() -> str:
    return secrets.token_urlsafe(LINK_BYTES)


def sms_text(fallback_text: str | None, link: str | None) -> str:
    """The SMS: the fallback text, a space and the link (either may be absent)."""
    return " ".join(part for part in (fallback_text, link) if part)


class SmsFallback:
    """Sends a message's fallback SMS and ends it by the receipts."""

    def __init__(
        self,
        messages: Messages,
        lifecycle: Lifecycle,
        router: Router[SmsConnector],
        postbacks: PostbackBuilder,
        public_url: Callable[[], Awaitable[str]],
        *,
        companion: Callable[[str | None], SmsConnector | None] = lambda _: None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.messages = messages
        self.lifecycle = lifecycle
        self.router = router
        """The configured SMS connections."""
        self.companion = companion
        """The SMS connector that goes with a carrier (by name; None: the default carrier), used when no SMS
        connection routes the number: the sandbox's handsets take the fallback of what the sandbox was given,
        and only that (a real handset's fallback never "arrives" in a virtual inbox)."""
        self.postbacks = postbacks
        self.public_url = public_url
        self.policy = policy or RetryPolicy()

    async def decide(self, message: Message, reason: str, *, wake: bool = False) -> bool:
        """Record that the message falls back to SMS, and why (``wake``: from outside the message's job,
        which then runs at once); False if the message had moved on meanwhile."""
        return await self.lifecycle.advance(
            Step(message.tracking_id, S.FALLBACK, None, "Falling back to SMS", reason, wake_job=wake)
        )

    async def run(self, message: Message, job: Job) -> JobOutcome:
        """The job's turn for a message in one of the fallback states."""
        if message.state is S.SMS_SUBMITTED:
            await self.settle(message)
            return message.expires_at
        connector, broken = self.router.route(message.to)
        if connector is None and broken is None:
            connector = self.companion(message.carrier)
        if connector is None or broken is not None:
            details = broken or f"no SMS connection serves {message.to}"
            await self._end(message, S.SMS_FAILED, EventCode.SMS_FAILED, details)
            return None
        sms = Sms(
            tracking_id=message.tracking_id,
            sender=message.from_mask or message.sender,
            to=message.to,
            text=sms_text(message.sending.fallback_sms_text, await self._link(message)),
            expires_at=message.expires_at,
        )
        if message.state is S.SMS_SUBMITTING:
            # an earlier attempt stopped between the call and its record
            if not connector.reconciles:
                details = (
                    f"the gateway stopped while submitting the SMS to {connector.name}: "
                    "it may or may not have been sent, and is not sent again"
                )
                await self._end(message, S.SMS_FAILED, EventCode.SMS_FAILED, details)
                return None
            result = await connector.reconcile(sms)
            if result is not None:
                return await self._submitted(message, connector, result.message_ids, job)
        elif not await self.lifecycle.advance(
            Step(message.tracking_id, S.SMS_SUBMITTING, None, "Submitting SMS", f"to {connector.name}")
        ):
            return None  # moved on meanwhile (expired, or another worker): nothing to send
        try:
            result = await connector.submit(sms)
        except CarrierBusy as exc:
            await self.lifecycle.advance(
                Step(message.tracking_id, S.FALLBACK, None, "SMS not taken", f"{connector.name}: {exc}")
            )
            delay = self.policy.busy(job.attempts, exc.retry_after)
            log.info(
                "message %s: SMS connection %s busy, again in %.0f s: %s", sms.tracking_id, connector.name, delay, exc
            )
            return min(utcnow() + timedelta(seconds=delay), message.expires_at)
        except CarrierRejected as exc:
            await self._end(message, S.SMS_FAILED, EventCode.SMS_FAILED, f"{connector.name} refused the SMS: {exc}")
            return None
        except CarrierError as exc:
            if exc.definite:
                await self.lifecycle.advance(
                    Step(message.tracking_id, S.FALLBACK, None, "SMS not taken", f"{connector.name}: {exc}")
                )
                raise
            details = f"{connector.name}: {exc}; the SMS may or may not have been sent, and is not sent again"
            await self._end(message, S.SMS_FAILED, EventCode.SMS_FAILED, details)
            return None
        return await self._submitted(message, connector, result.message_ids, job)

    async def _link(self, message: Message) -> str | None:
        if message.sending.disable_fallback_sms_link:
            return None
        expires = message.sending.fallback_link_expires_at or utcnow() + timedelta(days=365)
        page = await self.lifecycle.create_hosted_page(message.tracking_id, page_code(), expires)
        return f"{(await self.public_url()).rstrip('/')}/m/{page.code}"

    async def _submitted(
        self, message: Message, connector: SmsConnector, message_ids: tuple[str, ...], job: Job
    ) -> JobOutcome:
        details = f"to {connector.name} in {len(message_ids)} part(s) as {', '.join(message_ids)}"
        wait = JobEffect.of(job, message.expires_at.timestamp())
        step = Step(message.tracking_id, S.SMS_SUBMITTED, None, "SMS submitted", details, jobs=(wait,) if wait else ())
        recorded = await self.lifecycle.sms_submitted(step, connector.name, message_ids)
        if recorded:
            await self.settle(message)  # receipts that came before this record
            return SETTLED if wait is not None else message.expires_at
        return None

    async def receipt(self, receipt: SmsReceipt) -> None:
        """An SMSC's receipt for one segment: kept, and the message ended once its segments say how."""
        tracking_id = await self.lifecycle.record_sms_receipt(receipt, keep_until=utcnow() + MMS_EXPIRY_MAX)
        if tracking_id is None and receipt.status is not SmsStatus.ENROUTE:
            # applied by the submit's record when it comes, or by the sweep of kept reports after a crash
            log.info(
                "receipt from %s for %s came before its SMS was recorded: kept", receipt.connector, receipt.message_id
            )
        if tracking_id is None or receipt.status is SmsStatus.ENROUTE:
            return
        await self.settle(await self.messages.find_message(tracking_id))

    async def settle(self, message: Message) -> None:
        """End a submitted SMS when its receipts tell: E202 at the first segment not delivered, N202 when
        every segment was."""
        segments = await self.messages.sms_segments(message.tracking_id)
        if not segments:
            return
        failed = next((s for s in segments if s.status in (SmsStatus.FAILED, SmsStatus.EXPIRED)), None)
        if failed is not None:
            details = f"SMS part {failed.seq} of {failed.total} not delivered ({failed.connector}: {failed.details})"
            await self._end(message, S.SMS_FAILED, EventCode.SMS_FAILED, details, close_job=True)
        elif len(segments) == segments[0].total and all(s.status == SmsStatus.DELIVERED for s in segments):
            details = "SMS delivered" if len(segments) == 1 else f"SMS delivered ({len(segments)} parts)"
            await self._end(message, S.SMS_DELIVERED, EventCode.SMS_DELIVERED, details, close_job=True)

    async def _end(
        self, message: Message, target: MessageState, code: EventCode, details: str, *, close_job: bool = False
    ) -> bool:
        postback = await self.postbacks.for_message(message, code, details, sent_as="SMS")
        return await self.lifecycle.advance(
            Step(message.tracking_id, target, code.value, code.status, details, postback=postback, close_job=close_job)
        )
