"""The Store suite for delivery: transitions, the postback outbox, send windows, the sandbox carrier,
inbound MMS and gateway values. Every test runs against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import timedelta

import pytest

from mmsgate.core.codes import JobKind, MessageState
from mmsgate.core.model import JobEffect, Outgoing, Step, utcnow
from mmsgate.core.records import (
    Behaviour,
    Handset,
    Inbound,
    InboundPart,
    PostbackDelivery,
    SandboxSms,
    SandboxSubmission,
    SmsReceipt,
    SmsStatus,
)
from mmsgate.errors import Conflict, NotFound
from mmsgate.store import Store
from tests.conftest import Caller, provision
from tests.integration.test_store import make_message
from tests.store_support import postback_done, postback_retry

S = MessageState
LEASE = 30.0


def outgoing(account_id: str, subject_id: str, code: str) -> Outgoing:
    return Outgoing(
        event_id=f"evt-{secrets.token_hex(6)}",
        account_id=account_id,
        subject_id=subject_id,
        code=code,
        url="https://hooks.example/pb",
        body=f'{{"code": "{code}"}}',
    )


async def accepted(store: Store, caller: Caller, n: int = 0) -> str:
    message = make_message(caller, n)
    await store.accepting.accept_message(message)
    return message.tracking_id


async def with_postback(store: Store, caller: Caller, tracking_id: str, target: MessageState, code: str) -> Outgoing:
    postback = outgoing(caller.account_id, tracking_id, code)
    assert await store.lifecycle.advance(Step(tracking_id, target, code, "Status", "details", postback=postback))
    return postback


def ids(claimed: list[PostbackDelivery]) -> list[str]:
    return [p.event_id for p in claimed]


# transitions ------------------------------------------------------------------------------------


async def test_advance_is_a_compare_and_set(store: Store, caller: Caller) -> None:
    tracking_id = await accepted(store, caller)
    [job] = await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE)
    assert (job.kind, job.ref) == (JobKind.DELIVER, tracking_id)

    assert await store.lifecycle.media_ready(tracking_id, [], code=None, status="Ready", details="no media")
    assert not await store.lifecycle.media_ready(tracking_id, [], code=None, status="Ready", details="no media")
    assert await store.lifecycle.advance(Step(tracking_id, S.SUBMITTING, None, "Submitting", "x", carrier="sandbox"))
    sent = outgoing(caller.account_id, tracking_id, "N101")
    submitted = Step(tracking_id, S.SUBMITTED, "N101", "Sent", "taken", postback=sent, carrier_message_id="c-1")
    assert await store.lifecycle.advance(submitted)

    message = await store.messages.find_message(tracking_id)
    assert (message.state, message.carrier, message.carrier_message_id) == (S.SUBMITTED, "sandbox", "c-1")
    assert (await store.messages.find_by_carrier_id("sandbox", "c-1")).tracking_id == tracking_id
    with pytest.raises(NotFound):
        await store.messages.find_by_carrier_id("other-carrier", "c-1")

    events = await store.messages.list_events(tracking_id)
    postbacks = await store.messages.list_postbacks(tracking_id)
    again = Step(
        tracking_id, S.SUBMITTED, "N101", "Sent", "again", postback=outgoing(caller.account_id, tracking_id, "N101")
    )
    assert not await store.lifecycle.advance(again)
    assert await store.messages.list_events(tracking_id) == events
    assert await store.messages.list_postbacks(tracking_id) == postbacks == [(sent.event_id, "N101", "queued", 0)]
    assert [e.code for e in events] == [None, None, "N101"]

    # the deliver job waits (for the message's expiry); a delivery report closes it
    assert await store.jobs.retry_job(job.id, "w1", run_at=utcnow() - timedelta(seconds=1), error=None)
    delivered = Step(tracking_id, S.DELIVERED, "N102", "Delivered", "report", close_job=True)
    assert await store.lifecycle.advance(delivered)
    assert await store.jobs.claim_jobs("w2", limit=10, lease_seconds=LEASE) == []
    assert (await store.messages.find_message(tracking_id)).state is S.DELIVERED

    for target in (S.EXPIRED, S.FAILED, S.REJECTED, S.DELIVERED):
        assert not await store.lifecycle.advance(Step(tracking_id, target, None, "Late", "final already"))
    assert (await store.messages.find_message(tracking_id)).state is S.DELIVERED
    assert [e.code for e in await store.messages.list_events(tracking_id)] == [None, None, "N101", "N102"]


async def test_a_claimed_deliver_job_may_carry_its_message_as_the_claim_read_it(
    store: Store, caller: Caller, backend: str
) -> None:
    tracking_id = await accepted(store, caller)
    await store.sandbox.sandbox_submit(
        SandboxSubmission("t-other", "sbx-other", caller.to, Behaviour.DELIVERS, "{}", time.time(), time.time())
    )
    jobs = {j.kind: j for j in await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE)}
    assert set(jobs) == {JobKind.DELIVER, JobKind.SANDBOX_REPORT}
    assert jobs[JobKind.SANDBOX_REPORT].message is None
    carried = jobs[JobKind.DELIVER].message
    if backend == "postgresql":  # read with the claim, in the same round trip
        assert carried == await store.messages.find_message(tracking_id)
    else:
        assert carried is None


async def test_advance_without_close_job_leaves_the_job_waiting(store: Store, caller: Caller) -> None:
    tracking_id = await accepted(store, caller)
    [job] = await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE)
    assert await store.jobs.retry_job(job.id, "w1", run_at=utcnow() - timedelta(seconds=1), error=None)
    assert await store.lifecycle.advance(Step(tracking_id, S.FAILED, "E101", "Failed", "broken"))
    assert [j.id for j in await store.jobs.claim_jobs("w2", limit=10, lease_seconds=LEASE)] == [job.id]


async def test_a_report_ends_the_job_that_carried_it_in_the_same_write(store: Store, caller: Caller) -> None:
    tracking_id = await accepted(store, caller)
    [job] = await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE)
    assert await store.lifecycle.media_ready(
        tracking_id, [], code=None, status="Ready", details="x", submitting="sandbox"
    )
    assert await store.lifecycle.advance(
        Step(tracking_id, S.SUBMITTED, "N101", "Sent", "taken", carrier_message_id="c-9")
    )
    assert await store.jobs.retry_job(job.id, "w1", run_at=utcnow() + timedelta(hours=1), error=None)
    carrier = _submission(tracking_id, caller.to, report_at=time.time() - 1)
    await store.sandbox.sandbox_submit(carrier)
    [report_job] = await store.jobs.claim_jobs("w2", limit=10, lease_seconds=LEASE)
    assert report_job.kind is JobKind.SANDBOX_REPORT

    delivered = Step(
        tracking_id, S.DELIVERED, "N102", "Delivered", "r", close_job=True, jobs=(JobEffect(report_job.id, "w2"),)
    )
    assert await store.lifecycle.advance(delivered)
    assert not await store.jobs.finish_job(report_job.id, "w2")  # already done, by that write
    assert not await store.jobs.retry_job(report_job.id, "w2", run_at=utcnow(), error=None)

    # a step whose guard fails leaves the carrying job to its worker
    assert await store.sandbox.sandbox_submit(_submission("t-other", caller.to, report_at=time.time() - 1))
    [other_job] = await store.jobs.claim_jobs("w3", limit=10, lease_seconds=LEASE)
    late = Step(tracking_id, S.DELIVERED, "N102", "Delivered", "again", jobs=(JobEffect(other_job.id, "w3"),))
    assert not await store.lifecycle.advance(late)
    assert await store.jobs.finish_job(other_job.id, "w3")


async def test_a_submit_not_taken_returns_to_media_ready(store: Store, caller: Caller) -> None:
    tracking_id = await accepted(store, caller)
    assert not await store.lifecycle.advance(Step(tracking_id, S.SUBMITTING, None, "Submitting", "too early"))
    assert await store.lifecycle.media_ready(tracking_id, [], code=None, status="Ready", details="")
    assert await store.lifecycle.advance(Step(tracking_id, S.SUBMITTING, None, "Submitting", "x"))
    assert await store.lifecycle.advance(Step(tracking_id, S.MEDIA_READY, None, "Not taken", "carrier refused"))
    assert (await store.messages.find_message(tracking_id)).state is S.MEDIA_READY
    assert not await store.lifecycle.advance(Step(tracking_id, S.DELIVERED, "N102", "Delivered", "never submitted"))


async def test_advance_of_an_unknown_message_changes_nothing(store: Store) -> None:
    assert not await store.lifecycle.advance(Step("t-missing", S.FAILED, "E101", "Failed", "x"))
    assert await store.messages.list_events("t-missing") == []


# postback outbox --------------------------------------------------------------------------------


async def test_postbacks_of_a_message_are_claimed_in_order(store: Store, caller: Caller) -> None:
    a = await accepted(store, caller, 1)
    b = await accepted(store, caller, 2)
    a1 = await with_postback(store, caller, a, S.MEDIA_READY, "N013")
    a2 = await with_postback(store, caller, a, S.SUBMITTING, "N101")
    b1 = await with_postback(store, caller, b, S.FAILED, "E101")

    account = await store.accounts.update_account(caller.account_id, postback_url="https://hooks.example/now")
    first = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert ids(first) == [a1.event_id, b1.event_id]
    head = first[0]
    assert (head.account_id, head.subject_id, head.url, head.body, head.attempts, head.secret) == (
        caller.account_id,
        a,
        "https://hooks.example/now",  # where the account's postbacks go now, not where they went when queued
        a1.body,
        1,
        account.postback_secret,
    )
    assert await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE) == []

    assert await postback_done(store, first[0].id, "w1", delivered=True, error=None)
    second = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert ids(second) == [a2.event_id]
    assert [state for _, _, state, _ in await store.messages.list_postbacks(a)] == ["delivered", "running"]


async def test_postback_retry_waits_for_its_time(store: Store, caller: Caller) -> None:
    a = await accepted(store, caller, 1)
    a1 = await with_postback(store, caller, a, S.MEDIA_READY, "N013")
    a2 = await with_postback(store, caller, a, S.SUBMITTING, "N101")

    [claimed] = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert (claimed.event_id, claimed.attempts) == (a1.event_id, 1)
    assert await postback_retry(store, claimed.id, "w1", run_at=utcnow() + timedelta(hours=1), error="HTTP 503")
    # neither it nor the message's later postback goes before its time
    assert await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE) == []
    assert await store.messages.list_postbacks(a) == [
        (a1.event_id, "N013", "queued", 1),
        (a2.event_id, "N101", "queued", 0),
    ]


async def test_postback_retry_is_claimable_once_due(store: Store, caller: Caller) -> None:
    a = await accepted(store, caller, 1)
    a1 = await with_postback(store, caller, a, S.MEDIA_READY, "N013")

    [claimed] = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert await postback_retry(store, claimed.id, "w1", run_at=utcnow() - timedelta(seconds=1), error="HTTP 503")
    [again] = await store.outbox.claim_postbacks("w2", limit=10, lease_seconds=LEASE)
    assert (again.id, again.event_id, again.attempts) == (claimed.id, a1.event_id, 2)
    assert not await postback_retry(store, again.id, "w1", run_at=utcnow(), error="not mine")
    assert await postback_retry(store, again.id, "w2", run_at=utcnow() - timedelta(seconds=1), error="HTTP 500")
    [third] = await store.outbox.claim_postbacks("w3", limit=10, lease_seconds=LEASE)
    assert third.attempts == 3
    assert await store.messages.list_postbacks(a) == [(a1.event_id, "N013", "running", 3)]


async def test_claim_postbacks_skips_accounts(store: Store, caller: Caller) -> None:
    other = await provision(store, sender="28445")
    mine = await with_postback(store, caller, await accepted(store, caller, 1), S.FAILED, "E101")
    theirs = await with_postback(store, other, await accepted(store, other, 2), S.FAILED, "E101")

    claimed = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE, skip_accounts=[caller.account_id])
    assert ids(claimed) == [theirs.event_id]
    claimed = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE, skip_accounts=[other.account_id])
    assert ids(claimed) == [mine.event_id]


async def test_postback_given_up_is_failed(store: Store, caller: Caller) -> None:
    a = await accepted(store, caller, 1)
    a1 = await with_postback(store, caller, a, S.MEDIA_READY, "N013")
    a2 = await with_postback(store, caller, a, S.SUBMITTING, "N101")

    [claimed] = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert await postback_done(store, claimed.id, "w1", delivered=False, error="x")
    assert not await postback_done(store, claimed.id, "w1", delivered=True, error=None)  # ended already
    assert (await store.messages.list_postbacks(a))[0] == (a1.event_id, "N013", "failed", 1)
    assert ids(await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)) == [a2.event_id]


async def test_postback_done_needs_the_lease(store: Store, caller: Caller) -> None:
    a = await accepted(store, caller, 1)
    a1 = await with_postback(store, caller, a, S.MEDIA_READY, "N013")

    [claimed] = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert not await postback_done(store, claimed.id, "w2", delivered=True, error=None)
    assert not await postback_retry(store, claimed.id, "w2", run_at=utcnow(), error="not mine")
    assert await store.messages.list_postbacks(a) == [(a1.event_id, "N013", "running", 1)]
    assert await postback_done(store, claimed.id, "w1", delivered=True, error=None)
    assert await store.messages.list_postbacks(a) == [(a1.event_id, "N013", "delivered", 1)]


async def test_claim_postbacks_respects_the_limit(store: Store, caller: Caller) -> None:
    subjects = [await accepted(store, caller, n) for n in range(3)]
    posted = [await with_postback(store, caller, s, S.FAILED, "E101") for s in subjects]
    assert ids(await store.outbox.claim_postbacks("w1", limit=2, lease_seconds=LEASE)) == [
        p.event_id for p in posted[:2]
    ]
    assert ids(await store.outbox.claim_postbacks("w1", limit=2, lease_seconds=LEASE)) == [posted[2].event_id]


# send windows -----------------------------------------------------------------------------------


async def test_reserve_sends_holds_a_ring_per_carrier(store: Store) -> None:
    assert await store.windows.reserve_sends("sandbox", limit=3, window=60.0, want=5) == (3, 0.0)
    granted, wait = await store.windows.reserve_sends("sandbox", limit=3, window=60.0, want=5)
    assert granted == 0
    assert 0 < wait <= 60.0
    assert await store.windows.reserve_sends("other", limit=3, window=60.0, want=2) == (2, 0.0)
    assert await store.windows.reserve_sends("sandbox", limit=5, window=60.0, want=5) == (2, 0.0)
    assert (await store.windows.reserve_sends("sandbox", limit=5, window=60.0, want=1))[0] == 0
    assert await store.windows.reserve_sends("other", limit=3, window=60.0, want=5) == (1, 0.0)


# sandbox carrier --------------------------------------------------------------------------------


def _submission(
    submission_id: str, number: str, report_at: float | None = None, outcome: Behaviour = Behaviour.DELIVERS
) -> SandboxSubmission:
    return SandboxSubmission(
        submission_id=submission_id,
        carrier_message_id=f"sbx-{secrets.token_hex(6)}",
        number=number,
        outcome=outcome,
        mms=json.dumps({"to": number}),
        received_at=time.time(),
        report_at=report_at,
    )


async def test_handsets(store: Store) -> None:
    assert await store.sandbox.get_handset("15550100077") == Handset("15550100077", Behaviour.DELIVERS, 0.0)
    await store.sandbox.set_handset(Handset("15550100077", Behaviour.REJECTS, 2.5))
    assert await store.sandbox.get_handset("15550100077") == Handset("15550100077", Behaviour.REJECTS, 2.5)
    await store.sandbox.set_handset(Handset("15550100077", Behaviour.THROTTLES))
    assert await store.sandbox.get_handset("15550100077") == Handset("15550100077", Behaviour.THROTTLES, 0.0)


async def test_sandbox_submit_is_counted_not_repeated(store: Store) -> None:
    first = _submission("t-sub-1", "15550100001")
    repeat = _submission("t-sub-1", "15550100001")
    assert (await store.sandbox.sandbox_submit(first)).carrier_message_id == first.carrier_message_id
    assert (await store.sandbox.sandbox_submit(repeat)).carrier_message_id == first.carrier_message_id

    by_submission = await store.sandbox.sandbox_submission("t-sub-1")
    by_carrier_id = await store.sandbox.sandbox_submission(first.carrier_message_id)
    assert by_submission is not None and by_carrier_id is not None
    assert by_submission.calls == 2
    assert by_carrier_id == by_submission
    assert (by_submission.number, by_submission.outcome, by_submission.mms) == (first.number, first.outcome, first.mms)
    assert await store.sandbox.sandbox_submission(repeat.carrier_message_id) is None
    assert await store.sandbox.sandbox_submission("t-unknown") is None
    assert await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE) == []  # no report was due


async def test_sandbox_report_job(store: Store) -> None:
    submission = _submission("t-sub-2", "15550100001", report_at=time.time() - 1)
    await store.sandbox.sandbox_submit(submission)
    await store.sandbox.sandbox_submit(_submission("t-sub-2", "15550100001", report_at=time.time() - 1))
    jobs = await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE)
    assert [(j.kind, j.ref) for j in jobs] == [(JobKind.SANDBOX_REPORT, submission.carrier_message_id)]


async def test_sandbox_report_job_waits_for_the_handset_delay(store: Store) -> None:
    await store.sandbox.sandbox_submit(_submission("t-sub-3", "15550100001", report_at=time.time() + 3600))
    assert await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE, kinds=[JobKind.SANDBOX_REPORT]) == []


async def test_the_inbox_holds_what_a_handset_received_by_now(store: Store) -> None:
    now = time.time()
    first = _submission("t-in-1", "15550100001", report_at=now - 2)
    second = _submission("t-in-2", "15550100001", report_at=now - 1)
    later = _submission("t-in-3", "15550100001", report_at=now + 3600)  # a handset with a long delay
    for submission in (first, second, later):
        await store.sandbox.sandbox_submit(submission)
    await store.sandbox.sandbox_submit(_submission("t-in-1", "15550100001", report_at=now))  # a repeated submit
    await store.sandbox.sandbox_submit(_submission("t-in-4", "15550100001", now - 1, Behaviour.REJECTS))
    await store.sandbox.sandbox_submit(_submission("t-in-5", "15550100002", report_at=now - 1))

    inbox = await store.sandbox.sandbox_inbox("15550100001")
    assert [(cid, mms) for cid, mms, _ in inbox] == [
        (second.carrier_message_id, second.mms),
        (first.carrier_message_id, first.mms),
    ]
    assert [at.timestamp() for _, _, at in inbox] == pytest.approx([now - 1, now - 2], abs=0.001)
    assert [cid for cid, _, _ in await store.sandbox.sandbox_inbox("15550100001", limit=1)] == [
        second.carrier_message_id
    ]
    assert await store.sandbox.sandbox_inbox("15550100099") == []


# inbound ----------------------------------------------------------------------------------------


async def test_number_owner(store: Store, caller: Caller) -> None:
    owner = await store.incoming.number_owner(caller.sender)
    assert owner is not None
    assert (owner.number, owner.account_id, owner.service_id) == (caller.sender, caller.account_id, caller.service_id)
    assert await store.incoming.number_owner("15550109999") is None


async def test_inbound_roundtrip_with_its_postback(store: Store, caller: Caller) -> None:
    now = utcnow()
    inbound = Inbound(
        id=f"in_{secrets.token_hex(6)}",
        token=secrets.token_urlsafe(16),
        account_id=caller.account_id,
        carrier="sandbox",
        sender="15550100001",
        recipient=caller.sender,
        subject="Hello",
        keyword="HELLO",
        copy_to=("15550100002", "15550100003"),
        expires_at=now + timedelta(days=7),
        created_at=now,
        parts=(
            InboundPart(0, "text.txt", "text/plain", 5, "a" * 64),
            InboundPart(1, "photo.jpg", "image/jpeg", 12345, "b" * 64),
        ),
    )
    postback = outgoing(caller.account_id, inbound.id, "N401")
    await store.incoming.receive_inbound(inbound, postback=postback)

    assert await store.incoming.find_inbound(inbound.token) == inbound
    assert await store.messages.list_postbacks(inbound.id) == [(postback.event_id, "N401", "queued", 0)]
    with pytest.raises(NotFound):
        await store.incoming.find_inbound("nope")


async def test_inbound_without_subject_parts_or_postback(store: Store, caller: Caller) -> None:
    now = utcnow()
    inbound = Inbound(
        id=f"in_{secrets.token_hex(6)}",
        token=secrets.token_urlsafe(16),
        account_id=caller.account_id,
        carrier="sandbox",
        sender="15550100001",
        recipient=caller.sender,
        subject=None,
        keyword=None,
        copy_to=(),
        expires_at=now + timedelta(days=7),
        created_at=now,
    )
    await store.incoming.receive_inbound(inbound, postback=None)
    assert await store.incoming.find_inbound(inbound.token) == inbound
    assert await store.messages.list_postbacks(inbound.id) == []


# gateway values ---------------------------------------------------------------------------------


async def test_values_roundtrip_and_overwrite(store: Store) -> None:
    assert await store.values.get_value("public-url") is None
    await store.values.set_value("public-url", "https://a.example")
    assert await store.values.get_value("public-url") == "https://a.example"
    await store.values.set_value("public-url", "https://b.example")
    assert await store.values.get_value("public-url") == "https://b.example"
    assert await store.values.get_value("other") is None


# concurrency ------------------------------------------------------------------------------------


async def test_concurrent_reservations_never_exceed_the_limit(store: Store) -> None:
    results = await asyncio.gather(
        *(store.windows.reserve_sends("busy", limit=3, window=60.0, want=1) for _ in range(10))
    )
    assert sum(granted for granted, _ in results) == 3
    assert all(0 < wait <= 60.0 for granted, wait in results if granted == 0)


async def test_concurrent_postback_claims_never_share_one(store: Store, caller: Caller) -> None:
    subjects = [await accepted(store, caller, n) for n in range(6)]
    posted = [await with_postback(store, caller, s, S.FAILED, "E101") for s in subjects]
    claims = await asyncio.gather(
        *(store.outbox.claim_postbacks(f"w{n}", limit=2, lease_seconds=LEASE) for n in range(6))
    )
    claimed = [p.event_id for claim in claims for p in claim]
    assert sorted(claimed) == sorted(p.event_id for p in posted)


async def test_an_expired_postback_lease_is_claimed_again(store: Store, caller: Caller) -> None:
    a = await accepted(store, caller, 1)
    await with_postback(store, caller, a, S.FAILED, "E101")
    [lost] = await store.outbox.claim_postbacks("dead-worker", limit=10, lease_seconds=-1.0)  # a lease already over
    [again] = await store.outbox.claim_postbacks("w2", limit=10, lease_seconds=LEASE)
    assert (again.id, again.attempts) == (lost.id, 2)
    assert not await postback_done(store, lost.id, "dead-worker", delivered=True, error=None)
    assert await postback_done(store, again.id, "w2", delivered=True, error=None)


async def test_nothing_advances_back_to_accepted(store: Store, caller: Caller) -> None:
    tracking_id = await accepted(store, caller)
    assert not await store.lifecycle.advance(Step(tracking_id, S.ACCEPTED, None, "Accepted", "no state leads here"))
    assert (await store.messages.find_message(tracking_id)).state is S.ACCEPTED


@pytest.mark.postgres
async def test_workers_of_other_processes_hear_of_new_jobs(pg_url: str) -> None:
    """An accept committed through one store wakes a listener on another (as between API and worker)."""
    from mmsgate.store.postgres import PostgresStore

    api, worker = PostgresStore(pg_url), PostgresStore(pg_url)
    await api.open()
    await worker.open()
    try:
        heard = asyncio.Event()
        await worker.jobs.watch_jobs(heard.set)
        await asyncio.wait_for(heard.wait(), 10)  # told once when it starts listening
        heard.clear()
        caller = await provision(api)
        await api.accepting.accept_message(make_message(caller))
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        await worker.close()
        await api.close()


@pytest.mark.postgres
async def test_a_listener_whose_connection_dies_listens_again(pg_url: str) -> None:
    """The server ends the listening session (a restart, an administrator): the store connects again,
    says so (anything committed meanwhile is claimed), and hears the next accept."""
    from mmsgate.store.postgres import PostgresStore

    api, worker = PostgresStore(pg_url), PostgresStore(pg_url)
    await api.open()
    await worker.open()
    try:
        heard = asyncio.Event()
        await worker.jobs.watch_jobs(heard.set)
        await asyncio.wait_for(heard.wait(), 10)
        heard.clear()
        ended = await api.db.read(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        assert ended == [(True,)]
        await asyncio.wait_for(heard.wait(), 10)  # listening again
        heard.clear()
        caller = await provision(api)
        await api.accepting.accept_message(make_message(caller))
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        await worker.close()
        await api.close()


async def test_prune_deletes_only_what_is_over(store: Store, caller: Caller) -> None:
    # a message delivered (job and postback finished), another still waiting (job queued, postback queued)
    done, waiting = await accepted(store, caller, 1), await accepted(store, caller, 2)
    for job in await store.jobs.claim_jobs("w1", limit=10, lease_seconds=LEASE):
        if job.ref == done:
            assert await store.jobs.finish_job(job.id, "w1")
        else:
            assert await store.jobs.retry_job(job.id, "w1", run_at=utcnow() + timedelta(days=3), error=None)
    assert await store.lifecycle.media_ready(done, [], code=None, status="Media ready", details="x")
    delivered = await with_postback(store, caller, done, S.SUBMITTING, "N101")
    [claimed] = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert claimed.event_id == delivered.event_id
    assert await postback_done(store, claimed.id, "w1", delivered=True, error=None)
    assert await store.lifecycle.media_ready(waiting, [], code=None, status="Media ready", details="x")
    await with_postback(store, caller, waiting, S.SUBMITTING, "N101")
    await store.sandbox.sandbox_submit(_submission(done, caller.to, report_at=time.time()))
    now = utcnow()
    expired = Inbound(
        id=f"in_{secrets.token_hex(6)}",
        token=secrets.token_urlsafe(16),
        account_id=caller.account_id,
        carrier="sandbox",
        sender="15550100001",
        recipient=caller.sender,
        subject=None,
        keyword=None,
        copy_to=(),
        expires_at=now - timedelta(seconds=1),
        created_at=now - timedelta(days=8),
        parts=(InboundPart(1, "1.txt", "text/plain", 2, "c" * 64),),
    )
    await store.incoming.receive_inbound(expired, None)
    old_page = await store.lifecycle.create_hosted_page(done, "gone-page-code", now - timedelta(seconds=1))
    await store.lifecycle.create_hosted_page(waiting, "live-page-code", now + timedelta(days=30))
    step = Step(done, S.SMS_SUBMITTED, None, "SMS submitted", "x")
    await store.lifecycle.sms_submitted(step, "smsc", ["a1"])  # the guard fails (not falling back): no segment
    await store.lifecycle.record_sms_receipt(SmsReceipt("smsc", "a1", SmsStatus.DELIVERED, "stat:DELIVRD"))
    await store.sandbox.sandbox_sms_receive(SandboxSms(caller.to, caller.sender, "hi", "sbs1", done, now))
    assert await store.incoming.keep_request("mmsc", "report:tx-1", "report", "d" * 64, "text/xml")

    # nothing is old enough yet: only the expired inbound MMS and hosted page go
    counts = await store.retention.prune(now - timedelta(days=7), now)
    assert counts == {
        "jobs": 0,
        "postbacks": 0,
        "sandbox_submissions": 0,
        "sandbox_inbox": 0,
        "inbound_parts": 1,
        "inbound": 1,
        "hosted_pages": 1,
        "sms_segments": 0,
        "sms_receipts": 0,
        "sandbox_sms": 0,
        "mm7_inbox": 0,
        "postback_attempts": 0,
        "console_sessions": 0,
        "console_uploads": 0,
    }
    with pytest.raises(NotFound):
        await store.incoming.find_inbound(expired.token)
    with pytest.raises(NotFound):
        await store.messages.find_hosted_page(old_page.code)
    assert (await store.messages.find_hosted_page("live-page-code")).tracking_id == waiting

    # a week later: what finished goes, what is still under way stays, messages and events stay
    later = now + timedelta(days=8)
    counts = await store.retention.prune(later - timedelta(days=7), later, batch=1)
    assert counts == {
        "jobs": 1,
        "postbacks": 1,
        "sandbox_submissions": 1,
        "sandbox_inbox": 1,
        "inbound_parts": 0,
        "inbound": 0,
        "hosted_pages": 0,
        "sms_segments": 0,
        "sms_receipts": 1,
        "sandbox_sms": 1,
        "mm7_inbox": 1,
        "postback_attempts": 0,
        "console_sessions": 0,
        "console_uploads": 0,
    }
    assert await store.messages.list_postbacks(done) == []
    assert [p[2] for p in await store.messages.list_postbacks(waiting)] == ["queued"]
    assert (await store.messages.find_message(done)).state is S.SUBMITTING
    assert len(await store.messages.list_events(done)) == 2
    assert await store.sandbox.sandbox_submission(done) is None
    assert await store.sandbox.sandbox_inbox(caller.to) == []


async def falling_back(store: Store, caller: Caller, n: int) -> str:
    """A message in the state a fallback SMS is submitted from."""
    tracking_id = await accepted(store, caller, n)
    assert await store.lifecycle.media_ready(
        tracking_id, [], code=None, status="Media ready", details="x", submitting="sbx"
    )
    assert await store.lifecycle.advance(Step(tracking_id, S.FALLBACK, None, "Falling back to SMS", "no-mms"))
    assert await store.lifecycle.advance(Step(tracking_id, S.SMS_SUBMITTING, None, "Submitting SMS", "to smsc"))
    return tracking_id


async def test_hosted_page_is_made_once_per_message(store: Store, caller: Caller) -> None:
    tracking_id = await accepted(store, caller, 1)
    until = utcnow() + timedelta(days=30)
    first = await store.lifecycle.create_hosted_page(tracking_id, "code-one", until)
    again = await store.lifecycle.create_hosted_page(tracking_id, "code-two", until + timedelta(days=1))
    assert first == again
    assert (first.code, first.tracking_id) == ("code-one", tracking_id)
    assert abs(first.expires_at.timestamp() - until.timestamp()) < 0.001
    assert await store.messages.find_hosted_page("code-one") == first
    with pytest.raises(NotFound):
        await store.messages.find_hosted_page("code-two")


async def test_sms_receipts_meet_their_segments_in_either_order_and_id_form(store: Store, caller: Caller) -> None:
    tracking_id = await falling_back(store, caller, 1)
    # the SMSC answered the submits in hex and gives the receipts in decimal; one receipt comes first
    early = SmsReceipt("smsc", str(0x1A2B), SmsStatus.DELIVERED, "stat:DELIVRD")
    assert await store.lifecycle.record_sms_receipt(early) is None
    step = Step(tracking_id, S.SMS_SUBMITTED, None, "SMS submitted", "2 parts")
    assert await store.lifecycle.sms_submitted(step, "smsc", ["00001A2B", "ff01"])
    assert not await store.lifecycle.sms_submitted(step, "smsc", ["00001A2B", "ff01"])  # applied once
    segments = await store.messages.sms_segments(tracking_id)
    assert [(s.smsc_id, s.seq, s.total, s.status) for s in segments] == [
        ("1a2b", 1, 2, "delivered"),
        ("ff01", 2, 2, None),
    ]
    # an en-route receipt, then the final one, then a late en-route one that must not undo it
    for status in (SmsStatus.ENROUTE, SmsStatus.FAILED, SmsStatus.ENROUTE):
        found = await store.lifecycle.record_sms_receipt(
            SmsReceipt("smsc", str(0xFF01), status, f"stat:{status.value}")
        )
        assert found == tracking_id
    assert [s.status for s in await store.messages.sms_segments(tracking_id)] == ["delivered", "failed"]
    # another connection's receipt with the same id belongs to nothing here
    assert await store.lifecycle.record_sms_receipt(SmsReceipt("other", "ff01", SmsStatus.DELIVERED, "x")) is None
    assert (await store.messages.find_message(tracking_id)).state is S.SMS_SUBMITTED


async def test_connections_are_kept_by_name(store: Store) -> None:
    config: dict[str, object] = {"host": "smsc.example", "port": 2775, "route_prefixes": ["44"]}
    added = await store.connections.add_connection("uk", "smpp", config)
    assert (added.name, added.kind, added.config) == ("uk", "smpp", config)
    with pytest.raises(Conflict):
        await store.connections.add_connection("uk", "smpp", config)
    assert [(c.name, c.config) for c in await store.connections.list_connections()] == [("uk", config)]
    await store.connections.remove_connection("uk")
    assert await store.connections.list_connections() == []
    with pytest.raises(NotFound):
        await store.connections.remove_connection("uk")


async def test_handsets_and_submissions_read_together_each_get_their_own(store: Store) -> None:
    await store.sandbox.set_handset(Handset("15550100011", Behaviour.REJECTS, 2.0))
    await store.sandbox.set_handset(Handset("15550100012", Behaviour.NO_MMS))
    first, second = _submission("tid-1", "15550100011"), _submission("tid-2", "15550100012")
    for submission in (first, second):
        await store.sandbox.sandbox_submit(submission)
    # asked in one turn of the event loop (PostgreSQL answers them with one query per kind)
    handsets = await asyncio.gather(
        *(store.sandbox.get_handset(n) for n in ("15550100011", "15550100012", "15550100013", "15550100011"))
    )
    assert handsets == [
        Handset("15550100011", Behaviour.REJECTS, 2.0),
        Handset("15550100012", Behaviour.NO_MMS, 0.0),
        Handset("15550100013"),
        Handset("15550100011", Behaviour.REJECTS, 2.0),
    ]
    found = await asyncio.gather(
        store.sandbox.sandbox_submission("tid-1"),
        store.sandbox.sandbox_submission(second.carrier_message_id),
        store.sandbox.sandbox_submission("tid-unknown"),
        store.sandbox.sandbox_submission(first.carrier_message_id),
    )
    assert [f.submission_id if f else None for f in found] == ["tid-1", "tid-2", None, "tid-1"]
    assert found[1] is not None and found[1].number == "15550100012"
