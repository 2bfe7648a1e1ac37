"""The Store suite for reports kept before their submit's record (``KeptReports``, ``Messages.pending_report``
and the receipts ``Lifecycle.record_sms_receipt`` keeps): kept once, found once the record exists, shown as
the message's pending report, and expired. Every test runs against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from mmsgate.core.codes import MessageState
from mmsgate.core.model import Step, utcnow
from mmsgate.core.records import KeptReport, ReportKind, SmsReceipt, SmsStatus
from mmsgate.store import Store
from tests.conftest import Caller
from tests.integration.test_store_delivery import accepted, falling_back

S = MessageState


def report(carrier: str, carrier_message_id: str, *, submission_id: str | None = None, days: float = 3) -> KeptReport:
    now = utcnow()
    return KeptReport(
        ReportKind.MMS,
        carrier,
        carrier_message_id,
        "delivered",
        "Message Delivered",
        received_at=now,
        expires_at=now + timedelta(days=days),
        submission_id=submission_id,
        code="Retrieved",
        extra={"operator-id": "99999"},
    )


async def submitting(store: Store, caller: Caller, n: int, carrier: str) -> str:
    tracking_id = await accepted(store, caller, n)
    assert await store.lifecycle.media_ready(
        tracking_id, [], code=None, status="Media ready", details="x", submitting=carrier
    )
    return tracking_id


async def submitted(store: Store, tracking_id: str, carrier_message_id: str) -> None:
    step = Step(tracking_id, S.SUBMITTED, "N101", "Sent", "taken", carrier_message_id=carrier_message_id)
    assert await store.lifecycle.advance(step)


async def test_a_report_naming_its_message_waits_for_the_submits_record(store: Store, caller: Caller) -> None:
    tracking_id = await submitting(store, caller, 1, "sandbox")
    early = report("sandbox", "sbx-1", submission_id=tracking_id)
    assert await store.reports.keep_report(early)
    assert not await store.reports.keep_report(report("sandbox", "sbx-1", submission_id=tracking_id))  # kept once

    assert await store.reports.matched_reports() == []  # still submitting: nothing to apply yet
    pending = await store.messages.pending_report(tracking_id)
    assert pending is not None
    assert (pending.kind, pending.status, pending.details, pending.extra) == (
        ReportKind.MMS,
        "delivered",
        "Message Delivered",
        {"operator-id": "99999"},
    )
    assert abs(pending.received_at.timestamp() - early.received_at.timestamp()) < 0.001

    await submitted(store, tracking_id, "sbx-1")
    assert await store.reports.kept_report(tracking_id, "sandbox", "sbx-1") == pending
    [(found, owner)] = await store.reports.matched_reports()
    assert (found, owner) == (pending, tracking_id)

    await store.reports.forget_report(found)
    assert await store.reports.matched_reports() == []
    assert await store.messages.pending_report(tracking_id) is None


async def test_a_report_by_the_carriers_id_meets_its_message_once_recorded(store: Store, caller: Caller) -> None:
    tracking_id = await submitting(store, caller, 2, "mmsc")
    other = await submitting(store, caller, 3, "mmsc")
    assert await store.reports.keep_report(report("mmsc", "m-1"))
    assert await store.reports.keep_report(report("elsewhere", "m-2"))
    # no message is known by these ids yet: nothing matches, no message shows them
    assert await store.reports.matched_reports() == []
    assert await store.messages.pending_report(tracking_id) is None
    assert await store.reports.kept_report(tracking_id, "mmsc", "m-2") is None

    await submitted(store, tracking_id, "m-1")
    await submitted(store, other, "m-2")  # the same id at another carrier is another message
    kept = await store.reports.kept_report(tracking_id, "mmsc", "m-1")
    assert kept is not None and kept.carrier_message_id == "m-1" and kept.submission_id is None
    assert [(k.carrier, owner) for k, owner in await store.reports.matched_reports()] == [("mmsc", tracking_id)]
    assert await store.messages.pending_report(tracking_id) == kept
    assert await store.messages.pending_report(other) is None


async def test_a_receipt_before_its_segments_is_kept_until_they_are_recorded(store: Store, caller: Caller) -> None:
    tracking_id = await falling_back(store, caller, 4)
    until = utcnow() + timedelta(days=3)
    # the SMSC gives the receipt in decimal for an id it answered in hex
    early = SmsReceipt("smsc", str(0x1A2B), SmsStatus.DELIVERED, "stat:DELIVRD")
    assert await store.lifecycle.record_sms_receipt(early, keep_until=until) is None
    assert await store.lifecycle.record_sms_receipt(early, keep_until=until) is None  # a repeat: kept once
    enroute = SmsReceipt("smsc", "ff01", SmsStatus.ENROUTE, "stat:ENROUTE")
    assert await store.lifecycle.record_sms_receipt(enroute, keep_until=until) is None  # not final: not kept
    assert await store.reports.matched_reports() == []

    step = Step(tracking_id, S.SMS_SUBMITTED, None, "SMS submitted", "2 parts")
    assert await store.lifecycle.sms_submitted(step, "smsc", ["00001A2B", "ff01"])
    [(kept, owner)] = await store.reports.matched_reports()
    assert (kept.kind, kept.carrier, kept.status, kept.details, owner) == (
        ReportKind.SMS,
        "smsc",
        "delivered",
        "stat:DELIVRD",
        tracking_id,
    )
    assert await store.messages.pending_report(tracking_id) == kept

    # a receipt whose segment is recorded is applied by its own worker: nothing more is kept
    late = SmsReceipt("smsc", "FF01", SmsStatus.DELIVERED, "stat:DELIVRD")
    assert await store.lifecycle.record_sms_receipt(late, keep_until=until) == tracking_id
    assert len(await store.reports.matched_reports()) == 1
    await store.reports.forget_report(kept)
    assert await store.reports.matched_reports() == []


async def test_kept_reports_expire_with_their_message(store: Store, caller: Caller) -> None:
    tracking_id = await submitting(store, caller, 5, "sandbox")
    assert await store.reports.keep_report(report("sandbox", "sbx-old", submission_id=tracking_id, days=-1))
    assert await store.reports.keep_report(report("mmsc", "m-live"))
    [gone] = await store.reports.expire_reports(utcnow())
    assert (gone.carrier_message_id, gone.submission_id) == ("sbx-old", tracking_id)
    assert await store.reports.expire_reports(utcnow()) == []
    assert await store.messages.pending_report(tracking_id) is None
    # the live one is still there: recorded now, it is found
    live = await submitting(store, caller, 6, "mmsc")
    await submitted(store, live, "m-live")
    assert [k.carrier_message_id for k, _ in await store.reports.matched_reports()] == ["m-live"]
