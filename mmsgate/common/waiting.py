"""Waiting for a reason to look for work again: new work, a stop, work under way ending, or the poll."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


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
