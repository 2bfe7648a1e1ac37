"""SQLite backend: one file in WAL mode, one writer thread, a few reader threads.

Every write of this process goes through the single writer thread, so writes never contend inside
the process; other processes (an admin command while ``serve`` runs) wait on SQLite's busy timeout.
Reads run on their own connections so they never queue behind a commit.
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
from mmsgate.store.sql_delivery import DeliverySql

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


class SqliteStore(DeliverySql):
    """The embedded default store."""

    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: Path, *, synchronous: str = "FULL", group_commit_max: int = 512) -> None:
        super().__init__(group_commit_max=group_commit_max)
        self.path = path
        self._synchronous = synchronous
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="sqlite-reader")
        await self._start_group_commit()

    async def close(self) -> None:
        await self._stop_group_commit()
        for pool in (self._writer, self._readers):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._readers = None
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
        return await self._run(self._readers, lambda conn: conn.execute(sql, params).fetchall())

    async def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(self._writer, transaction)

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
