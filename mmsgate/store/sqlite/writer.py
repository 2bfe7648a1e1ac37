"""The one writer of an SQLite database in this process: every write waits in one queue, and all that
waited go out together in the next transaction.

SQLite runs one write transaction at a time, so under load the gateway's throughput is the rate of
this cycle: run the statements (on the event loop, a few microseconds a row), COMMIT (the WAL write and
the fsync, in the writer thread with the GIL released), then start the next. What costs most is not
the work but the hand-offs between them: when each write took the write lock, ran its own transaction
and woke its caller, every cycle went through several turns of a busy event loop (the commit's
future, the shield, the waiting task, the lock's next waiter), and the cycle took several times its
work.

Here the commit's completion comes back to the loop once, as one callback that settles the finished
batch and at once starts the next with everything queued meanwhile, whichever part of the gateway it
came from (accepted messages, guarded changes, claims). Each write runs inside its own SAVEPOINT, so a
write that fails is rolled back alone and gets its own error while the others commit; a write is
settled (its caller sees its result) only after the COMMIT that holds it.

Writes of the same kind can share one statement per SQL text: a :class:`Lane` collects items (the
accepted messages, or the guarded changes) and runs all that are pending as one batch; if the batch
fails, each item is run again alone, so only the one at fault fails.

When another process holds SQLite's write lock (an admin command while ``serve`` runs), the whole
transaction moves to the writer thread, which waits for the lock there, never on the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BUSY_TIMEOUT_MS = 30_000


class _Batch(Protocol):
    """Writes that run together inside one savepoint of the next transaction."""

    def live(self) -> bool:
        """False when every caller has gone (cancelled): nothing to run."""

    def run(self, conn: sqlite3.Connection) -> None:
        """Run inside the transaction; note each write's outcome, never raise for a write's failure."""

    def settle(self, error: BaseException | None, translate: Callable[[BaseException], BaseException]) -> None:
        """After the COMMIT (``error`` None) or its failure: give every caller its outcome (a write's own
        error through ``translate``)."""


class _Producer(Protocol):
    def take(self) -> _Batch:
        """What is pending now, as one batch."""


def _savepoint(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """``body`` in a savepoint: kept if it returns, rolled back (alone) if it raises."""
    conn.execute("SAVEPOINT write")
    try:
        result = body(conn)
    except BaseException:
        conn.execute("ROLLBACK TO write")
        conn.execute("RELEASE write")
        raise
    conn.execute("RELEASE write")
    return result


class _Single(Generic[T]):
    """One write: a function of the connection, its result for one caller."""

    def __init__(self, body: Callable[[sqlite3.Connection], T], future: asyncio.Future[T]) -> None:
        self.body = body
        self.future = future
        self.result: T | None = None
        self.error: BaseException | None = None

    def take(self) -> _Single[T]:
        return self

    def live(self) -> bool:
        return not self.future.done()

    def run(self, conn: sqlite3.Connection) -> None:
        try:
            self.result = _savepoint(conn, self.body)
        except Exception as exc:
            self.error = exc

    def settle(self, error: BaseException | None, translate: Callable[[BaseException], BaseException]) -> None:
        if self.future.done():
            return
        if error is None and self.error is not None:
            error = translate(self.error)
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(self.result)  # type: ignore[arg-type]


class _LaneBatch(Generic[T, R]):
    def __init__(
        self, apply: Callable[[sqlite3.Connection, list[T]], list[R]], items: list[tuple[T, asyncio.Future[R]]]
    ) -> None:
        self.apply = apply
        self.items = items
        self.outcomes: list[R | BaseException] = []

    def live(self) -> bool:
        return bool(self.items)

    def run(self, conn: sqlite3.Connection) -> None:
        values = [item for item, _ in self.items]
        try:
            self.outcomes = list(_savepoint(conn, lambda c: self.apply(c, values)))
            return
        except Exception as exc:
            if len(values) == 1:
                self.outcomes = [exc]
                return
        outcomes: list[R | BaseException] = []
        for value in values:  # alone, so that only the item at fault fails
            try:
                outcomes.append(_savepoint(conn, lambda c, v=value: self.apply(c, [v]))[0])  # type: ignore[misc]
            except Exception as exc:
                outcomes.append(exc)
        self.outcomes = outcomes

    def settle(self, error: BaseException | None, translate: Callable[[BaseException], BaseException]) -> None:
        for index, (_, future) in enumerate(self.items):
            if future.done():
                continue
            outcome: R | BaseException = error if error is not None else self.outcomes[index]
            if isinstance(outcome, BaseException):
                future.set_exception(outcome if error is not None else translate(outcome))
            else:
                future.set_result(outcome)


class Lane(Generic[T, R]):
    """Items of one kind, run as one batch per transaction by ``apply`` (one result per item)."""

    def __init__(
        self, writer: SqliteWriter, apply: Callable[[sqlite3.Connection, list[T]], list[R]], max_batch: int
    ) -> None:
        self.writer = writer
        self.apply = apply
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []

    async def submit(self, item: T) -> R:
        """``item``'s result once it is committed; its error if it could not be."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            self.writer.enqueue(self)
        return await future

    def take(self) -> _LaneBatch[T, R]:
        taken, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if self._pending:  # the rest go in the next transaction
            self.writer.enqueue(self)
        return _LaneBatch(self.apply, taken)

    async def close(self) -> None:
        """Return once everything submitted is settled."""
        await self.writer.drained()


class SqliteWriter:
    """Runs the queued writes, all of them in each transaction, one transaction at a time."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        thread: ThreadPoolExecutor,
        translate: Callable[[sqlite3.Error], Exception],
    ) -> None:
        self.conn = conn
        self.thread = thread
        self.translate = translate
        self._queue: list[_Producer] = []
        self._busy = False
        self._idle: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def lane(self, apply: Callable[[sqlite3.Connection, list[T]], list[R]], max_batch: int) -> Lane[T, R]:
        """A lane whose items go ``max_batch`` at most into one transaction."""
        return Lane(self, apply, max_batch)

    async def run(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body``'s result once the transaction that ran it is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.enqueue(_Single(body, future))
        return await future

    def enqueue(self, producer: _Producer) -> None:
        self._queue.append(producer)
        if not self._busy:
            self._start()

    async def drained(self) -> None:
        """Return once no write is queued or under way."""
        while self._busy or self._queue:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()

    def _start(self) -> None:
        producers, self._queue = self._queue, []
        self._busy = True  # before taking: a lane with more than a batch queues itself again meanwhile
        batches = [batch for batch in (p.take() for p in producers) if batch.live()]
        if not batches:
            self._busy = False
            self._became_idle()
            return
        self._loop = asyncio.get_running_loop()
        conn = self.conn
        try:
            began = _begin_at_once(conn)
            if began:
                for batch in batches:
                    batch.run(conn)
        except sqlite3.Error as exc:  # the transaction itself failed (not one write): all of it fails
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._finish(batches, self.translate(exc))
            return
        done = self.thread.submit(_commit, conn) if began else self.thread.submit(_whole_transaction, conn, batches)
        done.add_done_callback(lambda f: self._from_thread(batches, f))

    def _from_thread(self, batches: Sequence[_Batch], done: ThreadFuture[None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(self._committed, batches, done)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _committed(self, batches: Sequence[_Batch], done: ThreadFuture[None]) -> None:
        error = done.exception()
        self._finish(batches, None if error is None else self._translated(error))

    def _translated(self, error: BaseException) -> BaseException:
        return self.translate(error) if isinstance(error, sqlite3.Error) else error

    def _finish(self, batches: Sequence[_Batch], error: BaseException | None) -> None:
        for batch in batches:
            batch.settle(error, self._translated)
        self._busy = False
        self._start()

    def _became_idle(self) -> None:
        if self._idle is not None:
            self._idle.set()


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


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _whole_transaction(conn: sqlite3.Connection, batches: Sequence[_Batch]) -> None:
    """The transaction in the writer thread, waiting up to the busy timeout for the write lock."""
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for batch in batches:
                batch.run(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _commit(conn)
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def run_statements(conn: sqlite3.Connection, statements: Sequence[tuple[str, Any]]) -> list[list[Any]]:
    """Each statement's rows (from RETURNING)."""
    return [conn.execute(sql, params).fetchall() for sql, params in statements]
