"""A media worker process that dies must not take the media stage down with it."""

from __future__ import annotations

import functools
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import pytest

from mmsgate.common.guard import AddressGuard
from mmsgate.errors import WorkerCrashed
from mmsgate.media.adapt import CarrierProfile
from mmsgate.media.fetch import Fetcher
from mmsgate.media.stage import MediaStage
from mmsgate.store.blobs import BlobStore


def _die() -> int:
    os._exit(3)


async def test_a_dead_worker_process_is_replaced(tmp_path: Path) -> None:
    pools: list[Executor] = []

    def factory() -> Executor:
        pools.append(ProcessPoolExecutor(1))
        return pools[-1]

    fetcher = Fetcher(AddressGuard())
    stage = MediaStage(fetcher, factory(), BlobStore(tmp_path), CarrierProfile(), tmp_path, pool_factory=factory)
    try:
        with pytest.raises(WorkerCrashed) as crashed:
            await stage._in_pool(functools.partial(_die))
        assert crashed.value.retryable
        assert len(pools) == 2
        assert await stage._in_pool(functools.partial(pow, 2, 10)) == 1024
    finally:
        await fetcher.aclose()
        for pool in pools:
            pool.shutdown(wait=True)


async def test_worker_processes_are_renewed_after_a_number_of_tasks(tmp_path: Path) -> None:
    pools: list[Executor] = []

    def factory() -> Executor:
        pools.append(ProcessPoolExecutor(1))
        return pools[-1]

    fetcher = Fetcher(AddressGuard())
    stage = MediaStage(
        fetcher, factory(), BlobStore(tmp_path), CarrierProfile(), tmp_path, pool_factory=factory, recycle_after=3
    )
    try:
        # more tasks than one pool may run, none lost while pools are swapped under them
        results = [await stage._in_pool(functools.partial(pow, 2, n)) for n in range(10)]
        assert results == [2**n for n in range(10)]
        assert len(pools) == 4  # renewed at the 3rd, 6th and 9th task
        assert stage.pool is pools[-1]
    finally:
        await fetcher.aclose()
        for pool in pools:
            pool.shutdown(wait=True)
