"""The worker loop: claim due jobs under a lease, run their handlers, finish or retry them.

Retry state lives in the job row (attempts, next run time, lease), so a crash loses nothing: a job held
by a dead worker is claimed again when its lease expires. Leases are short (15 s by default) and kept by a
heartbeat: while jobs run, one task renews the leases of all of them every few seconds (5 s by default,
at most a third of the lease), in one statement; so a dead worker's jobs are taken again within a lease
of its death, and a job of a live worker, however long it runs, is never taken from it. A renewal that
fails (the database away for a moment) is tried at the next beat; a job whose lease another worker took
meanwhile is said in the log, never run twice in silence. While the database is away the loop waits for
it with a back-off, saying so, and claims again once it is back. On a graceful stop the worker finishes
what it holds within a grace period and releases the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Mapping
from datetime import timedelta

from mmsgate.common.waiting import Outage, idle, lost_leases, pause
from mmsgate.core.codes import JobKind
from mmsgate.core.model import Job, JobHandler, Settled, utcnow
from mmsgate.core.retry import RetryPolicy
from mmsgate.core.roles import JobQueue
from mmsgate.errors import StoreError

log = logging.getLogger("mmsgate.worker")


def _job_id(job: Job) -> int:
    return job.id


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs jobs of the kinds it has handlers for, ``concurrency`` at a time."""

    def __init__(
        self,
        jobs: JobQueue,
        handlers: Mapping[JobKind, JobHandler],
        *,
        owner: str | None = None,
        concurrency: int = 16,
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
        database: str = "the database",
        idle_wait: float = 0.5,
        claim_gather: float = 0.005,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.jobs = jobs
        self.handlers = dict(handlers)
        self.owner = owner or worker_name()
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.renew_every = min(renew_seconds, lease_seconds / 3)
        """Seconds between two renewals of the leases held: at least three renewals in a lease."""
        self.idle_wait = idle_wait
        self.claim_gather = claim_gather
        self.policy = policy or RetryPolicy()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: dict[asyncio.Task[None], Job] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._outage = Outage(log, database)

    def wake(self) -> None:
        """New work may be due: claim now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        kinds = list(self.handlers)
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            jobs: list[Job] = []
            if free > 0:
                try:
                    jobs = await self.jobs.claim_jobs(
                        self.owner, limit=free, lease_seconds=self.lease_seconds, kinds=kinds
                    )
                except StoreError as exc:
                    await pause(self._stopping, self._outage.failed(exc))
                    continue
                self._outage.recovered()
            for job in jobs:
                task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
                self._running[task] = job
                task.add_done_callback(self._running.pop)
            if jobs and (self._renewer is None or self._renewer.done()):
                self._renewer = asyncio.create_task(self._keep_leases(), name="job-leases")
            if jobs and len(jobs) == free:
                continue
            await self._idle()

    async def _idle(self) -> None:
        await idle(self._wake, self._stopping, self.idle_wait, self.claim_gather, also=self._running)

    async def _execute(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        try:
            again = await handler.run(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._after_failure(job, handler, exc)
        else:
            if again is None:
                await self._settle(self.jobs.finish_job(job.id, self.owner), job)
            elif isinstance(again, Settled):
                pass
            else:
                await self._settle(self.jobs.retry_job(job.id, self.owner, run_at=again, error=None), job)

    async def _after_failure(self, job: Job, handler: JobHandler, exc: Exception) -> None:
        delay = self.policy.decide(exc, job.attempts)
        unrecorded = False  # a retry because the final outcome could not be recorded is no attempt of the work
        if delay is None:
            try:
                await handler.give_up(job, exc)
            except Exception:
                log.exception("job %s: recording its failure failed; it will be retried", job.id)
                delay, unrecorded = self.policy.base, True
            else:
                await self._settle(self.jobs.finish_job(job.id, self.owner), job)
                return
        log.info(
            "job %s (%s %s) attempt %d failed, retry in %.0f s: %s",
            job.id,
            job.kind.value,
            job.ref,
            job.attempts,
            delay,
            exc,
        )
        run_at = utcnow() + timedelta(seconds=delay)
        if job.deadline is not None and run_at > job.deadline:
            run_at = job.deadline  # the job's last chance (a message's expiry) is never skipped by a backoff
        if not unrecorded:
            try:
                await handler.attempt_failed(job, exc, job.attempts, self.policy.max_attempts, run_at)
            except StoreError as error:  # the retry matters more than its record: it is scheduled all the same
                log.warning("job %s: could not record its failed attempt %d: %s", job.id, job.attempts, error)
            except Exception:
                log.exception("job %s: recording its failed attempt %d failed", job.id, job.attempts)
        await self._settle(self.jobs.retry_job(job.id, self.owner, run_at=run_at, error=str(exc)), job)

    async def _settle(self, change: Awaitable[bool], job: Job) -> None:
        try:
            if not await change:
                log.warning("job %s: lease lost before it could be settled; another worker has it", job.id)
        except StoreError as exc:
            log.warning("job %s: could not be settled (%s); its lease will expire and it runs again", job.id, exc)

    async def _keep_leases(self) -> None:
        """While jobs run, renew all their leases every ``renew_every`` seconds; end when none runs."""
        while self._running:
            await asyncio.sleep(self.renew_every)
            running = sorted({job.id for job in self._running.values()})
            if not running:
                return
            try:
                held = await self.jobs.extend_leases(running, self.owner, lease_seconds=self.lease_seconds)
            except StoreError as exc:
                log.warning("cannot renew job leases: %s", exc)
                continue
            unheld = set(running) - held
            for lost in sorted(await lost_leases(self._running, unheld, _job_id)):
                log.warning("job %s: lease lost while it runs; another worker may run it too", lost)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let running jobs finish within ``grace`` seconds; release the others."""
        self._stopping.set()
        try:
            await self._finish_running(grace)
        finally:
            if self._renewer is not None:
                self._renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._renewer

    async def _finish_running(self, grace: float) -> None:
        if not self._running:
            return
        running = dict(self._running)
        _, unfinished = await asyncio.wait(list(running), timeout=grace)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for task in unfinished:
            job = running[task]
            with contextlib.suppress(StoreError):
                await self.jobs.retry_job(job.id, self.owner, run_at=utcnow(), error="released at shutdown")
