"""MMS that handsets send to an account's number, and requests a carrier posted, kept before they are
answered (:class:`~mmsgate.core.roles.Incoming`)."""

from __future__ import annotations

import json
import time

from mmsgate.core.codes import JobKind
from mmsgate.core.model import NumberKind, Outgoing, SenderNumber, from_epoch
from mmsgate.core.records import Inbound, InboundPart
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.rows import job_statement, outbox_statements


class SqlIncoming:
    """Inbound MMS and requests carriers posted."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def number_owner(self, number: str) -> SenderNumber | None:
        rows = await self._db.read(
            "SELECT number, account_id, kind, service_id FROM numbers WHERE number = ?", (number,)
        )
        return SenderNumber(rows[0][0], rows[0][1], NumberKind(rows[0][2]), rows[0][3]) if rows else None

    async def receive_inbound(self, inbound: Inbound, postback: Outgoing | None) -> None:
        now = inbound.created_at.timestamp()
        await self._db.unit(
            None,
            (
                "INSERT INTO inbound (id, token, account_id, carrier, sender, recipient, subject, keyword, copy_to, "
                "expires_at, created_at, linked_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    inbound.id,
                    inbound.token,
                    inbound.account_id,
                    inbound.carrier,
                    inbound.sender,
                    inbound.recipient,
                    inbound.subject,
                    inbound.keyword,
                    json.dumps(list(inbound.copy_to)),
                    inbound.expires_at.timestamp(),
                    now,
                    inbound.linked_id,
                ),
            ),
            *(
                (
                    "INSERT INTO inbound_parts (inbound_id, position, name, content_type, size, sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (inbound.id, p.position, p.name, p.content_type, p.size, p.sha256),
                )
                for p in inbound.parts
            ),
            *outbox_statements(postback, now),
        )

    async def find_inbound(self, token: str) -> Inbound:
        row = await self._db.one(
            "SELECT id, token, account_id, carrier, sender, recipient, subject, keyword, copy_to, expires_at, "
            "created_at, linked_id FROM inbound WHERE token = ?",
            (token,),
            "no such inbound message",
        )
        parts = await self._db.read(
            "SELECT position, name, content_type, size, sha256 FROM inbound_parts WHERE inbound_id = ? "
            "ORDER BY position",
            (row[0],),
        )
        return Inbound(
            id=row[0],
            token=row[1],
            account_id=row[2],
            carrier=row[3],
            sender=row[4],
            recipient=row[5],
            subject=row[6],
            keyword=row[7],
            copy_to=tuple(json.loads(row[8])),
            expires_at=from_epoch(row[9]),
            created_at=from_epoch(row[10]),
            linked_id=row[11],
            parts=tuple(InboundPart(int(p[0]), p[1], p[2], int(p[3]), p[4]) for p in parts),
        )

    async def keep_request(self, connection: str, dedupe: str, kind: str, sha256: str, content_type: str) -> bool:
        now = time.time()
        return await self._db.unit(
            (
                "INSERT INTO mm7_inbox (connection, dedupe, kind, sha256, content_type, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connection, dedupe) DO NOTHING RETURNING id",
                (connection, dedupe, kind, sha256, content_type, now),
            ),
            job_statement(JobKind.MM7_INBOUND, f"{connection} {dedupe}", "mm7", now),
        )

    async def kept_request(self, connection: str, dedupe: str) -> tuple[str, str, str]:
        row = await self._db.one(
            "SELECT kind, sha256, content_type FROM mm7_inbox WHERE connection = ? AND dedupe = ?",
            (connection, dedupe),
            f"no request {dedupe} kept from {connection}",
        )
        return str(row[0]), str(row[1]), str(row[2])
