"""The Store's console operations (the web console's pages: message lists, attempts, sessions). Same SQL
on both backends, like ``sql.py``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime

from mmsgate.core.model import (
    Behaviour,
    Inbound,
    InboundPart,
    Message,
    Template,
    from_epoch,
)
from mmsgate.store.base import ConsoleUpload, KnownHandset, MessageQuery, PostbackAttempt, PostbackRecord
from mmsgate.store.rows import MESSAGE_READ_COLUMNS, RUNNING, TEMPLATE_COLUMNS, Params, message_row, template_row
from mmsgate.store.sql_delivery import DeliverySql

CONSOLE_PASSWORD = "console_password"
"""The ``gateway_values`` entry holding the console password's scrypt hash."""

_ATTEMPT_INSERT = (
    "INSERT INTO postback_attempts (postback_id, subject_id, attempt, at, elapsed, http_status, error) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPLOAD_COLUMNS = "token_hash, sha256, content_type, name, size, created_at, expires_at"


def messages_page_query(query: MessageQuery, limit: int) -> tuple[str, Params]:
    """The SQL of a console page of messages. Newest first on (created_at, tracking_id), read in the
    order of the ``messages_created`` index: the page after ``before`` starts where that one ended, so a
    page costs the same at the first row as at the 100,000th (keyset paging: no OFFSET, no sort)."""
    conditions: list[str] = []
    params: list[object] = []
    if query.state:
        conditions.append("state = ?")
        params.append(query.state)
    if query.account_id:
        conditions.append("account_id = ?")
        params.append(query.account_id)
    if query.number:
        conditions.append("(to_number = ? OR from_number = ?)")
        params.extend((query.number, query.number))
    if query.since is not None:
        conditions.append("created_at >= ?")
        params.append(query.since.timestamp())
    if query.until is not None:
        conditions.append("created_at < ?")
        params.append(query.until.timestamp())
    if query.before is not None:
        conditions.append("(created_at, tracking_id) < (?, ?)")
        params.extend(query.before)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {MESSAGE_READ_COLUMNS} FROM messages{where} ORDER BY created_at DESC, tracking_id DESC LIMIT ?"
    params.append(limit)
    return sql, params


def _attempt(row: Sequence[object]) -> PostbackAttempt:
    return PostbackAttempt(
        postback_id=int(str(row[0])),
        subject_id=str(row[1]),
        attempt=int(str(row[2])),
        at=from_epoch(float(str(row[3]))),
        elapsed=float(str(row[4])),
        http_status=None if row[5] is None else int(str(row[5])),
        error=None if row[6] is None else str(row[6]),
    )


class ConsoleSql(DeliverySql):
    """Console operations over the SQL primitives of :class:`SqlStore`."""

    async def postback_attempted(self, attempt: PostbackAttempt, owner: str, *, retry_at: datetime | None) -> bool:
        now = time.time()
        if attempt.error is None:
            state, run_at = "delivered", None
        elif retry_at is not None:
            state, run_at = "queued", retry_at.timestamp()
        else:
            state, run_at = "failed", None
        return await self._unit(
            (
                "UPDATE postbacks SET state = ?, run_at = COALESCE(?, run_at), lease_owner = NULL, "
                "lease_until = NULL, last_error = COALESCE(?, last_error), updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (state, run_at, attempt.error, now, attempt.postback_id, owner, RUNNING),
            ),
            (
                _ATTEMPT_INSERT,
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

    async def console_messages(self, query: MessageQuery, limit: int) -> list[Message]:
        sql, params = messages_page_query(query, limit)
        return [message_row(r) for r in await self._read(sql, params)]

    async def console_postbacks(self, subject_id: str) -> list[PostbackRecord]:
        rows = await self._read(
            "SELECT id, event_id, code, url, state, attempts, last_error, created_at FROM postbacks "
            "WHERE subject_id = ? ORDER BY id",
            (subject_id,),
        )
        tries = await self._read(
            "SELECT postback_id, subject_id, attempt, at, elapsed, http_status, error FROM postback_attempts "
            "WHERE subject_id = ? ORDER BY id",
            (subject_id,),
        )
        by_postback: dict[int, list[PostbackAttempt]] = {}
        for row in tries:
            attempt = _attempt(row)
            by_postback.setdefault(attempt.postback_id, []).append(attempt)
        return [
            PostbackRecord(
                event_id=r[1],
                code=r[2],
                url=r[3],
                state=r[4],
                attempts=int(r[5]),
                last_error=r[6],
                created_at=from_epoch(r[7]),
                tries=tuple(by_postback.get(int(r[0]), ())),
            )
            for r in rows
        ]

    async def console_templates(self, account_id: str | None = None, limit: int = 200) -> list[Template]:
        rows = await self._read(
            f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE account_id = COALESCE(?, account_id) "
            "ORDER BY created_at DESC, mms_id DESC LIMIT ?",
            (account_id, limit),
        )
        return [template_row(r) for r in rows]

    async def console_handsets(self, limit: int = 200) -> list[KnownHandset]:
        rows = await self._read(
            "SELECT a.number, MAX(a.at), SUM(a.received), SUM(a.sent), MAX(h.behaviour), MAX(h.delay) FROM ("
            "SELECT number, updated_at AS at, 0 AS received, 0 AS sent FROM sandbox_handsets "
            "UNION ALL SELECT number, delivered_at, 1, 0 FROM sandbox_inbox "
            "UNION ALL SELECT number, received_at, 1, 0 FROM sandbox_sms "
            "UNION ALL SELECT sender, created_at, 0, 1 FROM inbound WHERE carrier = 'sandbox'"
            ") AS a LEFT JOIN sandbox_handsets h ON h.number = a.number "
            "GROUP BY a.number ORDER BY MAX(a.at) DESC, a.number LIMIT ?",
            (limit,),
        )
        return [
            KnownHandset(
                number=str(r[0]),
                behaviour=Behaviour(r[4]) if r[4] is not None else Behaviour.DELIVERS,
                delay=float(r[5]) if r[5] is not None else 0.0,
                received=int(r[2]),
                sent=int(r[3]),
                last_active=from_epoch(float(r[1])),
            )
            for r in rows
        ]

    async def console_sent_by(self, number: str, limit: int = 50) -> list[Inbound]:
        rows = await self._read(
            "SELECT id, token, account_id, carrier, sender, recipient, subject, keyword, copy_to, expires_at, "
            "created_at, linked_id FROM inbound WHERE sender = ? ORDER BY created_at DESC LIMIT ?",
            (number, limit),
        )
        if not rows:
            return []
        marks = ", ".join("?" for _ in rows)
        part_rows = await self._read(
            f"SELECT inbound_id, position, name, content_type, size, sha256 FROM inbound_parts "
            f"WHERE inbound_id IN ({marks}) ORDER BY inbound_id, position",
            [r[0] for r in rows],
        )
        parts: dict[str, list[InboundPart]] = {}
        for p in part_rows:
            parts.setdefault(p[0], []).append(InboundPart(int(p[1]), p[2], p[3], int(p[4]), p[5]))
        return [
            Inbound(
                id=r[0],
                token=r[1],
                account_id=r[2],
                carrier=r[3],
                sender=r[4],
                recipient=r[5],
                subject=r[6],
                keyword=r[7],
                copy_to=tuple(json.loads(r[8])),
                expires_at=from_epoch(r[9]),
                created_at=from_epoch(r[10]),
                linked_id=r[11],
                parts=tuple(parts.get(r[0], ())),
            )
            for r in rows
        ]

    async def console_password_hash(self) -> str | None:
        return await self.get_value(CONSOLE_PASSWORD)

    async def set_console_password(self, password_hash: str, *, only_if_unset: bool = False) -> bool:
        if only_if_unset:  # a first start: no password, so no session either
            rows = await self._write(
                [
                    (
                        "INSERT INTO gateway_values (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING "
                        "RETURNING name",
                        (CONSOLE_PASSWORD, password_hash),
                    )
                ]
            )
            return bool(rows[0])
        await self._write(
            [
                (
                    "INSERT INTO gateway_values (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (CONSOLE_PASSWORD, password_hash),
                ),
                ("DELETE FROM console_sessions", ()),
            ]
        )
        return True

    async def create_console_session(self, token_hash: str, expires_at: datetime) -> None:
        now = time.time()
        await self._write(
            [
                ("DELETE FROM console_sessions WHERE expires_at < ?", (now,)),
                (
                    "INSERT INTO console_sessions (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
                    (token_hash, now, expires_at.timestamp()),
                ),
            ]
        )

    async def console_session(self, token_hash: str, now: datetime) -> datetime | None:
        rows = await self._read(
            "SELECT expires_at FROM console_sessions WHERE token_hash = ? AND expires_at > ?",
            (token_hash, now.timestamp()),
        )
        return from_epoch(rows[0][0]) if rows else None

    async def end_console_session(self, token_hash: str) -> None:
        await self._write([("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))])

    async def add_console_upload(self, upload: ConsoleUpload) -> None:
        await self._write(
            [
                ("DELETE FROM console_uploads WHERE expires_at < ?", (time.time(),)),
                (
                    f"INSERT INTO console_uploads ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        upload.token_hash,
                        upload.sha256,
                        upload.content_type,
                        upload.name,
                        upload.size,
                        upload.created_at.timestamp(),
                        upload.expires_at.timestamp(),
                    ),
                ),
            ]
        )

    async def console_upload(self, token_hash: str) -> ConsoleUpload | None:
        rows = await self._read(f"SELECT {_UPLOAD_COLUMNS} FROM console_uploads WHERE token_hash = ?", (token_hash,))
        if not rows:
            return None
        r = rows[0]
        return ConsoleUpload(r[0], r[1], r[2], r[3], int(r[4]), from_epoch(r[5]), from_epoch(r[6]))

    def _prune_targets(self, cutoff: float, moment: float) -> dict[str, tuple[str, str, str, float]]:
        """Also the attempts of postbacks that ended long ago, and ended console sessions and uploads."""
        return {
            **super()._prune_targets(cutoff, moment),
            "postback_attempts": ("postback_attempts", "id", "at < ?", cutoff),
            "console_sessions": ("console_sessions", "token_hash", "expires_at < ?", moment),
            "console_uploads": ("console_uploads", "token_hash", "expires_at < ?", moment),
        }
