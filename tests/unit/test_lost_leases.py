"""Which work lost its lease: a renewal that finds some leases no longer held gives that work a moment to end
(its own stored outcome released the lease) before saying it lost its lease."""

from __future__ import annotations

import asyncio

from mmsgate.common import waiting
from mmsgate.common.waiting import lost_leases


async def test_work_that_ends_after_its_own_release_has_not_lost_its_lease() -> None:
    release_answered = asyncio.Event()
    taken_elsewhere = asyncio.Event()  # never set: this work goes on, its lease taken by another process

    async def ending() -> None:
        await release_answered.wait()

    async def going_on() -> None:
        await taken_elsewhere.wait()

    running = {asyncio.create_task(ending()): 1, asyncio.create_task(going_on()): 2}
    for task in list(running):
        task.add_done_callback(running.pop)
    asyncio.get_running_loop().call_later(0.05, release_answered.set)
    try:
        assert await lost_leases(running, {1, 2}, int) == {2}
        assert await lost_leases(running, set(), int) == set()
    finally:
        for task in list(running):
            task.cancel()


async def test_work_still_running_after_the_settling_time_has_lost_its_lease() -> None:
    never = asyncio.Event()

    async def stuck() -> None:
        await never.wait()

    task = asyncio.create_task(stuck())
    running = {task: 7}
    assert waiting.SETTLING_SECONDS <= 2.0  # a renewal every 5 s of a 15 s lease must still fit
    try:
        assert await lost_leases(running, {7}, int) == {7}
    finally:
        task.cancel()
