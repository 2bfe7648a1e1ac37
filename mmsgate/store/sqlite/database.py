"""The SQLite database: one file in WAL mode, one writer, reads on the event loop.

Every write of this process goes through one writer connection (:mod:`mmsgate.store.sqlite.writer`):
writes queue and go out together, one transaction at a time, their statements on the event loop and
the COMMIT in the writer thread with the GIL released; other processes (an admin command while
``serve`` runs) wait on SQLite's busy timeout. Reads run on their own connection, on the event loop, so
they never queue behind a commit.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from mmsgate.errors import Conflict, NotFound, StoreError, StoreUnavailable
from mmsgate.store.migrate import apply_migrations
from mmsgate.store.sql.database import SqlDatabase, changes_of, grouped_statements
from mmsgate.store.sql.rows import Params, Row, Statement, Unit
from mmsgate.store.sqlite.writer import BUSY_TIMEOUT_MS, SqliteWriter, run_statements

T = TypeVar("T")

_CONSTRAINT_ERRORS: dict[str, type[StoreError]] = {
    "SQLITE_CONSTRAINT_FOREIGNKEY": NotFound,
    "SQLITE_CONSTRAINT_UNIQUE": Conflict,
    "SQLITE_CONSTRAINT_PRIMARYKEY": Conflict,
}


def _translate(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        kind = _CONSTRAINT_ERRORS.get(getattr(exc, "sqlite_errorname", ""), Conflict)
        return kind(str(exc))
    if isinstance(exc, sqlite3.DataError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return StoreError(f"SQLite refused the data: {exc}")  # the same data would fail again
    return StoreUnavailable(f"SQLite: {exc}")


class SqliteDatabase(SqlDatabase):
    """The embedded default database."""

    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def unindexed(self, column: str) -> str:
        return f"+{column}"  # SQLite's documented way to keep a term from choosing an index

    def __init__(self, path: Path, *, synchronous: str = "FULL", group_commit_max: int = 512) -> None:
        super().__init__(group_commit_max=group_commit_max)
        self.path = path
        self._synchronous = synchronous
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._write_conn: sqlite3.Connection | None = None
        self._sqlite_writer: SqliteWriter | None = None
        self._loop_reader: sqlite3.Connection | None = None
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        # statement and savepoint journals (every write runs in a savepoint) in memory, not temp files
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        """The calling thread's reading connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._write_conn = await asyncio.get_running_loop().run_in_executor(self._writer, self._connect)
        self._write_conn.execute("PRAGMA busy_timeout=0")  # waiting for the lock is the writer thread's
        self._sqlite_writer = SqliteWriter(self._write_conn, self._writer, _translate)
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="sqlite-reader")
        self._loop_reader = self._connect()
        self._loop_reader.execute("PRAGMA busy_timeout=0")  # never wait on the loop: the threads do
        await self.start_batching()

    async def start_batching(self) -> None:
        # the writer batches on its own: every write waiting when a transaction starts goes into it
        writer = self._sqlite_writer
        assert writer is not None
        self._committer = writer.lane(_run_groups, self.group_commit_max)
        self._units = writer.lane(_run_units, self.group_commit_max)

    async def close(self) -> None:
        await self.stop_batching()
        if self._sqlite_writer is not None:
            await self._sqlite_writer.drained()
        for pool in (self._writer, self._readers):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._readers = None
        self._write_conn = self._loop_reader = None
        self._sqlite_writer = None
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    async def migrate(self) -> list[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return await asyncio.to_thread(apply_migrations, self.url, "sqlite")

    async def _run(self, pool: ThreadPoolExecutor | None, fn: Callable[[sqlite3.Connection], T]) -> T:
        if pool is None:
            raise RuntimeError("store is not open")

        def call() -> T:
            try:
                return fn(self._connection())
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(pool, call)

    async def read(self, sql: str, params: Params = ()) -> list[Row]:
        # on the loop: an indexed read of a WAL database takes microseconds, less than handing it to a
        # thread (whose every row step trades the GIL with the loop); a read that would have to wait
        # (SQLITE_BUSY, rare in WAL mode) waits in a reader thread instead
        conn = self._loop_reader
        if conn is None:
            raise RuntimeError("store is not open")
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_BUSY_RECOVERY"):
                raise _translate(exc) from exc
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return await self._run(self._readers, lambda conn: conn.execute(sql, params).fetchall())

    async def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        if self._sqlite_writer is None:
            raise RuntimeError("store is not open")
        return await self._sqlite_writer.run(body)

    async def write(self, statements: Sequence[Statement]) -> list[list[Row]]:
        return await self._transaction(lambda conn: run_statements(conn, statements))

    async def write_many(self, batches: Sequence[tuple[str, list[Params]]]) -> None:
        await self._transaction(lambda conn: _run_many(conn, batches))

    async def apply_units(self, units: Sequence[Unit]) -> list[bool]:
        return await self._transaction(lambda conn: _run_units(conn, units))


def _run_many(conn: sqlite3.Connection, batches: Sequence[tuple[str, list[Params]]]) -> None:
    for sql, rows in batches:
        conn.executemany(sql, rows)


def _run_groups(conn: sqlite3.Connection, items: list[list[Statement]]) -> list[None]:
    """Statement lists (accepted messages and templates) run as one ``executemany`` per SQL text."""
    _run_many(conn, grouped_statements(items))
    return [None] * len(items)


def _run_units(conn: sqlite3.Connection, units: Sequence[Unit]) -> list[bool]:
    """Every guard first, in order, then the statements of the units whose guard held (:func:`changes_of`)."""
    applied = [guard is None or bool(conn.execute(*guard).fetchall()) for guard, _ in units]
    for sql, rows in changes_of(units, applied).items():
        conn.executemany(sql, rows)
    return applied
