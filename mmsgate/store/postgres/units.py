"""A batch of guarded changes as one PostgreSQL statement.

Run statement by statement, a batch of units (:class:`mmsgate.store.sql.rows.Unit`) costs a round trip
for BEGIN, one per statement text and one for COMMIT, and the server runs every row's statement on its own
(executor set-up, locks, and the client's encoding of each row). Here the whole batch is one statement:
each statement text of the batch, rewritten to take its rows from arrays (``unnest``), becomes a
data-modifying CTE. Each guard returns the numbers of the units whose guard held; each change takes only
the rows of those units. One statement is one transaction and one round trip, and the server runs each
statement text once for all its rows.

The CTEs of one statement see the database as it was when the statement began, and none sees the
others' effects. That is what a batch's units already assume of each other (they touch distinct rows, see
:func:`mmsgate.store.sql.database.changes_of`), with one exception the caller handles: two units whose guards hit
the same row (a report and an expiry of one message, or a step that a second step of the batch follows).
Only one of the two updates takes effect and only its unit holds; the other unit's guard must be tried
again after it (``PostgresDatabase.apply_units`` does), which gives the outcome of running them one after
the other (in some order: they were made concurrently). The changes of units that hold touch rows of their own
subject (a message's events, postbacks and jobs), each update conditioned on the row's state, so two of
them never change one row.

Statement forms that can be rewritten (the ones the store's units use): ``UPDATE t SET … WHERE …
[RETURNING …]`` as a guard or a change; ``INSERT INTO t (…) VALUES (…) [ON CONFLICT …]`` and ``INSERT
INTO t (…) SELECT … FROM u WHERE …`` as changes. Anything else (a DELETE, an INSERT as a guard) returns
None from :func:`set_form`, and its unit is run statement by statement.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mmsgate.store.sql.rows import Params, Unit

_UPDATE = re.compile(r"UPDATE (\w+) SET (.+?) WHERE (.+?)(?: RETURNING [\w, .]+)?", re.S)
_INSERT_VALUES = re.compile(
    r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \((.+?)\)((?: ON CONFLICT .+?)?)(?: RETURNING [\w, .]+)?", re.S
)
_INSERT_SELECT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) SELECT (.+?) FROM (\w+) WHERE (.+)", re.S)
_PLACEHOLDER = re.compile(r"\?")

UNIT_COLUMN = "unit"
"""The column of a row source that says which unit a row belongs to."""
ORDER_COLUMN = "ord"
"""The column of a change's row source that numbers its rows in the batch's order: rows are inserted in
that order, so generated ids (the order of a message's events, of its postbacks) follow it."""


@dataclass(frozen=True, slots=True)
class SetForm:
    """One statement text rewritten to run once for many rows.

    ``render(source)`` is the statement reading its rows from ``source``, a FROM item whose alias is ``i``
    and whose columns are ``arg1`` … ``argN`` (the statement's parameters, in order) and ``unit`` (and, for
    a change, ``ord``)."""

    guard: bool
    """Whether it may be a guard (an UPDATE): its rendering then returns the units it changed a row for."""
    render: Callable[[str], str]


def _arguments(sql: str) -> str:
    """``sql`` with its ``?`` placeholders named for the row source's columns, in order."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _: f"i.arg{next(numbers)}", sql)


@functools.lru_cache(maxsize=512)
def set_form(sql: str) -> SetForm | None:
    """``sql`` (with ``?`` placeholders) rewritten to take its rows from a row source; None if it has a
    form that cannot be."""
    text = _arguments(sql)
    if match := _UPDATE.fullmatch(text):
        table, assignments, condition = match.groups()
        return SetForm(
            True,
            lambda source: (
                f"UPDATE {table} SET {assignments} FROM {source} WHERE {condition} RETURNING i.{UNIT_COLUMN}"
            ),
        )
    if match := _INSERT_VALUES.fullmatch(text):
        table, columns, values, conflict = match.groups()
        return SetForm(
            False,
            lambda source: (
                f"INSERT INTO {table} ({columns}) SELECT {values} FROM {source} ORDER BY i.{ORDER_COLUMN}{conflict}"
            ),
        )
    if match := _INSERT_SELECT.fullmatch(text):
        table, columns, values, origin, condition = match.groups()
        return SetForm(
            False,
            lambda source: (
                f"INSERT INTO {table} ({columns}) SELECT {values} FROM {origin}, {source} WHERE {condition} "
                f"ORDER BY i.{ORDER_COLUMN}"
            ),
        )
    return None


def fusible(unit: Unit) -> bool:
    """Whether every statement of ``unit`` can be rewritten (its guard as a guard)."""
    if unit.guard is not None:
        form = set_form(unit.guard[0])
        if form is None or not form.guard:
            return False
    return all(set_form(sql) is not None for sql, _ in unit.then)


def _columns(width: int, ordered: bool) -> list[str]:
    return [f"arg{n + 1}" for n in range(width)] + [UNIT_COLUMN] + ([ORDER_COLUMN] if ordered else [])


def _rows_source(types: Sequence[str], first: int, alias: str, ordered: bool) -> str:
    """``unnest`` of one array parameter per argument and one of unit numbers, from parameter ``first``,
    as ``alias``; ``ordered`` numbers the rows too (WITH ORDINALITY)."""
    arrays = [f"${first + n}::{kind}[]" for n, kind in enumerate(types)]
    arrays.append(f"${first + len(types)}::int4[]")
    ordinality = " WITH ORDINALITY" if ordered else ""
    return f"unnest({', '.join(arrays)}){ordinality} AS {alias}({', '.join(_columns(len(types), ordered))})"


@functools.lru_cache(maxsize=256)
def fused_statement(
    guards: tuple[tuple[str, tuple[str, ...]], ...], changes: tuple[tuple[str, tuple[str, ...]], ...]
) -> str:
    """The statement that runs ``guards`` and then ``changes`` (each: statement text and its parameters'
    types) for every unit, returning the numbers of the units that hold. Parameters, in order: for each
    guard and then each change, one array per argument and one of unit numbers; last, the numbers of the
    units without a guard."""
    position = 1
    parts: list[str] = []
    held: list[str] = []
    for n, (sql, types) in enumerate(guards):
        form = set_form(sql)
        assert form is not None and form.guard
        parts.append(f"g{n} AS ({form.render(_rows_source(types, position, 'i', ordered=False))})")
        held.append(f"SELECT {UNIT_COLUMN} FROM g{n}")
        position += len(types) + 1
    held.append(f"SELECT unnest(${position}::int4[])")
    position += 1
    parts.append(f"held ({UNIT_COLUMN}) AS ({' UNION ALL '.join(held)})")
    for n, (sql, types) in enumerate(changes):
        form = set_form(sql)
        assert form is not None
        source = (
            f"(SELECT {', '.join('r.' + name for name in _columns(len(types), ordered=True))} "
            f"FROM {_rows_source(types, position, 'r', ordered=True)} "
            f"WHERE r.{UNIT_COLUMN} = ANY (ARRAY(SELECT {UNIT_COLUMN} FROM held))) AS i"
        )
        parts.append(f"c{n} AS ({form.render(source)})")
        position += len(types) + 1
    return f"WITH {', '.join(parts)} SELECT {UNIT_COLUMN} FROM held"


class FusedBatch:
    """The statement and arguments of one batch of fusible units, and what its answer means.

    ``types`` gives the parameters' types of a statement text (asked of the server once per text)."""

    def __init__(self, units: Sequence[Unit], types: Callable[[str], tuple[str, ...]]) -> None:
        self.units = units
        guard_rows: dict[str, list[tuple[Params, int]]] = {}
        change_rows: dict[str, list[tuple[Params, int]]] = {}
        unguarded: list[int] = []
        for number, (guard, then) in enumerate(units):
            if guard is None:
                unguarded.append(number)
            else:
                guard_rows.setdefault(guard[0], []).append((guard[1], number))
            for sql, params in then:
                change_rows.setdefault(sql, []).append((params, number))
        # a canonical order, so that a batch of the same statement texts is the same (prepared) statement
        guard_texts = sorted(guard_rows)
        change_texts = sorted(change_rows)
        self.statement = fused_statement(
            tuple((sql, types(sql)) for sql in guard_texts), tuple((sql, types(sql)) for sql in change_texts)
        )
        self.arguments: list[list[Any]] = []
        for sql in guard_texts:
            self._add_columns(guard_rows[sql], len(types(sql)))
        self.arguments.append(unguarded)
        for sql in change_texts:
            self._add_columns(change_rows[sql], len(types(sql)))

    def _add_columns(self, rows: list[tuple[Params, int]], width: int) -> None:
        columns: list[list[Any]] = [[] for _ in range(width)]
        numbers: list[int] = []
        for params, number in rows:
            for column, value in zip(columns, params, strict=True):
                column.append(value)
            numbers.append(number)
        self.arguments.extend(columns)
        self.arguments.append(numbers)

    def applied(self, held_units: Sequence[int]) -> list[bool]:
        applied = [False] * len(self.units)
        for number in held_units:
            applied[number] = True
        return applied
