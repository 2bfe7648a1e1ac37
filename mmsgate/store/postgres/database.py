"""The PostgreSQL database on asyncpg; jobs and postbacks claimed with FOR UPDATE SKIP LOCKED.

Several API and worker processes on several machines may share one database. asyncpg prepares every
statement once per session and encodes parameters in C. Every write is one statement where it can be:
a group commit of accepted messages is one INSERT per table from JSON, and a batch of guarded changes
is one statement of set-based CTEs (:mod:`mmsgate.store.postgres.units`); one statement is one transaction
and one round trip. Sessions come from :class:`mmsgate.store.postgres.sessions.Sessions`: a main set, and
small sets with planner and commit settings of their own for claims and for batches of changes.
Migrations run through yoyo, which uses psycopg.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from asyncpg import exceptions as pg_errors

from mmsgate.errors import Conflict, NotFound, StoreError, StoreUnavailable
from mmsgate.store.migrate import apply_migrations
from mmsgate.store.postgres.sessions import Sessions
from mmsgate.store.postgres.units import FusedBatch, fusible
from mmsgate.store.sql.database import SqlDatabase, changes_of
from mmsgate.store.sql.rows import Params, Row, Statement, Unit

JOBS_CHANNEL = "mmsgate_jobs"
CLAIM_SESSIONS = 3
CLAIM_SETTINGS = {"enable_bitmapscan": "off", "synchronous_commit": "off"}
"""Settings of the sessions that claim jobs and postbacks and renew leases (see ``_SessionSets.claims``).

Their commits do not wait for the WAL to reach the disk (a synchronous commit costs the server CPU and
waiting a claim does not need; figures in docs/benchmarks.md): a claim lost in a crash of the server only
leaves its jobs or postbacks due, to be claimed again, and whatever is done under a claim is recorded by a
later commit that waits, and so brings every earlier change to the disk with it."""
UNIT_SETTINGS = {
    "plan_cache_mode": "force_generic_plan",
    "enable_seqscan": "off",
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
}
"""Settings of the sessions that run batches of guarded changes (see ``_SessionSets.units``)."""
CONNECT_TIMEOUT = 10.0
ACQUIRE_TIMEOUT = 30.0  # every session busy this long is as good as unavailable
log = logging.getLogger("mmsgate.store")


@functools.lru_cache(maxsize=1024)
def _pg(sql: str) -> str:
    """The statement with PostgreSQL's numbered placeholders ($1, $2, ...) for the store's ``?``."""
    numbers = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


@functools.lru_cache(maxsize=256)
def _numbered_guard(sql: str) -> str:
    """The guard, answering with the unit's number (one more parameter) for each row it returns: the
    guards of several units run as one batch, and its rows say which units' guards held."""
    return f"WITH guard AS ({_pg(sql)}) SELECT ${sql.count('?') + 1}::int FROM guard"


_PLAIN_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([?, ]+\)")
_json = msgspec.json.Encoder()


@functools.lru_cache(maxsize=64)
def _inserts_statement(statements: tuple[str, ...]) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """One statement that inserts the rows of several plain INSERTs (what group commits carry), each
    table's rows passed as one JSON array of objects, and notifies the workers; with the column names of
    each. Outside a transaction, one statement is one transaction: a group commit is one round trip."""
    parts: list[str] = []
    columns: list[tuple[str, ...]] = []
    for n, sql in enumerate(statements):
        match = _PLAIN_INSERT.fullmatch(sql)
        if match is None:
            raise ValueError(f"a group commit takes plain INSERT statements, not {sql!r}")
        table, names = match.group(1), match.group(2)
        parts.append(
            f"w{n} AS (INSERT INTO {table} ({names}) SELECT {names} "
            f"FROM json_populate_recordset(NULL::{table}, ${n + 1}::json))"
        )
        columns.append(tuple(name.strip() for name in names.split(",")))
    return f"WITH {', '.join(parts)} SELECT pg_notify('{JOBS_CHANNEL}', '')", tuple(columns)


#: failures that say the connection or the server is not there (now): the same call may work later
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a session whose server end died while idle, used before its end was read
    pg_errors.PostgresConnectionError,
    pg_errors.CannotConnectNowError,
    pg_errors.TooManyConnectionsError,
    pg_errors.OperatorInterventionError,
    pg_errors.InsufficientResourcesError,
)


def _translate(exc: Exception) -> StoreError:
    if isinstance(exc, pg_errors.ForeignKeyViolationError):
        return NotFound(str(exc))
    if isinstance(exc, pg_errors.UniqueViolationError):
        return Conflict(str(exc))
    if isinstance(
        exc,
        pg_errors.DataError
        | pg_errors.IntegrityConstraintViolationError
        | pg_errors.SyntaxOrAccessError
        | pg_errors.FeatureNotSupportedError,
    ):
        return StoreError(f"PostgreSQL refused the data: {exc}")  # the same data would fail again
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        return StoreError(f"the data cannot be sent to PostgreSQL: {exc}")  # asyncpg's encoding refused it
    return StoreUnavailable(f"PostgreSQL: {exc}")


_FAILURES = (asyncpg.PostgresError, *_UNAVAILABLE)


def _type_name(kind: Any) -> str:
    """An SQL name of a parameter's type as asyncpg describes it (a ``Type``: oid, name, kind, schema)."""
    return str(kind.name) if kind.schema == "pg_catalog" else f'"{kind.schema}"."{kind.name}"'


def _rows(records: Sequence[asyncpg.Record]) -> list[Row]:
    return [tuple(record) for record in records]


@dataclass(frozen=True, slots=True)
class _SessionSets:
    """The sessions of an open store."""

    main: Sessions
    """Reads, accepts and any other write."""
    claims: Sessions
    """Claims of jobs and postbacks, and lease renewals (CLAIM_SETTINGS). A queue's newest rows lie past
    the statistics of the last ANALYZE, so the planner guesses a handful of due jobs and reads them all
    with a bitmap scan, then sorts them; without bitmap scans a claim reads the ordered partial index, only
    the rows it takes, in one round trip (no transaction to set it in)."""
    units: Sessions
    """Batches of guarded changes (UNIT_SETTINGS). A batch is one statement of its own text for each
    combination of statement texts; with custom plans the server planned many of them anew, so these
    sessions keep generic plans. A plan made while a table was small would read all of it (a sequential
    scan, or a hash join) for every batch once it has grown: these sessions only join by index lookups
    (nested loops), as a few rows from arrays against tables of any size want."""


class PostgresDatabase(SqlDatabase):
    """The database for deployments that scale across processes and machines."""

    skip_locked = " FOR UPDATE SKIP LOCKED"
    now_sql = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
    write_lanes = 3
    write_busy_batch = 8  # fewer, larger batches of units: less CPU a message on both sides
    accept_lanes = 6  # an accept batch is one round trip: more in flight keep the event loop busy
    accept_busy_batch = 12  # ... but not as many tiny ones, each a statement for the server to run

    def __init__(self, url: str, *, pool_size: int = 12, group_commit_max: int = 512) -> None:
        super().__init__(group_commit_max=group_commit_max)
        self._url = url
        self._pool_size = pool_size
        self._sessions: _SessionSets | None = None
        self._watchers: list[asyncio.Task[None]] = []
        self._parameter_types: dict[str, tuple[str, ...]] = {}

    @property
    def url(self) -> str:
        return self._url

    def _new_sessions(self, size: int, settings: dict[str, str] | None = None) -> Sessions:
        return Sessions(
            self.url, size, settings=settings, connect_timeout=CONNECT_TIMEOUT, wait_timeout=ACQUIRE_TIMEOUT
        )

    async def open(self) -> None:
        main = self._new_sessions(self._pool_size)
        try:
            async with main.session():
                pass  # one session now: a server that is not there is said at start
        except (*_FAILURES, ValueError) as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        self._sessions = _SessionSets(
            main,
            self._new_sessions(CLAIM_SESSIONS, CLAIM_SETTINGS),
            self._new_sessions(self.write_lanes + 1, UNIT_SETTINGS),
        )
        await self.start_batching()

    async def close(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self._watchers.clear()
        await self.stop_batching()
        if self._sessions is not None:
            sets, self._sessions = self._sessions, None
            for sessions in (sets.claims, sets.units, sets.main):
                await sessions.close()

    async def migrate(self) -> list[str]:
        return await asyncio.to_thread(apply_migrations, self.url, "postgresql")

    async def watch_jobs(self, listener: Callable[[], None]) -> None:
        self._watchers.append(asyncio.create_task(self._listen(listener), name="listen-jobs"))

    async def _listen(self, listener: Callable[[], None]) -> None:
        """LISTEN on its own connection, reconnecting after a failure; polling covers any gap. A failure
        is said once, not at every reconnection while the server is away."""
        failing = False
        while True:
            try:
                await self._listen_once(listener)
                log.warning("the connection listening for new jobs closed; polling until it is back")
                failing = False
            except _FAILURES as exc:
                if not failing:
                    log.warning("listening for new jobs failed (%s); polling until it is back", exc)
                failing = True
            await asyncio.sleep(1.0)

    async def _listen_once(self, listener: Callable[[], None]) -> None:
        """Listen until the connection closes."""
        conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(JOBS_CHANNEL, lambda *_: listener())
            listener()  # anything committed while not listening is claimed now
            await lost.wait()
        finally:
            conn.terminate()

    def _require_sessions(self) -> _SessionSets:
        if self._sessions is None:
            raise RuntimeError("store is not open")
        return self._sessions

    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            async with self._require_sessions().main.session() as conn:
                return _rows(await conn.fetch(_pg(sql), *params))
        except _FAILURES as exc:
            raise _translate(exc) from exc

    async def claim(self, statement: Statement) -> list[Row]:
        sql, params = statement
        try:
            async with self._require_sessions().claims.session() as conn:
                return _rows(await conn.fetch(_pg(sql), *params))
        except _FAILURES as exc:
            raise _translate(exc) from exc

    async def write(self, statements: Sequence[Statement]) -> list[list[Row]]:
        if len(statements) == 1:  # one statement is one transaction: no BEGIN and COMMIT round trips
            return [await self.read(*statements[0])]
        results: list[list[Row]] = []
        try:
            async with self._require_sessions().main.session() as conn, conn.transaction():
                for sql, params in statements:
                    results.append(_rows(await conn.fetch(_pg(sql), *params)))
        except _FAILURES as exc:
            raise _translate(exc) from exc
        return results

    async def write_many(self, batches: Sequence[tuple[str, list[Params]]]) -> None:
        # group commits carry new jobs: the statement tells the workers of every process (on commit)
        try:
            statement, columns = _inserts_statement(tuple(sql for sql, _ in batches))
            async with self._require_sessions().main.session() as conn:
                await conn.execute(
                    statement,
                    *(
                        _json.encode([dict(zip(names, row, strict=True)) for row in rows]).decode()
                        for names, (_, rows) in zip(columns, batches, strict=True)
                    ),
                )
        except _FAILURES as exc:
            raise _translate(exc) from exc

    async def apply_units(self, units: Sequence[Unit]) -> list[bool | Exception]:
        # the units whose statements can be rewritten run as one statement (one round trip). If it fails,
        # nothing is committed and this raises (the group committer tries each unit alone). Once it has
        # committed, what follows runs in transactions of its own, and a failure there is only its units'
        # own: the units that cannot be rewritten, and those whose guard may have lost its row to another
        # unit of the batch, which are tried again after it
        fusing = [fusible(unit) for unit in units]
        results: list[bool | Exception] = [False] * len(units)
        fused = [n for n, fuses in enumerate(fusing) if fuses]
        again: list[int] = []
        if fused:
            try:
                async with self._require_sessions().units.session() as conn:
                    held = await self._apply_fused(conn, [units[n] for n in fused])
            except _FAILURES as exc:
                raise _translate(exc) from exc
            for n, ok in zip(fused, held, strict=True):
                results[n] = ok
                if not ok and units[n].guard is not None:
                    again.append(n)
        for group in ([n for n, fuses in enumerate(fusing) if not fuses], again):
            if group:
                for n, result in zip(group, await self._apply_apart([units[n] for n in group]), strict=True):
                    results[n] = result
        return results

    async def _apply_fused(self, conn: asyncpg.Connection, units: Sequence[Unit]) -> list[bool]:
        for sql in {sql for unit in units for sql, _ in (*([unit.guard] if unit.guard else ()), *unit.then)}:
            if sql not in self._parameter_types:
                statement = await conn.prepare(_pg(sql))
                self._parameter_types[sql] = tuple(_type_name(t) for t in statement.get_parameters())
        batch = FusedBatch(units, self._parameter_types.__getitem__)
        return batch.applied([record[0] for record in await conn.fetch(batch.statement, *batch.arguments)])

    async def _apply_apart(self, units: Sequence[Unit]) -> list[bool | Exception]:
        """The units statement by statement in one transaction; if that fails, each in a transaction of its
        own, and a unit that fails alone gets its error as its result."""
        try:
            async with self._require_sessions().units.session() as conn:
                return list(await self._apply_stepwise(conn, units))
        except _FAILURES as exc:
            if len(units) == 1:
                return [_translate(exc)]
        results: list[bool | Exception] = []
        for unit in units:
            try:
                async with self._require_sessions().units.session() as conn:
                    results.extend(await self._apply_stepwise(conn, [unit]))
            except _FAILURES as exc:
                results.append(_translate(exc))
        return results

    async def _apply_stepwise(self, conn: asyncpg.Connection, units: Sequence[Unit]) -> list[bool]:
        # the guards of one statement run as one batch (one round trip), answering with the numbers of
        # the units whose guard held; then the changes of those units, one batch per statement
        applied = [guard is None for guard, _ in units]
        guards: dict[str, list[tuple[Any, ...]]] = {}
        for number, (guard, _) in enumerate(units):
            if guard is not None:
                guards.setdefault(guard[0], []).append((*guard[1], number))
        async with conn.transaction():
            for sql, rows in guards.items():
                held = (
                    await conn.fetch(_numbered_guard(sql), *rows[0])
                    if len(rows) == 1
                    else await conn.fetchmany(_numbered_guard(sql), rows)
                )
                for record in held:
                    applied[record[0]] = True
            for sql, params in changes_of(units, applied).items():
                if len(params) == 1:
                    await conn.execute(_pg(sql), *params[0])
                else:
                    await conn.executemany(_pg(sql), params)
        return applied
