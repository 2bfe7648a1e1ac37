"""One SQL database as the roles see it: a few primitives that each backend supplies, and the batching
that every backend shares.

Backends supply the primitives (read; write statements in one transaction; write many rows in one
transaction; apply a batch of guarded changes; claim) and translate their errors into the store's; the
roles (``mmsgate.store.sql.*``) are written once against them, in SQL that SQLite and PostgreSQL both run.
Placeholders are ``?``; the PostgreSQL backend rewrites them.

Two kinds of write are batched across concurrent callers (:mod:`mmsgate.store.sql.group`): *groups*, the
plain inserts of accepted messages and templates, and *units*, guarded changes (a compare-and-set UPDATE
... RETURNING, then the statements that go with it only if it held). Each caller returns after its own
commit.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

from mmsgate.errors import NotFound
from mmsgate.store.sql.group import Batcher, GroupCommitter
from mmsgate.store.sql.rows import OUTBOX_INSERT, Params, Row, Statement, Unit


def changes_of(units: Sequence[Unit], applied: Sequence[bool]) -> dict[str, list[Params]]:
    """The statements of the units whose guard held, grouped by SQL in order of first use, to run as one
    ``executemany`` each. Safe because the units of one batch touch distinct rows (every caller awaits
    its previous change before making the next), so no unit depends on another's statements."""
    grouped: dict[str, list[Params]] = {}
    for (_, then), held in zip(units, applied, strict=True):
        if held:
            for sql, params in then:
                grouped.setdefault(sql, []).append(params)
    return grouped


def grouped_statements(items: Sequence[Sequence[Statement]]) -> list[tuple[str, list[Params]]]:
    """The statements of several writes (accepted messages, say) grouped by SQL text in order of first
    use, each with its rows: one ``executemany`` each."""
    grouped: dict[str, list[Params]] = {}
    for statements in items:
        for sql, params in statements:
            grouped.setdefault(sql, []).append(params)
    return list(grouped.items())


class SqlDatabase(abc.ABC):
    """A SQL backend's primitives, and the group commits over them."""

    #: appended to a claim query's row selection to lock rows without waiting (PostgreSQL)
    skip_locked = ""
    #: the database's clock, in seconds since the epoch, as an SQL expression
    now_sql = ""
    #: guarded changes committed at once, each batch in its own transaction (SQLite has one writer)
    write_lanes = 1
    #: group commits of accepted messages and templates in flight at once (each on its own connection)
    accept_lanes = 1
    #: with a group commit under way, the least writes that open another lane
    accept_busy_batch = 1
    #: likewise for guarded changes
    write_busy_batch = 1

    def __init__(self, *, group_commit_max: int = 512) -> None:
        self.group_commit_max = group_commit_max
        self._committer: Batcher[list[Statement], None] | None = None
        self._units: Batcher[Unit, bool] | None = None
        self._outbox_listeners: list[Callable[[frozenset[str]], None]] = []

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The database's URL (``sqlite:///PATH``, ``postgresql://...``)."""

    # life -------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and start the batching writers. Does not migrate."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush pending group commits and disconnect."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; return the ids applied."""

    async def watch_jobs(self, listener: Callable[[], None]) -> None:  # noqa: B027 - one process needs none
        """Call ``listener`` when another process commits new jobs; by default nothing is watched."""

    # primitives -------------------------------------------------------------------------------
    def unindexed(self, column: str) -> str:
        """``column`` written so that the query planner does not pick an index for a condition on it."""
        return column

    @abc.abstractmethod
    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one query; return its rows."""

    @abc.abstractmethod
    async def write(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """Run the statements in one transaction; return each one's rows (from RETURNING)."""

    @abc.abstractmethod
    async def write_many(self, batches: Sequence[tuple[str, list[Params]]]) -> None:
        """Run each statement once per parameter set, all in one transaction."""

    @abc.abstractmethod
    async def apply_units(self, units: Sequence[Unit]) -> Sequence[bool | Exception]:
        """Run the units in one transaction: every guard first, in order, then the statements of the
        units whose guard returned a row, grouped by statement (:func:`changes_of`). Raise if nothing
        was committed; a backend that commits a batch in parts returns an exception as the result of each
        unit that failed in a later part (see :class:`mmsgate.store.sql.group.GroupCommitter`)."""

    async def claim(self, statement: Statement) -> list[Row]:
        """Run one statement that changes only leases (a claim of jobs or postbacks, a renewal); return
        its rows."""
        return (await self.write([statement]))[0]

    async def one(self, sql: str, params: Params, what: str) -> Row:
        """The first row of a query; :class:`NotFound` (saying ``what``) when there is none."""
        rows = await self.read(sql, params)
        if not rows:
            raise NotFound(what)
        return rows[0]

    # batched writes ---------------------------------------------------------------------------
    async def start_batching(self) -> None:
        committer = GroupCommitter(
            self._flush_group, self.group_commit_max, self.accept_lanes, busy_batch=self.accept_busy_batch
        )
        committer.start()
        units = GroupCommitter(
            self.apply_units, self.group_commit_max, self.write_lanes, busy_batch=self.write_busy_batch
        )
        units.start()
        self._committer, self._units = committer, units

    async def stop_batching(self) -> None:
        if self._committer is not None:
            await self._committer.close()
            self._committer = None
        if self._units is not None:
            await self._units.close()
            self._units = None

    async def _flush_group(self, items: list[list[Statement]]) -> list[None]:
        await self.write_many(grouped_statements(items))
        return [None] * len(items)

    async def group(self, statements: list[Statement]) -> None:
        """Commit plain inserts together with concurrent ones."""
        if self._committer is None:
            raise RuntimeError("store is not open")
        await self._committer.submit(statements)

    async def unit(self, guard: Statement | None, *then: Statement) -> bool:
        """Commit a guarded change together with concurrent ones; True if its guard held."""
        if self._units is None:
            raise RuntimeError("store is not open")
        applied = await self._units.submit(Unit(guard, then))
        if applied and self._outbox_listeners:
            accounts = frozenset(params[1] for sql, params in then if sql is OUTBOX_INSERT)
            if accounts:
                for listener in self._outbox_listeners:
                    listener(accounts)
        return applied

    def on_outbox(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Call ``listener`` with the accounts of the postbacks a unit of this process put in the outbox."""
        self._outbox_listeners.append(listener)
