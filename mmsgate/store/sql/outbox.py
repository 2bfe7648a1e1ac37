"""The postback outbox (:class:`~mmsgate.core.roles.Outbox`): postbacks claimed under a lease, oldest first and
in order per message, each with where it goes now, and every delivery attempt recorded with its outcome.
Also an account's backlog there and retrying it now (:class:`~mmsgate.core.roles.PostbackBacklog`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from mmsgate.core.model import from_epoch
from mmsgate.core.records import AccountBacklog, FailingPostback, PostbackAttempt, PostbackDelivery
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.jobs import claim_statement, extend_leases
from mmsgate.store.sql.rows import POSTBACK_COLUMNS, RUNNING

DESTINATIONS = (
    "SELECT p.id, COALESCE(NULLIF(c.postback_url, ''), NULLIF(a.postback_url, '')), a.postback_secret "
    "FROM postbacks p LEFT JOIN accounts a ON a.id = p.account_id "
    "LEFT JOIN messages m ON m.tracking_id = p.subject_id LEFT JOIN campaigns c ON c.service_id = m.service_id "
    "WHERE p.id IN ({ids})"
)
"""Where claimed postbacks go and their signing key, read right after the claim (so when they are sent): the
URL of the message's campaign, else the account's (a template's or an inbound MMS's subject is no message,
so theirs is the account's, as when they were queued); NULL when there is none any more. A read of its own
by primary keys, not subqueries in the claim's RETURNING: SQLite plans those as a scan of every message
and account for each row claimed."""

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
        if not rows:
            return []
        ids = [int(r[0]) for r in rows]
        where = {
            int(d[0]): (d[1], d[2])
            for d in await self._db.read(DESTINATIONS.format(ids=", ".join("?" for _ in ids)), tuple(ids))
        }
        claimed = []
        for r in rows:
            url, secret = where.get(int(r[0]), (None, None))
            claimed.append(PostbackDelivery(int(r[0]), r[1], r[2], r[3], url, r[5], int(r[6]), secret))
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
                "lease_until = NULL, last_error = COALESCE(?, last_error), url = COALESCE(?, url), updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (state, run_at, attempt.error, attempt.url, now, attempt.postback_id, owner, RUNNING),
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
        return await extend_leases(self._db, "postbacks", postback_ids, owner, lease_seconds)

    def on_outbox(self, listener: Callable[[frozenset[str]], None]) -> None:
        self._db.on_outbox(listener)


FAILING_COLUMNS = (
    "f.event_id, f.subject_id, f.code, f.url, f.state, f.attempts, f.last_error, "
    "CASE WHEN f.state = 'running' THEN f.lease_until ELSE f.run_at END, f.created_at, "
    "(SELECT COUNT(*) FROM postbacks h WHERE h.subject_id = f.subject_id AND h.id > f.id AND h.state = 'queued')"
)


class SqlPostbackBacklog:
    """An account's postbacks waiting in the outbox, read through the outbox's partial indexes (queued,
    running, failed): the delivered rows that fill the table are never read."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def postback_backlog(self, account_id: str, *, failing: int = 20) -> AccountBacklog:
        counts = await self._db.read(
            "SELECT COUNT(*), MIN(created_at), SUM(CASE WHEN last_error IS NULL THEN 0 ELSE 1 END) FROM postbacks "
            "WHERE state = 'queued' AND account_id = ? UNION ALL "
            "SELECT COUNT(*), MIN(created_at), SUM(CASE WHEN last_error IS NULL THEN 0 ELSE 1 END) FROM postbacks "
            "WHERE state = 'running' AND account_id = ? UNION ALL "
            "SELECT COUNT(*), NULL, 0 FROM postbacks WHERE state = 'failed' AND account_id = ?",
            (account_id, account_id, account_id),
        )
        (queued, queued_since, queued_retrying), (running, running_since, running_retrying), (failed, _, _) = counts
        held = await self._db.read(
            "SELECT COUNT(*) FROM postbacks q WHERE q.state = 'queued' AND q.account_id = ? AND EXISTS ("
            "SELECT 1 FROM postbacks e WHERE e.subject_id = q.subject_id AND e.id < q.id "
            "AND e.state IN ('queued', 'running') AND e.last_error IS NOT NULL)",
            (account_id,),
        )
        rows = await self._db.read(
            f"SELECT {FAILING_COLUMNS} FROM postbacks f WHERE f.state IN ('queued', 'running') "
            "AND f.account_id = ? AND f.last_error IS NOT NULL ORDER BY f.id LIMIT ?",
            (account_id, failing),
        )
        since = [float(t) for t in (queued_since, running_since) if t is not None]
        return AccountBacklog(
            account_id=account_id,
            waiting=int(queued) + int(running),
            oldest=from_epoch(min(since)) if since else None,
            retrying=int(queued_retrying or 0) + int(running_retrying or 0),
            held=int(held[0][0]),
            failed=int(failed),
            failing=tuple(
                FailingPostback(
                    event_id=r[0],
                    subject_id=r[1],
                    code=r[2],
                    url=r[3],
                    state=r[4],
                    attempts=int(r[5]),
                    last_error=r[6],
                    next_try=from_epoch(float(r[7])),
                    created_at=from_epoch(float(r[8])),
                    held=int(r[9]),
                )
                for r in rows
            ),
        )

    async def retry_postbacks(self, account_id: str) -> tuple[int, int]:
        now = time.time()
        failed, waiting = await self._db.write(
            [
                (
                    "UPDATE postbacks SET state = 'queued', run_at = ?, updated_at = ? "
                    "WHERE state = 'failed' AND account_id = ? RETURNING id",
                    (now, now, account_id),
                ),
                (
                    "UPDATE postbacks SET run_at = ?, updated_at = ? "
                    "WHERE state = 'queued' AND account_id = ? AND run_at > ? RETURNING id",
                    (now, now, account_id, now),
                ),
            ]
        )
        return len(failed), len(waiting)
