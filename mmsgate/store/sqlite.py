"""SQLite backend: one file in WAL mode, one writer thread, a few reader threads.

Every write of this process goes through one writer connection, one transaction at a time, so writes
never contend inside the process; other processes (an admin command while ``serve`` runs) wait on
SQLite's busy timeout. Reads run on their own connection, on the event loop, so they never queue
behind a commit.

A write transaction is split where the work is: its statements run on the event loop (a few
microseconds a row, in memory), and its COMMIT (the WAL write and the fsync) in the writer thread,
with the GIL released. Running the statements in the thread instead costs more: each row's step
hands the GIL back and forth with the busy event loop. When another process holds the write lock,
the whole transaction moves to the writer thread, which waits on the busy timeout there, never on
the loop.
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
from mmsgate.store.sql import Params, Row, Statement, Unit, changes_of
from mmsgate.store.sql_console import ConsoleSql

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


_BUSY_TIMEOUT_MS = 30_000


def _begin_at_once(conn: sqlite3.Connection) -> bool:
    """Begin a write transaction if the write lock is free now (the writer connection's busy timeout is
    0); False if another process holds it."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT"):
            return False
        raise
    return True


def _start_transaction(
    conn: sqlite3.Connection, writer: ThreadPoolExecutor, body: Callable[[sqlite3.Connection], T]
) -> asyncio.Future[T]:
    """Begin and run ``body`` here, on the loop, and commit in the writer thread; or, when another
    process holds the write lock, do it all in the writer thread. The future holds ``body``'s result."""
    loop = asyncio.get_running_loop()
    if not _begin_at_once(conn):
        return loop.run_in_executor(writer, _whole_transaction, conn, body)
    try:
        result = body(conn)
        return loop.run_in_executor(writer, _commit, conn, result)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _commit(conn: sqlite3.Connection, result: T) -> T:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _whole_transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """The transaction in the writer thread, waiting up to the busy timeout for the write lock."""
    conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    finally:
        conn.execute("PRAGMA busy_timeout=0")


class SqliteStore(ConsoleSql):
    """The embedded default store."""

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
        self._loop_reader: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()
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
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
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
        self._write_conn.execute("PRAGMA busy_timeout=0")  # waiting for the lock is _whole_transaction's
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="sqlite-reader")
        self._loop_reader = self._connect()
        self._loop_reader.execute("PRAGMA busy_timeout=0")  # never wait on the loop: the threads do
        await self._start_group_commit()

    async def close(self) -> None:
        await self._stop_group_commit()
        for pool in (self._writer, self._readers):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._readers = None
        self._write_conn = self._loop_reader = None
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

    async def _read(self, sql: str, params: Params = ()) -> list[Row]:
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
        conn, writer = self._write_conn, self._writer
        if conn is None or writer is None:
            raise RuntimeError("store is not open")
        await self._write_lock.acquire()
        try:
            outcome = _start_transaction(conn, writer, body)
        except BaseException as exc:
            self._write_lock.release()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc) from exc
            raise
        # the connection is the writer thread's until the commit ends, even if this caller is cancelled
        outcome.add_done_callback(lambda _: self._write_lock.release())
        try:
            return await asyncio.shield(outcome)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def _write(self, statements: Sequence[Statement]) -> list[list[Row]]:
        return await self._transaction(
            lambda conn: [conn.execute(sql, params).fetchall() for sql, params in statements]
        )

    async def _write_many(self, batches: Sequence[tuple[str, list[Params]]]) -> None:
        def body(conn: sqlite3.Connection) -> None:
            for sql, rows in batches:
                conn.executemany(sql, rows)

        await self._transaction(body)

    async def _apply_units(self, units: Sequence[Unit]) -> list[bool]:
        def body(conn: sqlite3.Connection) -> list[bool]:
            applied = [guard is None or bool(conn.execute(*guard).fetchall()) for guard, _ in units]
            for sql, rows in changes_of(units, applied).items():
                conn.executemany(sql, rows)
            return applied

        return await self._transaction(body)
