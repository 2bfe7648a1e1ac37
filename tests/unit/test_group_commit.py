"""GroupCommitter: batches form while commits run; extra lanes open only for batches worth it."""

from __future__ import annotations

import asyncio

from mmsgate.store.sql.group import GroupCommitter
from tests.waiting import eventually


class Flusher:
    """A flush that holds each batch until the test lets it go."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gates: list[asyncio.Event] = []

    async def __call__(self, items: list[int]) -> list[int]:
        gate = asyncio.Event()
        self.batches.append(list(items))
        self.gates.append(gate)
        await gate.wait()
        return [item * 10 for item in items]


async def _batches(flusher: Flusher, count: int) -> list[list[int]] | None:
    await asyncio.sleep(0)
    return flusher.batches if len(flusher.batches) >= count else None


async def test_a_second_lane_opens_only_for_a_big_enough_batch() -> None:
    flusher = Flusher()
    committer: GroupCommitter[int, int] = GroupCommitter(flusher, parallel=3, busy_batch=4)
    committer.start()
    first = asyncio.create_task(committer.submit(1))
    await eventually(lambda: _batches(flusher, 1), within=5, what="the first flush")
    small = [asyncio.create_task(committer.submit(n)) for n in (2, 3, 4)]
    for _ in range(20):  # three writes wait while a commit runs: no second lane for them
        await asyncio.sleep(0)
    assert flusher.batches == [[1]]
    more = asyncio.create_task(committer.submit(5))  # the fourth makes a batch worth a lane
    await eventually(lambda: _batches(flusher, 2), within=5, what="the second flush")
    assert flusher.batches == [[1], [2, 3, 4, 5]]
    for gate in flusher.gates:
        gate.set()
    assert await first == 10
    assert [await t for t in small] == [20, 30, 40]
    assert await more == 50
    await committer.close()


async def test_a_small_batch_goes_when_a_lane_frees() -> None:
    flusher = Flusher()
    committer: GroupCommitter[int, int] = GroupCommitter(flusher, parallel=3, busy_batch=8)
    committer.start()
    first = asyncio.create_task(committer.submit(1))
    await eventually(lambda: _batches(flusher, 1), within=5, what="the first flush")
    waiting = asyncio.create_task(committer.submit(2))
    flusher.gates[0].set()
    assert await first == 10
    await eventually(lambda: _batches(flusher, 2), within=5, what="the waiting write's flush")
    assert flusher.batches == [[1], [2]]
    flusher.gates[1].set()
    assert await waiting == 20
    await committer.close()


async def test_close_commits_a_small_batch_at_once() -> None:
    flusher = Flusher()
    committer: GroupCommitter[int, int] = GroupCommitter(flusher, parallel=3, busy_batch=8)
    committer.start()
    first = asyncio.create_task(committer.submit(1))
    await eventually(lambda: _batches(flusher, 1), within=5, what="the first flush")
    second = asyncio.create_task(committer.submit(2))
    await asyncio.sleep(0)
    closing = asyncio.create_task(committer.close())
    await eventually(lambda: _batches(flusher, 2), within=5, what="the flush at close")
    for gate in flusher.gates:
        gate.set()
    await closing
    assert (await first, await second) == (10, 20)


async def test_an_item_that_failed_alone_in_a_committed_batch_gets_its_error_and_is_not_tried_again() -> None:
    flushed: list[list[int]] = []

    async def flush(items: list[int]) -> list[int | Exception]:
        flushed.append(list(items))
        return [ValueError(f"item {n} refused") if n < 0 else n * 10 for n in items]

    committer: GroupCommitter[int, int] = GroupCommitter(flush)
    committer.start()
    outcomes = await asyncio.gather(*(committer.submit(n) for n in (1, -2, 3)), return_exceptions=True)
    assert outcomes[0] == 10 and outcomes[2] == 30
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "item -2 refused"
    assert flushed == [[1, -2, 3]]  # the batch was committed once, nothing again item by item
    await committer.close()


async def test_a_batch_whose_flush_raised_is_tried_item_by_item() -> None:
    flushed: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        flushed.append(list(items))
        if any(n < 0 for n in items):
            raise ValueError("refused")
        return [n * 10 for n in items]

    committer: GroupCommitter[int, int] = GroupCommitter(flush)
    committer.start()
    outcomes = await asyncio.gather(*(committer.submit(n) for n in (1, -2, 3)), return_exceptions=True)
    assert outcomes[0] == 10 and outcomes[2] == 30 and isinstance(outcomes[1], ValueError)
    assert flushed == [[1, -2, 3], [1], [-2], [3]]
    await committer.close()
