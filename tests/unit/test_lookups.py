"""Lookups: point reads asked for together go in one fetch."""

from __future__ import annotations

import asyncio

import pytest

from mmsgate.store.postgres.lookups import Lookups


class Source:
    def __init__(self, values: dict[str, int]) -> None:
        self.values = values
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.called = asyncio.Event()

    async def fetch(self, keys: list[str]) -> dict[str, int]:
        self.calls.append(sorted(keys))
        self.called.set()
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {k: self.values[k] for k in keys if k in self.values}


async def _calls(source: Source, count: int) -> None:
    while len(source.calls) < count:
        source.called.clear()
        await source.called.wait()


async def test_reads_asked_for_together_are_one_fetch() -> None:
    source = Source({"a": 1, "b": 2, "c": 3})
    lookups: Lookups[str, int] = Lookups(source.fetch)
    got = await asyncio.gather(*(lookups.get(k) for k in ["a", "b", "a", "missing", "c"]))
    assert got == [1, 2, 1, None, 3]
    assert source.calls == [["a", "b", "c", "missing"]]


async def test_reads_asked_for_during_a_fetch_go_in_the_next() -> None:
    source = Source({"a": 1, "b": 2})
    lookups: Lookups[str, int] = Lookups(source.fetch)
    source.gate.clear()
    first = asyncio.create_task(lookups.get("a"))
    await asyncio.wait_for(_calls(source, 1), 5)
    second = asyncio.create_task(lookups.get("b"))
    await asyncio.wait_for(_calls(source, 2), 5)  # not held back behind the fetch under way
    assert source.calls == [["a"], ["b"]]
    source.gate.set()
    assert (await first, await second) == (1, 2)


async def test_a_failed_fetch_fails_every_read_of_it_and_not_the_next() -> None:
    source = Source({"a": 1})
    lookups: Lookups[str, int] = Lookups(source.fetch)
    source.fail = RuntimeError("database gone")
    results = await asyncio.gather(lookups.get("a"), lookups.get("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    source.fail = None
    assert await lookups.get("a") == 1


async def test_a_cancelled_reader_does_not_disturb_the_others() -> None:
    source = Source({"a": 1, "b": 2})
    lookups: Lookups[str, int] = Lookups(source.fetch)
    source.gate.clear()
    gone = asyncio.create_task(lookups.get("a"))
    kept = asyncio.create_task(lookups.get("b"))
    await asyncio.wait_for(_calls(source, 1), 5)
    gone.cancel()
    source.gate.set()
    assert await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await gone
