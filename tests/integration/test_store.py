"""The Store suite: every test runs against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest

from mmsgate.core.codes import JobKind, MessageState, TemplateState
from mmsgate.core.model import (
    Job,
    JobEffect,
    Media,
    MediaKind,
    Message,
    NumberKind,
    Sending,
    Slide,
    Step,
    Template,
    utcnow,
)
from mmsgate.errors import Conflict, NotFound
from mmsgate.store import Store
from mmsgate.store.postgres import PostgresStore
from mmsgate.store.postgres.database import _pg
from mmsgate.store.sql.jobs import claim_statement
from mmsgate.store.sql.lifecycle import step_unit
from mmsgate.store.sql.outbox import DESTINATIONS
from mmsgate.store.sqlite import SqliteStore
from tests.conftest import Caller, provision
from tests.store_support import message_ids


def _sending() -> Sending:
    return Sending(
        subject="Hi",
        fallback_sms_text="fallback",
        disable_fallback_sms=False,
        disable_fallback_sms_link=False,
        fallback_link_expires_at=utcnow() + timedelta(days=30),
        client_reference="ref-1",
        slides=(Slide("one", (Media(MediaKind.IMAGE, "https://m.example/a.jpg"),)), Slide("two")),
    )


def make_message(caller: Caller, n: int = 0) -> Message:
    return Message(
        tracking_id=f"t-{n}-{time.monotonic_ns()}",
        account_id=caller.account_id,
        service_id=caller.service_id,
        to=caller.to,
        sender=caller.sender,
        from_mask=None,
        expires_at=utcnow() + timedelta(days=3),
        cache_content=True,
        sending=_sending(),
    )


async def test_accounts_crud(store: Store) -> None:
    account = await store.accounts.create_account("acme")
    assert (await store.accounts.get_account(account.id)).name == "acme"
    updated = await store.accounts.update_account(
        account.id, postback_url="https://hooks.example/pb", transcoding=False, disabled=True, rate_limit=5
    )
    assert (updated.postback_url, updated.transcoding, updated.disabled, updated.rate_limit) == (
        "https://hooks.example/pb",
        False,
        True,
        5,
    )
    cleared = await store.accounts.update_account(account.id, postback_url="")
    assert cleared.postback_url is None and cleared.disabled is True
    assert account.id in [a.id for a in await store.accounts.list_accounts()]
    await store.accounts.delete_account(account.id)
    with pytest.raises(NotFound):
        await store.accounts.get_account(account.id)
    with pytest.raises(NotFound):
        await store.accounts.delete_account(account.id)


async def test_keys_are_stored_hashed_and_revocable(store: Store, tmp_path: Path) -> None:
    account = await store.accounts.create_account("acme")
    key, secret = await store.accounts.create_key(account.id)
    found = await store.accounts.authenticate(secret)
    assert found is not None and found[0].id == key.id and found[1].id == account.id
    assert await store.accounts.authenticate(secret + "x") is None
    if isinstance(store, SqliteStore):
        assert secret.encode() not in store.path.read_bytes()
        for wal in store.path.parent.glob("*-wal"):
            assert secret.encode() not in wal.read_bytes()
    await store.accounts.revoke_key(key.id)
    found = await store.accounts.authenticate(secret)
    assert found is not None and found[0].revoked
    assert [k.revoked for k in await store.accounts.list_keys(account.id)] == [True]
    await store.accounts.delete_key(key.id)
    assert await store.accounts.authenticate(secret) is None
    assert await store.accounts.list_keys(account.id) == []
    with pytest.raises(NotFound):
        await store.accounts.delete_key(key.id)
    with pytest.raises(NotFound):
        await store.accounts.create_key("acc_missing")


async def test_campaigns_numbers_blocks(store: Store) -> None:
    account = await store.accounts.create_account("acme")
    other = await store.accounts.create_account("other")
    campaign = await store.numbers.create_campaign(account.id)
    foreign = await store.numbers.create_campaign(other.id)
    await store.numbers.add_number(account.id, "28444", NumberKind.SHORT_CODE, campaign.service_id)
    await store.numbers.add_number(account.id, "18885550100", NumberKind.TOLL_FREE)
    with pytest.raises(Conflict):
        await store.numbers.add_number(other.id, "28444", NumberKind.SHORT_CODE)
    with pytest.raises(NotFound):
        await store.numbers.add_number(account.id, "28445", NumberKind.SHORT_CODE, foreign.service_id)
    await store.numbers.block_number(account.id, "15550100009")
    await store.numbers.block_number(account.id, "15550100009")
    config = await store.accounts.account_config(account.id)
    assert config.service_ids == {campaign.service_id}
    assert config.blocked == {"15550100009"}
    assert config.may_send_from("28444", campaign.service_id)
    assert not config.may_send_from("28444", "other-campaign")
    assert config.may_send_from("18885550100", "any-campaign")
    await store.numbers.unblock_number(account.id, "15550100009")
    await store.numbers.remove_number("28444")
    assert [n.number for n in await store.numbers.list_numbers(account.id)] == ["18885550100"]
    await store.numbers.delete_campaign(campaign.service_id)
    assert await store.numbers.list_campaigns(account.id) == []
    with pytest.raises(NotFound):
        await store.numbers.unblock_number(account.id, "15550100009")


async def test_message_roundtrip_with_event_and_job(store: Store, caller: Caller) -> None:
    message = make_message(caller)
    await store.accepting.accept_message(message)
    stored = await store.messages.get_message(caller.account_id, message.tracking_id)
    assert stored.sending == message.sending
    assert stored.state is MessageState.ACCEPTED
    assert await store.messages.list_events(message.tracking_id) == []  # acceptance is the message row itself
    with pytest.raises(NotFound):
        await store.messages.get_message("acc_other", message.tracking_id)
    jobs = await store.jobs.claim_jobs("w1", limit=10, lease_seconds=30)
    assert [(j.kind, j.ref, j.attempts) for j in jobs] == [(JobKind.DELIVER, message.tracking_id, 1)]


async def test_accepted_texts_come_back_exactly(store: Store, caller: Caller) -> None:
    """Accepted rows travel as JSON on PostgreSQL and as parameters on SQLite: every character survives,
    and several messages committed together keep their own values."""
    texts = [
        'quotes " and \\ backslashes \\" and {"json": [1, 2]}',
        "lines\nand\ttabs\r\n, accents: é ü ß, emoji 😀👍🏽, RTL עברית, CJK 漢字",
        "\u2028 and \u2029 separators, a lone \x7f and \x01 control",
        "",
    ]
    messages = []
    for n, text in enumerate(texts):
        base = make_message(caller, n)
        sending = msgspec.structs.replace(
            base.sending,
            subject=text or None,
            client_reference=text[:40] or None,
            slides=(Slide(text or None, (Media(MediaKind.IMAGE, f"https://m.example/{n}.jpg?q={n}&x=ü"),)),),
        )
        messages.append(msgspec.structs.replace(base, sending=sending, from_mask=f"Mask{n}"))
    await asyncio.gather(*(store.accepting.accept_message(m) for m in messages))
    for message in messages:
        stored = await store.messages.get_message(caller.account_id, message.tracking_id)
        assert stored.sending == message.sending
        assert stored.from_mask == message.from_mask
        assert stored.expires_at == message.expires_at


async def test_template_lifecycle(store: Store, caller: Caller) -> None:
    template = Template(
        mms_id=f"mms-{time.monotonic_ns()}",
        tracking_id=f"trk-{time.monotonic_ns()}",
        account_id=caller.account_id,
        name="promo",
        sending=_sending(),
    )
    await store.accepting.accept_template(template)
    assert (await store.messages.get_template(caller.account_id, template.mms_id)).state is TemplateState.PROCESSING
    await store.lifecycle.set_template_state(template.mms_id, TemplateState.READY, code="N003", details="ready")
    assert (await store.messages.get_template(caller.account_id, template.mms_id)).state is TemplateState.READY
    events = await store.messages.list_events(template.mms_id)
    assert [(e.code, e.status) for e in events] == [("N003", "Transcoding successful")]
    jobs = await store.jobs.claim_jobs("w1", limit=10, lease_seconds=30, kinds=[JobKind.PREPARE_TEMPLATE])
    assert [j.ref for j in jobs] == [template.mms_id]


async def test_group_commit_under_concurrency(store: Store, caller: Caller) -> None:
    messages = [make_message(caller, n) for n in range(300)]
    await asyncio.gather(*(store.accepting.accept_message(m) for m in messages))
    counts = await message_ids(store, [m.tracking_id for m in messages])
    assert counts == {m.tracking_id: 1 for m in messages}


async def test_group_commit_isolates_a_failing_write(store: Store, caller: Caller) -> None:
    first = make_message(caller, 1)
    await store.accepting.accept_message(first)
    batch = [make_message(caller, n) for n in range(2, 20)]
    results = await asyncio.gather(
        store.accepting.accept_message(first),
        *(store.accepting.accept_message(m) for m in batch),
        return_exceptions=True,
    )
    assert isinstance(results[0], Conflict)
    assert all(r is None for r in results[1:])
    assert len(await message_ids(store, [m.tracking_id for m in batch])) == len(batch)


async def test_finish_and_retry_need_the_lease(store: Store, caller: Caller) -> None:
    await store.accepting.accept_message(make_message(caller))
    [job] = await store.jobs.claim_jobs("w1", limit=1, lease_seconds=30)
    assert not await store.jobs.finish_job(job.id, "w2")
    assert await store.jobs.retry_job(job.id, "w1", run_at=utcnow() - timedelta(seconds=1), error="timeout")
    [again] = await store.jobs.claim_jobs("w2", limit=1, lease_seconds=30)
    assert (again.id, again.attempts, again.lease_owner) == (job.id, 2, "w2")
    assert await store.jobs.finish_job(job.id, "w2")
    assert await store.jobs.claim_jobs("w3", limit=1, lease_seconds=30) == []


async def test_retry_waits_for_its_time(store: Store, caller: Caller) -> None:
    await store.accepting.accept_message(make_message(caller))
    [job] = await store.jobs.claim_jobs("w1", limit=1, lease_seconds=30)
    await store.jobs.retry_job(job.id, "w1", run_at=utcnow() + timedelta(hours=1), error="later")
    assert await store.jobs.claim_jobs("w1", limit=1, lease_seconds=30) == []


async def test_expired_lease_is_claimed_again(store: Store, caller: Caller) -> None:
    await store.accepting.accept_message(make_message(caller))
    [job] = await store.jobs.claim_jobs("dead-worker", limit=1, lease_seconds=0.2)
    assert await store.jobs.claim_jobs("w2", limit=1, lease_seconds=30) == []
    deadline = time.monotonic() + 10
    reclaimed: list[Job] = []
    while not reclaimed and time.monotonic() < deadline:
        reclaimed = await store.jobs.claim_jobs("w2", limit=1, lease_seconds=30)
    assert [(j.id, j.lease_owner, j.attempts) for j in reclaimed] == [(job.id, "w2", 2)]
    assert not await store.jobs.finish_job(job.id, "dead-worker")


async def test_extend_leases_keeps_only_what_the_owner_still_holds(store: Store, caller: Caller) -> None:
    for _ in range(3):
        await store.accepting.accept_message(make_message(caller))
    mine = await store.jobs.claim_jobs("w1", limit=2, lease_seconds=0.2)
    [other] = await store.jobs.claim_jobs("w2", limit=1, lease_seconds=30)
    assert await store.jobs.finish_job(mine[1].id, "w1")
    held = await store.jobs.extend_leases([mine[0].id, mine[1].id, other.id], "w1", lease_seconds=30)
    assert held == {mine[0].id}  # done, and another owner's, are not extended
    deadline = time.monotonic() + 1.0  # well past the first lease of 0.2 s
    while time.monotonic() < deadline:
        assert await store.jobs.claim_jobs("w3", limit=3, lease_seconds=30) == []


async def _claim_all(store: Store, owner: str, claimed: list[tuple[str, int]]) -> None:
    while True:
        jobs = await store.jobs.claim_jobs(owner, limit=7, lease_seconds=300)
        if not jobs:
            return
        for job in jobs:
            claimed.append((owner, job.id))
            assert await store.jobs.finish_job(job.id, owner)


@pytest.mark.parametrize("claimers", [4])
async def test_concurrent_claimers_never_share_a_job(
    store: Store, caller: Caller, claimers: int, backend: str, request: pytest.FixtureRequest
) -> None:
    messages = [make_message(caller, n) for n in range(400)]
    await asyncio.gather(*(store.accepting.accept_message(m) for m in messages))
    # each claimer is its own store: its own connections, as separate worker processes would have
    workers: list[Store] = []
    for _ in range(claimers):
        if backend == "sqlite":
            assert isinstance(store, SqliteStore)
            workers.append(SqliteStore(store.path))
        else:
            assert isinstance(store, PostgresStore)
            workers.append(PostgresStore(store.url, pool_size=2))
    for worker in workers:
        await worker.open()
    claimed: list[tuple[str, int]] = []
    try:
        await asyncio.gather(*(_claim_all(w, f"w{i}", claimed) for i, w in enumerate(workers)))
    finally:
        for worker in workers:
            await worker.close()
    per_job = Counter(job_id for _, job_id in claimed)
    assert len(per_job) == len(messages)
    assert set(per_job.values()) == {1}
    if backend == "postgresql":
        assert len({owner for owner, _ in claimed}) > 1, "claims should spread over the workers"


async def test_sqlite_write_waits_for_another_process_without_blocking_the_loop(tmp_path: Path) -> None:
    """While another connection (as another process would) holds SQLite's write lock, a write waits for it
    in the writer thread: the event loop keeps running, and the write lands once the lock is free."""
    path = tmp_path / "locked.sqlite3"
    store = SqliteStore(path)
    await store.migrate()
    await store.open()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        caller = await provision(store)
        message = make_message(caller)
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(store.accepting.accept_message(message))
        for _ in range(5):  # the loop turns promptly while the write waits
            started = time.monotonic()
            await asyncio.sleep(0.01)
            assert time.monotonic() - started < 1.0
        assert not write.done()
        other.execute("ROLLBACK")
        await asyncio.wait_for(write, 10)
        assert (await store.messages.find_message(message.tracking_id)).state is MessageState.ACCEPTED
        # and the next write takes the fast path again
        second = make_message(caller, 1)
        await asyncio.wait_for(store.accepting.accept_message(second), 10)
        assert (await store.messages.find_message(second.tracking_id)).tracking_id == second.tracking_id
    finally:
        other.close()
        await store.close()


async def test_sqlite_write_cancelled_during_its_commit_leaves_the_store_usable(tmp_path: Path) -> None:
    """A caller that gives up while its commit runs in the writer thread does not hand the connection to
    the next write mid-commit: the next write waits for that commit, and both land."""
    store = SqliteStore(tmp_path / "cancel.sqlite3")
    await store.migrate()
    await store.open()
    try:
        for n in range(20):
            first = asyncio.create_task(store.accounts.create_account(f"gone-{n}"))
            await asyncio.sleep(0)  # its statements ran on the loop; its commit is in the writer thread
            first.cancel()
            second = await asyncio.wait_for(store.accounts.create_account(f"kept-{n}"), 10)
            assert (await store.accounts.get_account(second.id)).name == f"kept-{n}"
        names = {a.name for a in await store.accounts.list_accounts()}
        assert {f"kept-{n}" for n in range(20)} <= names
    finally:
        await store.close()


async def test_sqlite_claim_of_some_kinds_reads_due_jobs_in_index_order(tmp_path: Path) -> None:
    """A claim limited to some kinds still walks jobs_due in order: it neither reads every job of the kind
    through the (kind, ref) index nor sorts them (40 ms a claim with 90,000 jobs queued)."""
    path = tmp_path / "plan.sqlite3"
    store = SqliteStore(path)
    await store.migrate()
    sql = claim_statement("jobs", f" AND {store.db.unindexed('kind')} IN (?)", "")
    conn = sqlite3.connect(path)
    try:
        params = (1e12, "deliver", 10, 1e12, "deliver", 10, "w", 1.0, 1.0, 10)
        plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    finally:
        conn.close()
    assert "jobs_due" in plan and "jobs_lease" in plan, plan
    assert "autoindex" not in plan and "TEMP B-TREE" not in plan, plan


async def test_sqlite_claim_of_postbacks_reads_only_the_indexes_of_waiting_and_running_ones(tmp_path: Path) -> None:
    """The postback claim walks postbacks_due (queued, by due time) and postbacks_lease (running, by lease
    end) in order; delivered and failed postbacks are in neither."""
    path = tmp_path / "plan.sqlite3"
    store = SqliteStore(path)
    await store.migrate()
    condition = (
        " AND NOT EXISTS (SELECT 1 FROM postbacks e WHERE e.subject_id = postbacks.subject_id "
        "AND e.id < postbacks.id AND e.state IN ('queued', 'running'))"
    )
    sql = claim_statement("postbacks", condition, "")
    conn = sqlite3.connect(path)
    try:
        params = (1e12, 10, 1e12, 10, "w", 1.0, 1.0, 10)
        plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        partial = dict(
            conn.execute("SELECT name, sql FROM sqlite_master WHERE name IN ('postbacks_due', 'postbacks_lease')")
        )
    finally:
        conn.close()
    assert "postbacks_due" in plan and "postbacks_lease" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    assert "WHERE state = 'queued'" in partial["postbacks_due"]
    assert "WHERE state = 'running'" in partial["postbacks_lease"]


async def test_sqlite_reads_where_claimed_postbacks_go_by_keys_only(tmp_path: Path) -> None:
    """Where claimed postbacks go (campaign, else account URL, and the secret) is read by primary keys: as
    subqueries in the claim's RETURNING, SQLite scanned every message and account for each postback claimed
    (a pipeline three times slower with 10,000 messages)."""
    path = tmp_path / "plan.sqlite3"
    store = SqliteStore(path)
    await store.migrate()
    conn = sqlite3.connect(path)
    try:
        sql = DESTINATIONS.format(ids="?, ?, ?")
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (1, 2, 3))]
    finally:
        conn.close()
    assert len(plan) == 4 and all(step.startswith("SEARCH ") for step in plan), plan


@pytest.mark.postgres
async def test_postgres_changes_of_one_job_use_its_key_even_in_plans_made_on_an_empty_table(pg_url: str) -> None:
    """A delivery report closes the message's waiting job and ends the job that carried it. The plans that
    a connection prepares while the tables are nearly empty stay in use: they must look the job up by
    its key, not read the partial index of every queued (or running) job (8 ms a change with 8,500 jobs
    queued)."""
    step = Step(
        "msg-1",
        MessageState.DELIVERED,
        "N102",
        "Delivered",
        "x",
        close_job=True,
        wake_job=True,
        jobs=(JobEffect(7, "w1"), JobEffect(8, "w1", 1.0)),
    )
    unit = step_unit(step, time.time())
    assert unit is not None
    changes = [(sql, params) for sql, params in unit[1] if sql.startswith("UPDATE jobs")]
    assert len(changes) == 4
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        plans: dict[str, str] = {}
        for n, (sql, params) in enumerate(changes):
            await conn.execute(f"PREPARE change{n} AS {_pg(sql)}")
            arguments = ", ".join(str(p) if isinstance(p, int | float) else f"'{p}'" for p in params)
            rows = await conn.fetch(f"EXPLAIN EXECUTE change{n}({arguments})")
            plans[sql] = " | ".join(row[0] for row in rows)
    finally:
        await conn.close()
    for sql, plan in plans.items():
        key = "jobs_kind_ref_key" if "ref = ?" in sql else "jobs_pkey"
        assert key in plan, (sql, plan)
        assert "jobs_due" not in plan and "jobs_lease" not in plan, (sql, plan)
