"""A few PostgreSQL sessions that callers take one at a time: a lean stand-in for ``asyncpg.Pool``.

The store runs one statement (or one short transaction) each time it takes a session. ``asyncpg.Pool``
spends as much of the event loop's CPU on each acquire and release (a holder, a proxy, a reset, a
timeout context and an inactivity timer) as a simple statement itself, and a worker takes a session
2-3 times a message. Here taking a free session is a ``deque.popleft``.

A session is opened when one is wanted and none is free (up to ``size``). A session that was closed,
or whose use ended in anything but a clean answer from the server (a cancellation, a lost connection,
an error of the client library), is dropped rather than given back (closed in the background): its
state is not known, and the next caller opens a fresh one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

import asyncpg


class Sessions:
    """Up to ``size`` sessions to ``url``, each with ``settings``, opened on demand."""

    def __init__(
        self,
        url: str,
        size: int,
        *,
        settings: dict[str, str] | None = None,
        connect_timeout: float = 10.0,
        wait_timeout: float = 30.0,
        statement_cache_size: int = 512,
    ) -> None:
        self.url = url
        self.size = size
        self.settings = dict(settings or {})
        self.connect_timeout = connect_timeout
        self.wait_timeout = wait_timeout
        """Seconds to wait for a session when all are taken (then asyncio.TimeoutError)."""
        self.statement_cache_size = statement_cache_size
        self._free: collections.deque[asyncpg.Connection] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[asyncpg.Connection | None]] = collections.deque()
        self._open = 0  # sessions open or being opened, free or taken
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.url,
            timeout=self.connect_timeout,
            statement_cache_size=self.statement_cache_size,
            server_settings=self.settings or None,
        )

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the sessions are closed")
        while self._free:
            conn = self._free.popleft()
            if not conn.is_closed():
                return conn
            self._open -= 1
        if self._open < self.size:
            self._open += 1
            try:
                return await self._connect()
            except BaseException:
                self._open -= 1
                self._hand_on(None)  # a waiter may open one in its place
                raise
        waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait_timeout):
                handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give(waiter.result())  # handed over just as the wait ended: pass it on
            raise
        return handed if handed is not None else await self._take()

    def _give(self, conn: asyncpg.Connection | None) -> None:
        """Give a session back (None: one was dropped; the next waiter may open one)."""
        if conn is not None and (conn.is_closed() or self._closed):
            conn.terminate()
            conn = None
        if conn is None:
            self._open -= 1
        self._hand_on(conn)

    def _hand_on(self, conn: asyncpg.Connection | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if conn is None:
                    waiter.set_result(None)  # it opens one itself
                    return
                waiter.set_result(conn)
                return
        if conn is not None:
            self._free.append(conn)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[asyncpg.Connection]:
        """A session for one use; waits up to ``wait_timeout`` seconds for one to be free."""
        conn = await self._take()
        clean = False
        try:
            yield conn
            clean = True
        except asyncpg.PostgresError:
            # the server refused a statement: the session is fine (a transaction block was rolled back
            # by its context manager before this point)
            clean = True
            raise
        finally:
            if clean and not conn.is_in_transaction():
                self._give(conn)
            else:
                self._drop(conn)
                self._give(None)

    def _drop(self, conn: asyncpg.Connection) -> None:
        """Close a session of unknown state in the background: a statement cut off by a cancellation is
        cancelled on the server first (asyncpg sends the request as the session closes)."""
        task = asyncio.get_running_loop().create_task(self._close_quietly(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_quietly(conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=5)
        except (Exception, asyncio.CancelledError):
            conn.terminate()

    async def close(self) -> None:
        self._closed = True
        free, self._free = list(self._free), collections.deque()
        self._open -= len(free)
        await asyncio.gather(*(conn.close(timeout=5) for conn in free), *self._closing, return_exceptions=True)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the sessions are closed"))
