"""What the web console keeps and lists (:class:`~mmsgate.core.roles.ConsoleState`): pages of messages,
postbacks with their attempts, templates, the password, sessions and uploads."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from mmsgate.core.model import Event, Message, Template, from_epoch
from mmsgate.core.records import ConsoleUpload, MessageQuery, PostbackAttempt, PostbackRecord
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.rows import MESSAGE_READ_COLUMNS, TEMPLATE_COLUMNS, Params, message_row, template_row

CONSOLE_PASSWORD = "console_password"
"""The ``gateway_values`` entry holding the console password's scrypt hash."""

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


class SqlConsole:
    """What the console keeps and lists."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def console_messages(self, query: MessageQuery, limit: int) -> list[Message]:
        sql, params = messages_page_query(query, limit)
        return [message_row(r) for r in await self._db.read(sql, params)]

    async def console_postbacks(self, subject_id: str) -> list[PostbackRecord]:
        rows = await self._db.read(
            "SELECT id, event_id, code, url, state, attempts, last_error, created_at FROM postbacks "
            "WHERE subject_id = ? ORDER BY id",
            (subject_id,),
        )
        tries = await self._db.read(
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

    async def console_last_events(self, subject_ids: Sequence[str]) -> dict[str, Event]:
        if not subject_ids:
            return {}
        rows = await self._db.read(
            "SELECT subject_id, code, status, details, created_at FROM events WHERE id IN "
            f"(SELECT MAX(id) FROM events WHERE subject_id IN ({', '.join('?' for _ in subject_ids)}) "
            "GROUP BY subject_id)",
            tuple(subject_ids),
        )
        return {str(r[0]): Event(r[1], r[2], r[3], from_epoch(r[4])) for r in rows}

    async def console_templates(self, account_id: str | None = None, limit: int = 200) -> list[Template]:
        rows = await self._db.read(
            f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE account_id = COALESCE(?, account_id) "
            "ORDER BY created_at DESC, mms_id DESC LIMIT ?",
            (account_id, limit),
        )
        return [template_row(r) for r in rows]

    async def console_password_hash(self) -> str | None:
        rows = await self._db.read("SELECT value FROM gateway_values WHERE name = ?", (CONSOLE_PASSWORD,))
        return str(rows[0][0]) if rows else None

    async def set_console_password(self, password_hash: str, *, only_if_unset: bool = False) -> bool:
        if only_if_unset:  # a first start: no password, so no session either
            rows = await self._db.write(
                [
                    (
                        "INSERT INTO gateway_values (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING "
                        "RETURNING name",
                        (CONSOLE_PASSWORD, password_hash),
                    )
                ]
            )
            return bool(rows[0])
        await self._db.write(
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
        await self._db.write(
            [
                ("DELETE FROM console_sessions WHERE expires_at < ?", (now,)),
                (
                    "INSERT INTO console_sessions (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
                    (token_hash, now, expires_at.timestamp()),
                ),
            ]
        )

    async def console_session(self, token_hash: str, now: datetime) -> datetime | None:
        rows = await self._db.read(
            "SELECT expires_at FROM console_sessions WHERE token_hash = ? AND expires_at > ?",
            (token_hash, now.timestamp()),
        )
        return from_epoch(rows[0][0]) if rows else None

    async def end_console_session(self, token_hash: str) -> None:
        await self._db.write([("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))])

    async def add_console_upload(self, upload: ConsoleUpload) -> None:
        await self._db.write(
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
        rows = await self._db.read(f"SELECT {_UPLOAD_COLUMNS} FROM console_uploads WHERE token_hash = ?", (token_hash,))
        if not rows:
            return None
        r = rows[0]
        return ConsoleUpload(r[0], r[1], r[2], r[3], int(r[4]), from_epoch(r[5]), from_epoch(r[6]))
