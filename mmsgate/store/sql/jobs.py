"""Jobs claimed under a lease (:class:`~mmsgate.core.roles.JobQueue`); retry state lives in the row. Also
the claim statement that the postback outbox shares."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mmsgate.core.codes import JobKind
from mmsgate.core.model import Job
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.rows import JOB_COLUMNS, RUNNING, Row, Statement, job_row, message_row

_ALL_KINDS = frozenset(JobKind)


def claim_statement(table: str, condition: str, skip_locked: str) -> str:
    """Lease the oldest due rows of a job-like table (``state``, ``run_at``, ``lease_until``): expired
    leases first, then queued rows that are due, each branch read in index order (one OR-ed query would
    sort every due row of a backlog on each claim). Parameters: (now, the condition's, limit) for each
    branch, then owner, lease end, now, and the limit again."""
    branch = (
        "SELECT id FROM (SELECT id FROM {table} WHERE state = '{state}' AND {column} {op} ?{condition} "
        "ORDER BY {column}, id LIMIT ?{skip_locked}) AS {alias}"
    )
    expired = branch.format(
        table=table,
        state="running",
        column="lease_until",
        op="<",
        condition=condition,
        skip_locked=skip_locked,
        alias="expired",
    )
    queued = branch.format(
        table=table,
        state="queued",
        column="run_at",
        op="<=",
        condition=condition,
        skip_locked=skip_locked,
        alias="queued",
    )
    return (
        f"WITH due AS ({expired} UNION ALL {queued}) "
        f"UPDATE {table} SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, "
        f"updated_at = ? FROM (SELECT id FROM due LIMIT ?) AS picked WHERE {table}.id = picked.id"
    )


async def extend_leases(db: SqlDatabase, table: str, ids: Sequence[int], owner: str, lease_seconds: float) -> set[int]:
    """Renew the leases ``owner`` holds on rows of a job-like table (``jobs``, ``postbacks``); the ids of those
    it still held (a row another worker took, or that its own last write released, is not among them)."""
    now = time.time()
    held: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await db.claim(
            (
                f"UPDATE {table} SET lease_until = ?, updated_at = ? WHERE lease_owner = ? AND state = ? "
                f"AND id IN ({', '.join('?' for _ in chunk)}) RETURNING id",
                (now + lease_seconds, now, owner, RUNNING, *chunk),
            )
        )
        held.update(int(r[0]) for r in rows)
    return held


class SqlJobQueue:
    """Jobs claimed under a lease."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def claim_jobs(
        self, owner: str, *, limit: int, lease_seconds: float, kinds: Sequence[JobKind] | None = None
    ) -> list[Job]:
        now = time.time()
        kind_filter = ""
        kind_values: list[Any] = []
        if kinds and set(kinds) != _ALL_KINDS:
            # the filter must not steer the planner to the (kind, ref) index: that reads and sorts every
            # job of the kind, done ones included, instead of the due ones in jobs_due order
            kind_filter = f" AND {self._db.unindexed('kind')} IN ({', '.join('?' for _ in kinds)})"
            kind_values = [k.value for k in kinds]
        rows = await self._claim_jobs(
            (
                claim_statement("jobs", kind_filter, self._db.skip_locked)
                + f" RETURNING {', '.join('jobs.' + c.strip() for c in JOB_COLUMNS.split(','))}",
                (now, *kind_values, limit, now, *kind_values, limit, owner, now + lease_seconds, now, limit),
            )
        )
        jobs = (job_row(r, message_row(m) if m is not None else None) for r, m in rows)
        return sorted(jobs, key=lambda j: (j.run_at, j.id))

    async def watch_jobs(self, listener: Callable[[], None]) -> None:
        await self._db.watch_jobs(listener)

    async def _claim_jobs(self, statement: Statement) -> list[tuple[Row, Row | None]]:
        """Run a job claim: the rows of the jobs (JOB_COLUMNS), each with its message's row (of a deliver
        job) when the backend reads it with the claim, else None."""
        return [(row, None) for row in await self._db.claim(statement)]

    async def extend_leases(self, job_ids: Sequence[int], owner: str, *, lease_seconds: float) -> set[int]:
        return await extend_leases(self._db, "jobs", job_ids, owner, lease_seconds)

    async def finish_job(self, job_id: int, owner: str) -> bool:
        return await self._db.unit(
            (
                "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (time.time(), job_id, owner, RUNNING),
            )
        )

    async def retry_job(self, job_id: int, owner: str, *, run_at: datetime, error: str | None) -> bool:
        return await self._db.unit(
            (
                "UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, "
                "last_error = COALESCE(?, last_error), updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (run_at.timestamp(), error, time.time(), job_id, owner, RUNNING),
            )
        )
