"""Point reads made at the same moment, sent as one query.

A worker starts the jobs it claimed together, and each begins by reading its message: on a database
across a network, one query for all of them costs one round trip instead of one per job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lookups(Generic[K, V]):
    """Collects the keys asked for during one turn of the event loop and fetches them with one call of
    ``fetch`` (keys → found values; a key left out is not found). Keys asked for while a fetch runs go in
    the next one."""

    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]]) -> None:
        self._fetch = fetch
        self._pending: dict[K, list[asyncio.Future[V | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V | None:
        """The value of ``key``, or None if there is none; raises what the fetch raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._start)  # after the other tasks made ready in this turn have asked too
        self._pending.setdefault(key, []).append(future)
        return await future

    def _start(self) -> None:
        batch, self._pending = self._pending, {}
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch(list(batch))
        except BaseException as exc:  # every waiter gets the failure, cancellation included
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for key, futures in batch.items():
            value = found.get(key)
            for future in futures:
                if not future.done():
                    future.set_result(value)
