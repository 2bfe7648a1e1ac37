"""Gateway-wide state: configured connections (:class:`~mmsgate.core.roles.Connections`), shared values
(:class:`~mmsgate.core.roles.Values`), carriers' send windows (:class:`~mmsgate.core.roles.SendWindows`), and
deleting what is over (:class:`~mmsgate.core.roles.Retention`)."""

from __future__ import annotations

import json
import time
from datetime import datetime

from mmsgate.core.model import from_epoch
from mmsgate.core.records import Connection
from mmsgate.errors import Conflict, NotFound
from mmsgate.store.sql.database import SqlDatabase


class SqlConnections:
    """Configured connections."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def add_connection(self, name: str, kind: str, config: dict[str, object]) -> Connection:
        now = time.time()
        try:
            await self._db.write(
                [
                    (
                        "INSERT INTO connections (name, kind, config, created_at) VALUES (?, ?, ?, ?)",
                        (name, kind, json.dumps(config, sort_keys=True), now),
                    )
                ]
            )
        except Conflict:
            raise Conflict(f"a connection named {name!r} exists already") from None
        return Connection(name, kind, dict(config), from_epoch(now))

    async def list_connections(self, kind: str | None = None) -> list[Connection]:
        rows = await self._db.read(
            "SELECT name, kind, config, created_at FROM connections WHERE kind = COALESCE(?, kind) ORDER BY name",
            (kind,),
        )
        return [Connection(r[0], r[1], json.loads(r[2]), from_epoch(r[3])) for r in rows]

    async def remove_connection(self, name: str, kind: str | None = None) -> None:
        rows = await self._db.write(
            [("DELETE FROM connections WHERE name = ? AND kind = COALESCE(?, kind) RETURNING name", (name, kind))]
        )
        if not rows[0]:
            raise NotFound(f"no {kind or ''} connection named {name!r}".replace("  ", " "))


class SqlValues:
    """Gateway-wide values."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def get_value(self, name: str) -> str | None:
        rows = await self._db.read("SELECT value FROM gateway_values WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def set_value(self, name: str, value: str) -> None:
        await self._db.write(
            [
                (
                    "INSERT INTO gateway_values (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
            ]
        )


class SqlSendWindows:
    """Throughput windows."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db
        self._ring_sizes: dict[str, int] = {}

    async def _size_ring(self, carrier: str, limit: int) -> None:
        rows = await self._db.read("SELECT COUNT(*) FROM carrier_sends WHERE carrier = ?", (carrier,))
        if int(rows[0][0]) != limit:
            await self._db.write(
                [
                    ("DELETE FROM carrier_sends WHERE carrier = ? AND slot >= ?", (carrier, limit)),
                    *(
                        (
                            "INSERT INTO carrier_sends (carrier, slot, at) VALUES (?, ?, 0) "
                            "ON CONFLICT (carrier, slot) DO NOTHING",
                            (carrier, slot),
                        )
                        for slot in range(limit)
                    ),
                ]
            )

    async def reserve_sends(self, carrier: str, limit: int, window: float, want: int) -> tuple[int, float]:
        # a ring of `limit` slots per carrier, each holding the time of the send that used it last: a
        # slot is free once that send left the window, so no window ever holds more than `limit` sends
        if self._ring_sizes.get(carrier) != limit:  # sized once per process and limit, not on every send
            await self._size_ring(carrier, limit)
            self._ring_sizes[carrier] = limit
        now = self._db.now_sql
        granted = await self._db.write(
            [
                (
                    f"UPDATE carrier_sends SET at = {now} WHERE carrier = ? AND slot IN "
                    f"(SELECT slot FROM carrier_sends WHERE carrier = ? AND at <= {now} - ? "
                    f"ORDER BY at LIMIT ?{self._db.skip_locked}) RETURNING slot",
                    (carrier, carrier, window, want),
                )
            ]
        )
        if granted[0]:
            return len(granted[0]), 0.0
        rows = await self._db.read(
            f"SELECT MIN(at) + ? - {now} FROM carrier_sends WHERE carrier = ?", (window, carrier)
        )
        return 0, max(0.001, float(rows[0][0] or 0.0))


class SqlRetention:
    """Deleting what is over."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    @staticmethod
    def _prune_targets(cutoff: float, moment: float) -> dict[str, tuple[str, str, str, float]]:
        """What ``prune`` deletes: name → (table, key, condition on one value, that value)."""
        return {
            "jobs": ("jobs", "id", "state = 'done' AND updated_at < ?", cutoff),
            "postbacks": ("postbacks", "id", "state IN ('delivered', 'failed') AND updated_at < ?", cutoff),
            "sandbox_submissions": ("sandbox_submissions", "submission_id", "received_at < ?", cutoff),
            "sandbox_inbox": ("sandbox_inbox", "id", "delivered_at < ?", cutoff),
            "inbound_parts": (
                "inbound_parts",
                "inbound_id",
                "inbound_id IN (SELECT id FROM inbound WHERE expires_at < ?)",
                moment,
            ),
            "inbound": ("inbound", "id", "expires_at < ?", moment),
            "hosted_pages": ("hosted_pages", "code", "expires_at < ?", moment),
            "sms_segments": ("sms_segments", "tracking_id", "created_at < ?", cutoff),
            "sms_receipts": ("sms_receipts", "connector || ' ' || smsc_id", "received_at < ?", cutoff),
            "sandbox_sms": ("sandbox_sms", "id", "received_at < ?", cutoff),
            "mm7_inbox": ("mm7_inbox", "id", "received_at < ?", cutoff),
            "postback_attempts": ("postback_attempts", "id", "at < ?", cutoff),
            "console_sessions": ("console_sessions", "token_hash", "expires_at < ?", moment),
            "console_uploads": ("console_uploads", "token_hash", "expires_at < ?", moment),
        }

    async def prune(self, finished_before: datetime, now: datetime, *, batch: int = 1000) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, (table, key, condition, value) in self._prune_targets(
            finished_before.timestamp(), now.timestamp()
        ).items():
            counts[name] = 0
            while True:  # in batches: no long transaction holds the writer
                rows = await self._db.write(
                    [
                        (
                            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {condition} "
                            f"LIMIT ?) RETURNING {key}",
                            (value, batch),
                        )
                    ]
                )
                counts[name] += len(rows[0])
                if len(rows[0]) < batch:
                    break
        return counts
