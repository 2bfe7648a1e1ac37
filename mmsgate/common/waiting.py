"""Waiting for a reason to look for work again (new work, a stop, work under way ending, or the poll), and
for the database while it is away (starting, restarting or unreachable)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from mmsgate.errors import StoreUnavailable

T = TypeVar("T")


async def idle(
    wake: asyncio.Event,
    stopping: asyncio.Event,
    poll: float,
    gather: float,
    also: Iterable[asyncio.Future[Any]] = (),
    busy: bool | None = None,
) -> None:
    """Wait for ``wake`` (new work), ``stopping``, any of ``also`` (work under way ending) or ``poll``
    seconds. When woken while ``busy`` (default: while any of ``also`` runs), wait ``gather`` more, so
    that one claim takes what arrives together; an idle loop claims new work at once."""
    wake.clear()
    running = set(also)
    loaded = bool(running) if busy is None else busy
    waiters: set[asyncio.Future[Any]] = {
        asyncio.ensure_future(wake.wait()),
        asyncio.ensure_future(stopping.wait()),
        *running,
    }
    try:
        done, _ = await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters - running:
            waiter.cancel()
    if done and loaded and not stopping.is_set():
        await asyncio.sleep(gather)


SETTLING_SECONDS = 1.0
"""How long work whose lease was not renewed may take to end before it is said to have lost its lease: work
whose own stored outcome released its lease ends as soon as that write's commit is answered."""


async def lost_leases(running: dict[asyncio.Task[None], T], unheld: set[int], key: Callable[[T], int]) -> set[int]:
    """Of the ids of ``running`` work (tasks to their work, ``key`` its id) whose leases a renewal did not find
    held, those still running after :data:`SETTLING_SECONDS`: the ones another process may have taken. The
    others released their leases by their own last write and were only waiting for its commit."""
    ending = [task for task, work in running.items() if key(work) in unheld]
    if ending:
        await asyncio.wait(ending, timeout=SETTLING_SECONDS)
    return unheld & {key(work) for work in running.values()}


class Outage:
    """How a loop that depends on the database lives through its absence: ``failed`` says so at WARNING
    the first time and then every ``every`` seconds while it lasts (not at every try, which would bury the
    log), and answers how long to wait before the next try, doubling from ``first`` up to ``most``;
    ``recovered`` says, once, that it is over. ``what`` names what is waited for ("the database at HOST:PORT")."""

    def __init__(
        self, log: logging.Logger, what: str, *, first: float = 0.5, most: float = 5.0, every: float = 30.0
    ) -> None:
        self.log = log
        self.what = what
        self.first = first
        self.most = most
        self.every = every
        self._since: float | None = None
        self._said = 0.0
        self._delay = first

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> float:
        """Count one failure (say it when it is time to); the seconds to wait before trying again."""
        now = time.monotonic()
        if self._since is None:
            self._since, self._said, self._delay = now, now, self.first
            self.log.warning("waiting for %s: %s", self.what, _one_line(exc))
        else:
            self._delay = min(self._delay * 2, self.most)
            if now - self._said >= self.every:
                self._said = now
                waited = now - self._since
                self.log.warning("still waiting for %s (%.0f s so far): %s", self.what, waited, _one_line(exc))
        return self._delay

    def recovered(self) -> None:
        """A try succeeded: say the wait is over if there was one."""
        if self._since is not None:
            self.log.warning("%s is back after %.0f s", self.what, time.monotonic() - self._since)
            self._since = None
            self._delay = self.first


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def until_available(call: Callable[[], Awaitable[T]], outage: Outage) -> T:
    """``call()``'s result, trying again (for ever, saying so through ``outage``) while it fails with
    :class:`~mmsgate.errors.StoreUnavailable`; any other error is raised. A stop (Ctrl-C, SIGTERM, a
    cancellation) ends the wait at once."""
    while True:
        try:
            result = await call()
        except StoreUnavailable as exc:
            await asyncio.sleep(outage.failed(exc))
        else:
            outage.recovered()
            return result
