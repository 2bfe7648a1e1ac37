"""PostgreSQL backend: a psycopg 3 connection pool; jobs claimed with FOR UPDATE SKIP LOCKED.

Several API and worker processes on several machines may share one database.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable, Sequence

import msgspec
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from mmsgate.core.model import Behaviour, Handset, Message, SandboxSubmission
from mmsgate.errors import Conflict, NotFound, StoreError, StoreUnavailable
from mmsgate.store.lookups import Lookups
from mmsgate.store.migrate import apply_migrations
from mmsgate.store.rows import MESSAGE_READ_COLUMNS, message_row
from mmsgate.store.sql import Params, Row, Statement, Unit, changes_of
from mmsgate.store.sql_console import ConsoleSql
from mmsgate.store.sql_delivery import SUBMISSION_COLUMNS, submission_row

JOBS_CHANNEL = "mmsgate_jobs"
log = logging.getLogger("mmsgate.store")


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


_PLAIN_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \([?, ]+\)")
_json = msgspec.json.Encoder()


@functools.lru_cache(maxsize=64)
def _inserts_statement(statements: tuple[str, ...]) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """One statement that inserts the rows of several plain INSERTs (what group commits carry), each
    table's rows passed as one JSON array of objects, and notifies the workers; with the column names of
    each. In autocommit, one statement is one transaction: a group commit is one round trip."""
    parts: list[str] = []
    columns: list[tuple[str, ...]] = []
    for n, sql in enumerate(statements):
        match = _PLAIN_INSERT.fullmatch(sql)
        if match is None:
            raise ValueError(f"a group commit takes plain INSERT statements, not {sql!r}")
        table, names = match.group(1), match.group(2)
        parts.append(
            f"w{n} AS (INSERT INTO {table} ({names}) SELECT {names} "
            f"FROM json_populate_recordset(NULL::{table}, %s::json))"
        )
        columns.append(tuple(name.strip() for name in names.split(",")))
    return f"WITH {', '.join(parts)} SELECT pg_notify('{JOBS_CHANNEL}', '')", tuple(columns)


def _translate(exc: psycopg.Error) -> StoreError:
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return NotFound(str(exc))
    if isinstance(exc, pg_errors.UniqueViolation):
        return Conflict(str(exc))
    if isinstance(exc, psycopg.DataError | psycopg.ProgrammingError | psycopg.IntegrityError):
        return StoreError(f"PostgreSQL refused the data: {exc}")  # the same data would fail again
    return StoreUnavailable(f"PostgreSQL: {exc}")


class PostgresStore(ConsoleSql):
    """The store for deployments that scale across processes and machines."""

    skip_locked = " FOR UPDATE SKIP LOCKED"
    # a queue's newest rows lie past the statistics of the last ANALYZE, so the planner guesses a handful
    # of due jobs and reads them all with a bitmap scan, then sorts them: with a backlog of 18,000 jobs,
    # 11-23 ms a claim (bench/pipeline.py). The ordered partial index reads only the rows it takes (1.7 ms).
    claim_settings = (("SET LOCAL enable_bitmapscan = off", ()),)
    now_sql = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
    write_lanes = 3
    accept_lanes = 6  # an accept batch is one round trip: more in flight keep the event loop busy
    accept_busy_batch = 12  # ... but not as many tiny ones, each a statement for the server to run

    def __init__(self, url: str, *, pool_size: int = 12, group_commit_max: int = 512) -> None:
        super().__init__(group_commit_max=group_commit_max)
        self.url = url
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._watchers: list[asyncio.Task[None]] = []
        self._messages: Lookups[str, Row] = Lookups(self._messages_by_id)
        self._handsets: Lookups[str, Row] = Lookups(self._handsets_by_number)
        self._submissions: Lookups[str, Row] = Lookups(self._submissions_by_key)

    async def open(self) -> None:
        pool = AsyncConnectionPool(
            self.url, min_size=1, max_size=self._pool_size, open=False, kwargs={"autocommit": True}
        )
        try:
            await pool.open(wait=True, timeout=10)
        except (psycopg.Error, TimeoutError) as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        self._pool = pool
        await self._start_group_commit()

    async def close(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self._watchers.clear()
        await self._stop_group_commit()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def migrate(self) -> list[str]:
        return await asyncio.to_thread(apply_migrations, self.url, "postgresql")

    async def watch_jobs(self, listener: Callable[[], None]) -> None:
        self._watchers.append(asyncio.create_task(self._listen(listener), name="listen-jobs"))

    async def _listen(self, listener: Callable[[], None]) -> None:
        """LISTEN on its own connection, reconnecting after a failure; polling covers any gap."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {JOBS_CHANNEL}")
                    listener()  # anything committed while not listening is claimed now
                    async for _ in conn.notifies():
                        listener()
            except psycopg.Error as exc:
                log.warning("listening for new jobs failed (%s); polling until it is back", exc)
                await asyncio.sleep(1.0)

    async def find_message(self, tracking_id: str) -> Message:
        # the jobs a worker claimed together each read their message at once: one query for all
        row = await self._messages.get(tracking_id)
        if row is None:
            raise NotFound(f"no message {tracking_id}")
        return message_row(row)

    async def _messages_by_id(self, tracking_ids: list[str]) -> dict[str, Row]:
        rows = await self._read(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE tracking_id = ANY(?)", (tracking_ids,)
        )
        return {row[0]: row for row in rows}

    async def get_handset(self, number: str) -> Handset:
        # the sandbox submits of jobs that go on together each read their handset: one query for all
        row = await self._handsets.get(number)
        return Handset(number) if row is None else Handset(number, Behaviour(row[1]), float(row[2]))

    async def _handsets_by_number(self, numbers: list[str]) -> dict[str, Row]:
        rows = await self._read(
            "SELECT number, behaviour, delay FROM sandbox_handsets WHERE number = ANY(?)", (numbers,)
        )
        return {row[0]: row for row in rows}

    async def sandbox_submission(self, key: str) -> SandboxSubmission | None:
        # ... and so do the sandbox reports that start together
        row = await self._submissions.get(key)
        return None if row is None else submission_row(row)

    async def _submissions_by_key(self, keys: list[str]) -> dict[str, Row]:
        rows = await self._read(
            f"SELECT {SUBMISSION_COLUMNS} FROM sandbox_submissions "
            "WHERE submission_id = ANY(?) OR carrier_message_id = ANY(?)",
            (keys, keys),
        )
        found: dict[str, Row] = {}
        for row in rows:
            found[row[0]] = found[row[1]] = row
        return found

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    async def _read(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            async with self._require_pool().connection() as conn:
                cur = await conn.execute(_pg(sql), params)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    async def _write(self, statements: Sequence[Statement]) -> list[list[Row]]:
        results: list[list[Row]] = []
        try:
            async with self._require_pool().connection() as conn, conn.transaction():
                for sql, params in statements:
                    cur = await conn.execute(_pg(sql), params)
                    results.append(await cur.fetchall() if cur.description else [])
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return results

    async def _write_many(self, batches: Sequence[tuple[str, list[Params]]]) -> None:
        # group commits carry new jobs: the statement tells the workers of every process (on commit)
        try:
            statement, columns = _inserts_statement(tuple(sql for sql, _ in batches))
            async with self._require_pool().connection() as conn:
                await conn.execute(
                    statement,
                    [
                        _json.encode([dict(zip(names, row, strict=True)) for row in rows]).decode()
                        for names, (_, rows) in zip(columns, batches, strict=True)
                    ],
                )
        except psycopg.Error as exc:
            raise _translate(exc) from exc

    async def _apply_units(self, units: Sequence[Unit]) -> list[bool]:
        # pipelined: every guard is sent at once, then the changes of the units whose guard held, grouped
        # by statement, so a batch costs a few round trips instead of one per statement
        try:
            async with self._require_pool().connection() as conn, conn.transaction(), conn.pipeline():
                guards = [
                    await conn.execute(_pg(guard[0]), guard[1]) if guard is not None else None for guard, _ in units
                ]
                applied = [True if cur is None else bool(await cur.fetchall()) for cur in guards]
                cur = conn.cursor()
                for sql, rows in changes_of(units, applied).items():
                    await cur.executemany(_pg(sql), rows)
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        return applied
