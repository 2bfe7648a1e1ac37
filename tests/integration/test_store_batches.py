"""Guarded changes committed together in one batch give what committing them one after the other gives
(units that compete for one row, in some order: they were made concurrently). On PostgreSQL a batch runs
as one statement whose parts all see the database as it was before it (mmsgate/store/pg_units.py); these
tests hold it to the one-after-the-other outcome. Every test runs against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest

from mmsgate.core.codes import JobKind, MessageState, TemplateState
from mmsgate.core.model import JobEffect, MediaKind, Part, Step, Template
from mmsgate.errors import StoreError
from mmsgate.store import Store
from mmsgate.store.postgres import PostgresStore
from mmsgate.store.postgres.database import _pg
from mmsgate.store.postgres.units import FusedBatch
from mmsgate.store.sql.lifecycle import step_unit
from mmsgate.store.sql.rows import Unit, event_statement, part_statements
from tests.conftest import Caller, provision
from tests.integration.test_store import _sending, make_message
from tests.integration.test_store_delivery import outgoing

S = MessageState


async def submitting(store: Store, caller: Caller, n: int = 0) -> str:
    message = make_message(caller, n)
    await store.accepting.accept_message(message)
    assert await store.lifecycle.media_ready(
        message.tracking_id, [], code=None, status="Ready", details="x", submitting="sbx"
    )
    return message.tracking_id


def unit(store: Store, step: Step) -> Unit:
    made = step_unit(step, time.time())
    assert made is not None
    return Unit(*made)


async def test_a_unit_whose_guard_holds_after_another_of_its_batch_holds(store: Store, caller: Caller) -> None:
    tracking_id = await submitting(store, caller)
    sent = Step(tracking_id, S.SUBMITTED, "N101", "Sent", "taken", carrier_message_id="c-1", carrier="sbx")
    delivered = Step(tracking_id, S.DELIVERED, "N102", "Delivered", "delivered")

    assert await store.db.apply_units([unit(store, sent), unit(store, delivered)]) == [True, True]

    message = await store.messages.find_message(tracking_id)
    assert (message.state, message.carrier_message_id) == (S.DELIVERED, "c-1")
    assert [e.code for e in await store.messages.list_events(tracking_id)][-2:] == ["N101", "N102"]


async def test_of_two_final_steps_of_one_message_in_a_batch_one_holds(store: Store, caller: Caller) -> None:
    tracking_id = await submitting(store, caller)
    assert await store.lifecycle.advance(
        Step(tracking_id, S.SUBMITTED, "N101", "Sent", "taken", carrier_message_id="c-1")
    )
    delivered = Step(
        tracking_id, S.DELIVERED, "N102", "Delivered", "ok", postback=outgoing(caller.account_id, tracking_id, "N102")
    )
    expired = Step(
        tracking_id, S.EXPIRED, "N103", "Expired", "late", postback=outgoing(caller.account_id, tracking_id, "N103")
    )

    held = await store.db.apply_units([unit(store, delivered), unit(store, expired)])

    assert sorted(bool(h) for h in held) == [False, True] and all(isinstance(h, bool) for h in held)
    winner, loser = (delivered, expired) if held[0] else (expired, delivered)
    assert (await store.messages.find_message(tracking_id)).state is winner.target
    codes = [e.code for e in await store.messages.list_events(tracking_id)]
    assert (codes.count(winner.code), codes.count(loser.code)) == (1, 0)
    assert [code for _, code, _, _ in await store.messages.list_postbacks(tracking_id)] == [winner.code]


async def test_units_of_many_messages_and_kinds_in_one_batch(store: Store, caller: Caller) -> None:
    """Steps with and without postbacks, a guard that fails, a change without a guard and a unit that
    deletes (which PostgreSQL runs statement by statement) all in one batch."""
    tracking_ids = [await submitting(store, caller, n) for n in range(4)]
    [job] = [j for j in await store.jobs.claim_jobs("w1", limit=10, lease_seconds=30) if j.ref == tracking_ids[0]]
    template = Template(f"mms-{time.monotonic_ns()}", f"trk-{time.monotonic_ns()}", caller.account_id, "t", _sending())
    await store.accepting.accept_template(template)
    part = Part(template.mms_id, 1, 1, MediaKind.IMAGE, "image/jpeg", 10, "ab" * 32, "https://m.example/a.jpg")
    now = time.time()
    ready = Unit(
        (
            "UPDATE templates SET state = ?, updated_at = ? WHERE mms_id = ? AND state = ? RETURNING mms_id",
            (TemplateState.READY.value, now, template.mms_id, TemplateState.PROCESSING.value),
        ),
        [
            ("DELETE FROM parts WHERE owner_id = ?", (template.mms_id,)),
            *part_statements([part]),
        ],
    )
    units = [
        unit(
            store,
            Step(
                tracking_ids[0],
                S.SUBMITTED,
                "N101",
                "Sent",
                "taken",
                carrier_message_id="c-0",
                carrier="sbx",
                postback=outgoing(caller.account_id, tracking_ids[0], "N101"),
                jobs=(JobEffect(job.id, "w1", now + 3600),),
            ),
        ),
        unit(store, Step(tracking_ids[1], S.SUBMITTED, "N101", "Sent", "taken", carrier_message_id="c-1")),
        unit(store, Step(tracking_ids[2], S.DELIVERED, "N102", "Delivered", "not submitted yet")),
        Unit(None, [("INSERT INTO gateway_values (name, value) VALUES (?, ?)", ("batch", "yes"))]),
        ready,
        unit(store, Step(tracking_ids[3], S.SUBMITTED, "N101", "Sent", "taken", carrier_message_id="c-3")),
    ]

    assert await store.db.apply_units(units) == [True, True, False, True, True, True]

    states = [(await store.messages.find_message(t)).state for t in tracking_ids]
    assert states == [S.SUBMITTED, S.SUBMITTED, S.SUBMITTING, S.SUBMITTED]
    assert [p[1] for p in await store.messages.list_postbacks(tracking_ids[0])] == ["N101"]
    assert await store.messages.list_postbacks(tracking_ids[1]) == []
    assert "N102" not in [e.code for e in await store.messages.list_events(tracking_ids[2])]
    assert await store.values.get_value("batch") == "yes"
    assert (await store.messages.find_template(template.mms_id)).state is TemplateState.READY
    assert [p.sha256 for p in await store.messages.list_parts(template.mms_id)] == ["ab" * 32]
    # the deliver job of the first message waits for its report, released by the step's write
    assert await store.jobs.claim_jobs("w2", limit=10, lease_seconds=30, kinds=[JobKind.DELIVER]) == []


@pytest.mark.parametrize("count", [1, 40])
async def test_the_events_of_each_unit_keep_their_order(store: Store, caller: Caller, count: int) -> None:
    messages = [make_message(caller, n) for n in range(count)]
    for message in messages:
        await store.accepting.accept_message(message)
    now = time.time()
    guard = "UPDATE messages SET state = ?, updated_at = ? WHERE tracking_id = ? AND state = ? RETURNING tracking_id"
    units = [
        Unit(
            (guard, (S.SUBMITTING.value, now, m.tracking_id, S.ACCEPTED.value)),
            [
                event_statement("messages", "tracking_id", m.tracking_id, (None, f"first {n}", "x"), now),
                event_statement("messages", "tracking_id", m.tracking_id, (None, f"second {n}", "x"), now),
            ],
        )
        for n, m in enumerate(messages)
    ]

    assert await store.db.apply_units(units) == [True] * len(units)

    for n, message in enumerate(messages):
        statuses = [e.status for e in await store.messages.list_events(message.tracking_id)]
        assert statuses[-2:] == [f"first {n}", f"second {n}"]


@pytest.mark.postgres
async def test_postgres_batches_look_rows_up_by_key_in_plans_made_on_empty_tables(pg_url: str) -> None:
    """The sessions that run batches keep generic plans, made once: a plan made while the tables were
    nearly empty must not read a whole table for each batch once it has grown (a sequential scan, or a
    hash join that reads every row: 0.8 ms of the server's CPU a message in a 20,000-message run)."""
    store = PostgresStore(pg_url)
    await store.open()
    try:
        caller = await provision(store)
        tracking_id = await submitting(store, caller)
        [job] = await store.jobs.claim_jobs("w1", limit=10, lease_seconds=30)
        now = time.time()
        steps = [
            Step(
                tracking_id,
                S.SUBMITTED,
                "N101",
                "Sent",
                "taken",
                carrier_message_id="c-1",
                carrier="sbx",
                postback=outgoing(caller.account_id, tracking_id, "N101"),
                jobs=(JobEffect(job.id, "w1", now + 3600),),
            ),
            Step(
                tracking_id,
                S.DELIVERED,
                "N102",
                "Delivered",
                "ok",
                postback=outgoing(caller.account_id, tracking_id, "N102"),
                close_job=True,
                jobs=(JobEffect(job.id + 1, "w1"),),
            ),
        ]
        units = [unit(store, step) for step in steps]
        attempted = Unit(
            (
                "UPDATE postbacks SET state = ? WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                ("x", 1, "w", "y"),
            ),
            [],
        )
        plans: list[str] = []
        async with store.db._require_sessions().units.session() as conn:
            for batch_units in (units, [attempted]):
                for sql in {s for u in batch_units for s, _ in ([u.guard] if u.guard else []) + list(u.then)}:
                    prepared = await conn.prepare(_pg(sql))
                    store.db._parameter_types[sql] = tuple(t.name for t in prepared.get_parameters())
                batch = FusedBatch(batch_units, store.db._parameter_types.__getitem__)
                types = [t.name for t in (await conn.prepare(batch.statement)).get_parameters()]
                literals = [
                    await conn.fetchval(f"SELECT quote_nullable($1::{kind}::text)", value)
                    for kind, value in zip(types, batch.arguments, strict=True)
                ]
                await conn.execute(f"PREPARE fused{len(plans)} AS {batch.statement}")
                arguments = ", ".join(f"{literal}::{kind}" for literal, kind in zip(literals, types, strict=True))
                rows = await conn.fetch(f"EXPLAIN EXECUTE fused{len(plans)}({arguments})")
                plans.append("\n".join(row[0] for row in rows))
    finally:
        await store.close()
    for plan in plans:
        assert "Seq Scan" not in plan and "Hash Join" not in plan and "Merge Join" not in plan, plan
    assert "messages_pkey" in plans[0] and "jobs_kind_ref_key" in plans[0] and "jobs_pkey" in plans[0], plans[0]
    assert "postbacks_pkey" in plans[1], plans[1]


@pytest.mark.postgres
async def test_postgres_a_failure_after_the_batch_statement_is_its_units_own(pg_url: str) -> None:
    """On PostgreSQL a batch's rewritable units commit in one statement first; a unit run after it (one
    that cannot be rewritten) that fails gets its own error, and the committed ones are not tried again
    (a unit without a guard would be applied twice)."""
    store = PostgresStore(pg_url)
    await store.open()
    try:
        kept = Unit(None, [("INSERT INTO gateway_values (name, value) VALUES (?, ?)", ("batch", "once"))])
        failing = Unit(
            None,
            [("DELETE FROM parts WHERE owner_id = ?", ("nobody",)), ("INSERT INTO accounts (id) VALUES (?)", ("x",))],
        )
        results = await store.db.apply_units([kept, failing])
        assert results[0] is True
        assert isinstance(results[1], StoreError) and "refused" in str(results[1])
        assert await store.values.get_value("batch") == "once"
        # through the group committer, the failing unit's caller alone gets the error
        other = Unit(None, [("INSERT INTO gateway_values (name, value) VALUES (?, ?)", ("other", "v"))])
        outcomes = await asyncio.gather(
            store.db.unit(other.guard, *other.then), store.db.unit(failing.guard, *failing.then), return_exceptions=True
        )
        assert outcomes[0] is True and isinstance(outcomes[1], StoreError)
        assert await store.values.get_value("other") == "v"
    finally:
        await store.close()
