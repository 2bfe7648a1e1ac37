"""Clearing the cache of answers: what a key's revocation relies on in the process that revoked it."""

from __future__ import annotations

import asyncio

from mmsgate.common.cache import RefreshingCache


async def test_clear_forgets_answers_and_the_load_in_flight() -> None:
    """A load that began before the clear (it may have read the key before its revocation) answers the
    callers who waited for it but is not kept: the next caller loads again."""
    cache: RefreshingCache[str, str] = RefreshingCache(3600.0)
    answers = iter(["valid", "stale", "revoked"])
    release, started = asyncio.Event(), asyncio.Event()
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        answer = next(answers)
        if answer == "stale":
            started.set()
            await release.wait()
        return answer

    assert await cache.get("k", load) == "valid"
    assert await cache.get("k", load) == "valid" and loads == 1  # cached
    cache.clear()
    in_flight = asyncio.create_task(cache.get("k", load))
    async with asyncio.timeout(5):
        await started.wait()
    cache.clear()
    release.set()
    assert await in_flight == "stale"
    assert await cache.get("k", load) == "revoked"
    assert loads == 3
