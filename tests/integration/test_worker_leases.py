"""A worker keeps the leases of the jobs it runs, however long they take, with one renewing task."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from mmsgate.core.codes import JobKind
from mmsgate.core.model import Job, Settled
from mmsgate.jobs.worker import Worker
from mmsgate.store import Store
from tests.conftest import Caller
from tests.integration.test_store import make_message


class Slow:
    """Runs until the test lets it finish."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finish = asyncio.Event()

    async def run(self, job: Job) -> datetime | Settled | None:
        self.started.set()
        await self.finish.wait()
        return None

    async def attempt_failed(
        self, job: Job, error: Exception, attempt: int, max_attempts: int, next_run: datetime
    ) -> None:
        raise AssertionError(f"job {job.id} failed: {error}")

    async def give_up(self, job: Job, error: Exception) -> None:
        raise AssertionError(f"job {job.id} failed: {error}")


async def test_a_job_running_longer_than_its_lease_keeps_it(store: Store, caller: Caller) -> None:
    await store.accepting.accept_message(make_message(caller))
    handler = Slow()
    worker = Worker(store.jobs, {JobKind.DELIVER: handler}, lease_seconds=0.6, idle_wait=0.05)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(handler.started.wait(), timeout=10)
        deadline = time.monotonic() + 2.0  # more than three leases
        while time.monotonic() < deadline:
            assert await store.jobs.claim_jobs("other-worker", limit=1, lease_seconds=30) == []
        handler.finish.set()
    finally:
        await worker.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await store.jobs.claim_jobs("other-worker", limit=1, lease_seconds=30) == []  # done, not released
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "job-leases" and not t.done()]
