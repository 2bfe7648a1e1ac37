"""Group commit: concurrent writes are committed together, and each caller waits for its own commit.

At most ``parallel`` flushes run at a time (one for SQLite's single writer; a few for PostgreSQL, on
separate connections); writes that arrive meanwhile form the next batch, so batches grow with load and
a lone write is committed at once. While a flush is under way another lane opens only for at least
``busy_batch`` writes (or when a flush ends): many small concurrent batches would cost the database more
per write than a few larger ones. If a batch fails, its writes are committed one by one so that
only the write at fault gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)


class Batcher(Protocol[T_contra, R_co]):
    """Takes items to commit together with others: :class:`GroupCommitter`, or SQLite's writer lanes."""

    async def submit(self, item: T_contra) -> R_co:
        """``item``'s result once it is committed; its error if it could not be."""

    async def close(self) -> None:
        """Return once everything submitted is settled; take nothing more."""


class GroupCommitter(Generic[T, R]):
    """Batches items for ``flush``, which commits a list of items in one transaction and returns one
    result per item. A flush that raises committed nothing (each item is then tried alone); one that
    committed part of a batch returns an exception in place of the result of each item that failed."""

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[Sequence[R | Exception]]],
        max_batch: int = 512,
        parallel: int = 1,
        busy_batch: int = 1,
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._parallel = parallel
        self._busy_batch = busy_batch
        self._flushing: set[asyncio.Task[None]] = set()
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def submit(self, item: T) -> R:
        """Return ``item``'s result once it is committed; raise its error if it could not be."""
        if self._task is None or self._closing:
            raise RuntimeError("group committer is not running")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Commit everything already submitted, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if len(self._flushing) >= self._parallel:
                    # every lane is busy: the next batch grows until one is free
                    await asyncio.wait(self._flushing, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if self._flushing and len(self._pending) < self._busy_batch and not self._closing:
                    break  # a commit is under way: open another lane only for a batch worth it
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                if self._parallel == 1:
                    await self._commit(batch)
                    continue
                task = asyncio.create_task(self._commit(batch))
                self._flushing.add(task)
                task.add_done_callback(self._lane_free)
            if self._closing:
                if self._flushing:
                    await asyncio.wait(self._flushing)
                return

    def _lane_free(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        if self._pending:
            self._wakeup.set()  # what waited for a bigger batch goes now

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for item, future in batch:
                await self._commit_alone(item, future)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    async def _commit_alone(self, item: T, future: asyncio.Future[R]) -> None:
        try:
            results = await self._flush([item])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            _settle(future, results[0])


def _settle(future: asyncio.Future[R], result: R | Exception) -> None:
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
