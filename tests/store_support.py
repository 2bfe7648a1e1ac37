"""What tests ask of a store that the gateway itself never does: counting messages by tracking id (audits of
"nothing lost, nothing twice"), and ending a claimed postback without recording an attempt (to test the
outbox's leases and order apart from its attempts)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from mmsgate.store import Store
from mmsgate.store.sql.rows import RUNNING


async def message_ids(store: Store, tracking_ids: Sequence[str]) -> dict[str, int]:
    """How many stored messages have each of the given tracking ids."""
    counts: dict[str, int] = {}
    for start in range(0, len(tracking_ids), 500):
        chunk = tracking_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = await store.db.read(
            f"SELECT tracking_id, COUNT(*) FROM messages WHERE tracking_id IN ({marks}) GROUP BY tracking_id",
            chunk,
        )
        counts.update({r[0]: int(r[1]) for r in rows})
    return counts


async def postback_done(store: Store, postback_id: int, owner: str, *, delivered: bool, error: str | None) -> bool:
    """End a claimed postback, delivered or failed for good, with no attempt recorded (the gateway ends one
    through :meth:`mmsgate.core.roles.Outbox.postback_attempted`); False if ``owner`` no longer holds it."""
    return await store.db.unit(
        (
            "UPDATE postbacks SET state = ?, lease_owner = NULL, lease_until = NULL, "
            "last_error = COALESCE(?, last_error), updated_at = ? "
            "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
            ("delivered" if delivered else "failed", error, time.time(), postback_id, owner, RUNNING),
        )
    )


async def postback_retry(store: Store, postback_id: int, owner: str, *, run_at: datetime, error: str) -> bool:
    """Queue a claimed postback again at ``run_at``, with no attempt recorded; False if ``owner`` no longer
    holds it."""
    return await store.db.unit(
        (
            "UPDATE postbacks SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, "
            "last_error = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
            (run_at.timestamp(), error, time.time(), postback_id, owner, RUNNING),
        )
    )
