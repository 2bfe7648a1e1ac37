"""The Store suite for postbacks that wait: a claim reads where a postback goes now (not where it went when
queued), an account's backlog (waiting, held behind a failing postback, failed), and retrying it now.
Every test runs against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from mmsgate.core.codes import MessageState
from mmsgate.core.model import utcnow
from mmsgate.store import Store
from tests.conftest import Caller
from tests.integration.test_store import make_message
from tests.integration.test_store_delivery import LEASE, accepted, ids, with_postback
from tests.store_support import postback_done, postback_retry

S = MessageState


async def test_a_claim_reads_the_url_and_secret_configured_now(store: Store, caller: Caller) -> None:
    special = await store.numbers.create_campaign(caller.account_id, "https://campaign.example/pb")
    of_campaign = msgspec.structs.replace(make_message(caller, 1), service_id=special.service_id)
    await store.accepting.accept_message(of_campaign)
    plain = await accepted(store, caller, 2)
    await store.accounts.update_account(caller.account_id, postback_url="https://old.example/pb")
    queued = [
        await with_postback(store, caller, of_campaign.tracking_id, S.FAILED, "E101"),
        await with_postback(store, caller, plain, S.FAILED, "E101"),
    ]
    first = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert [p.url for p in first] == ["https://campaign.example/pb", "https://old.example/pb"]
    for p in first:
        assert await postback_retry(store, p.id, "w1", run_at=utcnow(), error="HTTP 500")

    # the account's URL and secret change between two attempts: the next claim carries the new ones
    account = await store.accounts.update_account(
        caller.account_id, postback_url="https://new.example/pb", postback_secret="pbs_rotated"
    )
    again = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert ids(again) == [p.event_id for p in queued]
    assert [(p.url, p.secret) for p in again] == [
        ("https://campaign.example/pb", account.postback_secret),  # its campaign's URL still wins
        ("https://new.example/pb", "pbs_rotated"),
    ]
    assert all(p.url != q.url for p, q in zip(again[1:], queued[1:], strict=True))  # not the queued URL

    # with no URL any more, the claim says so (the sender drops it)
    await postback_retry(store, again[1].id, "w1", run_at=utcnow(), error="HTTP 500")
    await store.accounts.update_account(caller.account_id, postback_url="")
    [last] = await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)
    assert (last.event_id, last.url) == (queued[1].event_id, None)


async def test_the_backlog_shows_what_waits_what_is_held_and_what_failed(store: Store, caller: Caller) -> None:
    a, b, c = [await accepted(store, caller, n) for n in range(3)]
    a1 = await with_postback(store, caller, a, S.MEDIA_READY, "N013")
    await with_postback(store, caller, a, S.SUBMITTING, "N101")
    await with_postback(store, caller, a, S.SUBMITTED, "N101")
    await with_postback(store, caller, b, S.FAILED, "E101")
    c1 = await with_postback(store, caller, c, S.FAILED, "E101")
    fresh = await store.backlog.postback_backlog(caller.account_id)
    assert (fresh.waiting, fresh.retrying, fresh.held, fresh.failed, fresh.failing) == (5, 0, 0, 0, ())

    claimed = {p.event_id: p for p in await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)}
    retry_at = utcnow() + timedelta(hours=1)
    assert await postback_retry(store, claimed[a1.event_id].id, "w1", run_at=retry_at, error="HTTP 503")
    assert await postback_done(store, claimed[c1.event_id].id, "w1", delivered=False, error="HTTP 410")

    backlog = await store.backlog.postback_backlog(caller.account_id)
    assert (backlog.waiting, backlog.retrying, backlog.held, backlog.failed) == (4, 1, 2, 1)
    assert backlog.oldest is not None and backlog.oldest <= utcnow()
    [failing] = backlog.failing
    assert (failing.event_id, failing.subject_id, failing.code, failing.attempts) == (a1.event_id, a, "N013", 1)
    assert (failing.state, failing.last_error, failing.held) == ("queued", "HTTP 503", 2)
    assert abs((failing.next_try - retry_at).total_seconds()) < 1
    other = await store.accounts.create_account("other")
    assert (await store.backlog.postback_backlog(other.id)).waiting == 0


async def test_retry_makes_failed_and_waiting_postbacks_due_now(store: Store, caller: Caller) -> None:
    a, b, c = [await accepted(store, caller, n) for n in range(3)]
    a1 = await with_postback(store, caller, a, S.MEDIA_READY, "N013")
    b1 = await with_postback(store, caller, b, S.FAILED, "E101")
    c1 = await with_postback(store, caller, c, S.FAILED, "E101")
    claimed = {p.event_id: p for p in await store.outbox.claim_postbacks("w1", limit=10, lease_seconds=LEASE)}
    assert await postback_retry(store, claimed[a1.event_id].id, "w1", run_at=utcnow() + timedelta(hours=1), error="x")
    assert await postback_done(store, claimed[b1.event_id].id, "w1", delivered=False, error="HTTP 500")
    # c1 is being sent: a retry leaves it alone
    assert await store.outbox.claim_postbacks("w2", limit=10, lease_seconds=LEASE) == []

    other = await store.accounts.create_account("other")
    assert await store.backlog.retry_postbacks(other.id) == (0, 0)
    assert await store.backlog.retry_postbacks(caller.account_id) == (1, 1)
    due = await store.outbox.claim_postbacks("w2", limit=10, lease_seconds=LEASE)
    assert sorted(ids(due)) == sorted([a1.event_id, b1.event_id])
    assert {p.event_id: p.attempts for p in due} == {a1.event_id: 2, b1.event_id: 2}
    assert await store.backlog.retry_postbacks(caller.account_id) == (0, 0)  # nothing left to retry
    assert [s for _, _, s, _ in await store.messages.list_postbacks(c)] == ["running"]
    assert c1.event_id in claimed
