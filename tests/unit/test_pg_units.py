"""The rewriting of the store's statements into set-based form for PostgreSQL batches."""

from __future__ import annotations

import re

from mmsgate.store.postgres.units import FusedBatch, fused_statement, fusible, set_form
from mmsgate.store.sql.rows import Unit

GUARD = "UPDATE jobs SET state = 'done', updated_at = ? WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id"
EVENT = (
    "INSERT INTO events (subject_id, account_id, code, status, details, created_at) "
    "SELECT tracking_id, account_id, ?, ?, ?, ? FROM messages WHERE tracking_id = ?"
)
INBOX = "INSERT INTO inbox (number, mms) VALUES (?, ?) ON CONFLICT (number) DO NOTHING"
TYPES = {
    GUARD: ("float8", "int8", "text", "text"),
    EVENT: ("text", "text", "text", "float8", "text"),
    INBOX: ("text", "text"),
}


def test_each_form_takes_its_rows_from_the_source() -> None:
    guard = set_form(GUARD)
    assert guard is not None and guard.guard
    assert guard.render("SRC") == (
        "UPDATE jobs SET state = 'done', updated_at = i.arg1 FROM SRC WHERE id = i.arg2 AND lease_owner = i.arg3 "
        "AND state = i.arg4 RETURNING i.unit"
    )
    event = set_form(EVENT)
    assert event is not None and not event.guard
    # rows are inserted in the batch's order (a message's events keep theirs)
    assert event.render("SRC").endswith("FROM messages, SRC WHERE tracking_id = i.arg5 ORDER BY i.ord")
    inbox = set_form(INBOX)
    assert inbox is not None
    assert inbox.render("SRC") == (
        "INSERT INTO inbox (number, mms) SELECT i.arg1, i.arg2 FROM SRC ORDER BY i.ord ON CONFLICT (number) DO NOTHING"
    )


def test_what_cannot_be_rewritten_runs_statement_by_statement() -> None:
    assert set_form("DELETE FROM parts WHERE owner_id = ?") is None
    inserting_guard = "INSERT INTO inbox (number, mms) VALUES (?, ?) ON CONFLICT (number) DO NOTHING RETURNING id"
    assert not fusible(Unit((inserting_guard, ("n", "m")), ()))
    assert not fusible(Unit((GUARD, (1.0, 2, "w", "running")), [("DELETE FROM parts WHERE owner_id = ?", ("x",))]))
    assert fusible(Unit((GUARD, (1.0, 2, "w", "running")), [(EVENT, ("N", "S", "D", 1.0, "t")), (INBOX, ("n", "m"))]))


def test_a_batch_passes_one_array_per_argument_and_the_units_of_each_row() -> None:
    units = [
        Unit((GUARD, (1.0, 7, "w", "running")), [(EVENT, ("N101", "Sent", "d", 1.0, "t1"))]),
        Unit(None, [(INBOX, ("n1", "m1")), (INBOX, ("n2", "m2"))]),
        Unit((GUARD, (2.0, 8, "w", "running")), []),
    ]
    batch = FusedBatch(units, TYPES.__getitem__)

    numbers = sorted({int(n) for n in re.findall(r"\$(\d+)", batch.statement)})
    assert numbers == list(range(1, len(batch.arguments) + 1))
    # the guard's rows, then the units without a guard, then each change's rows (in text order)
    assert batch.arguments[:6] == [[1.0, 2.0], [7, 8], ["w", "w"], ["running", "running"], [0, 2], [1]]
    assert batch.arguments[6:] == [["N101"], ["Sent"], ["d"], [1.0], ["t1"], [0], ["n1", "n2"], ["m1", "m2"], [1, 1]]
    assert batch.applied([1, 2]) == [False, True, True]
    assert batch.statement == fused_statement(((GUARD, TYPES[GUARD]),), ((EVENT, TYPES[EVENT]), (INBOX, TYPES[INBOX])))
