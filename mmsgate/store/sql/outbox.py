"""The postback outbox (:class:`~mmsgate.core.roles.Outbox`): postbacks claimed under a lease, oldest first and
in order per message, and every delivery attempt recorded with its outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from mmsgate.core.records import PostbackAttempt, PostbackDelivery
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.jobs import claim_statement
from mmsgate.store.sql.rows import POSTBACK_COLUMNS, RUNNING

ATTEMPT_INSERT = (
    "INSERT INTO postback_attempts (postback_id, subject_id, attempt, at, elapsed, http_status, error) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class SqlOutbox:
    """The postback outbox."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def claim_postbacks(
        self, owner: str, *, limit: int, lease_seconds: float, skip_accounts: Sequence[str] = ()
    ) -> list[PostbackDelivery]:
        now = time.time()
        condition = (
            " AND NOT EXISTS (SELECT 1 FROM postbacks e WHERE e.subject_id = postbacks.subject_id "
            "AND e.id < postbacks.id AND e.state IN ('queued', 'running'))"
        )
        if skip_accounts:
            condition += f" AND account_id NOT IN ({', '.join('?' for _ in skip_accounts)})"
        rows = await self._db.claim(
            (
                claim_statement("postbacks", condition, self._db.skip_locked)
                + f" RETURNING {', '.join('postbacks.' + c.strip() for c in POSTBACK_COLUMNS.split(','))}",
                (now, *skip_accounts, limit, now, *skip_accounts, limit, owner, now + lease_seconds, now, limit),
            )
        )
        claimed = [PostbackDelivery(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]
        return sorted(claimed, key=lambda p: p.id)

    async def postback_attempted(self, attempt: PostbackAttempt, owner: str, *, retry_at: datetime | None) -> bool:
        now = time.time()
        if attempt.error is None:
            state, run_at = "delivered", None
        elif retry_at is not None:
            state, run_at = "queued", retry_at.timestamp()
        else:
            state, run_at = "failed", None
        return await self._db.unit(
            (
                "UPDATE postbacks SET state = ?, run_at = COALESCE(?, run_at), lease_owner = NULL, "
                "lease_until = NULL, last_error = COALESCE(?, last_error), updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (state, run_at, attempt.error, now, attempt.postback_id, owner, RUNNING),
            ),
            (
                ATTEMPT_INSERT,
                (
                    attempt.postback_id,
                    attempt.subject_id,
                    attempt.attempt,
                    attempt.at.timestamp(),
                    attempt.elapsed,
                    attempt.http_status,
                    attempt.error,
                ),
            ),
        )

    async def extend_postback_leases(
        self, postback_ids: Sequence[int], owner: str, *, lease_seconds: float
    ) -> set[int]:
        now = time.time()
        held: set[int] = set()
        for start in range(0, len(postback_ids), 500):
            chunk = postback_ids[start : start + 500]
            rows = await self._db.claim(
                (
                    "UPDATE postbacks SET lease_until = ?, updated_at = ? WHERE lease_owner = ? AND state = ? "
                    f"AND id IN ({', '.join('?' for _ in chunk)}) RETURNING id",
                    (now + lease_seconds, now, owner, RUNNING, *chunk),
                )
            )
            held.update(int(r[0]) for r in rows)
        return held

    def on_outbox(self, listener: Callable[[frozenset[str]], None]) -> None:
        self._db.on_outbox(listener)
