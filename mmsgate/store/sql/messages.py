"""What the API commits (:class:`~mmsgate.core.roles.Accepting`: messages and templates with their first job,
in group commits), and reading messages and templates with what happened to them
(:class:`~mmsgate.core.roles.Messages`)."""

from __future__ import annotations

from mmsgate.core.codes import JobKind
from mmsgate.core.model import Event, Message, Part, Template, from_epoch
from mmsgate.core.records import HostedPage, KeptReport, SmsSegmentState, candidate_ids
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.reports import pending_report
from mmsgate.store.sql.rows import (
    MESSAGE_COLUMNS,
    MESSAGE_READ_COLUMNS,
    PART_COLUMNS,
    TEMPLATE_COLUMNS,
    job_statement,
    message_row,
    part_row,
    sending_params,
    template_row,
)


async def account_template(db: SqlDatabase, account_id: str, mms_id: str) -> Template:
    """An account's template (:class:`~mmsgate.errors.NotFound` when it has none by that id)."""
    row = await db.one(
        f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE mms_id = ? AND account_id = ?",
        (mms_id, account_id),
        f"no template {mms_id}",
    )
    return template_row(row)


class SqlAccepting:
    """What the API commits, in group commits."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def accept_message(self, message: Message) -> None:
        now = message.created_at.timestamp()
        await self._db.group(
            [
                (
                    f"INSERT INTO messages ({MESSAGE_COLUMNS}, updated_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        message.tracking_id,
                        message.account_id,
                        message.service_id,
                        message.to,
                        message.sender,
                        message.from_mask,
                        message.expires_at.timestamp(),
                        message.cache_content,
                        *sending_params(message.sending),
                        message.mms_id,
                        message.state.value,
                        now,
                        now,
                    ),
                ),
                job_statement(
                    JobKind.DELIVER, message.tracking_id, message.account_id, now, message.expires_at.timestamp()
                ),
            ]
        )

    async def accept_template(self, template: Template) -> None:
        now = template.created_at.timestamp()
        await self._db.group(
            [
                (
                    f"INSERT INTO templates ({TEMPLATE_COLUMNS}, updated_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        template.mms_id,
                        template.tracking_id,
                        template.account_id,
                        template.name,
                        *sending_params(template.sending),
                        template.state.value,
                        now,
                        now,
                    ),
                ),
                job_statement(JobKind.PREPARE_TEMPLATE, template.mms_id, template.account_id, now),
            ]
        )

    async def get_template(self, account_id: str, mms_id: str) -> Template:
        return await account_template(self._db, account_id, mms_id)


class SqlMessages:
    """Reading messages and templates with their parts, events, postbacks and hosted pages."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def get_message(self, account_id: str, tracking_id: str) -> Message:
        row = await self._db.one(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE tracking_id = ? AND account_id = ?",
            (tracking_id, account_id),
            f"no message {tracking_id}",
        )
        return message_row(row)

    async def get_template(self, account_id: str, mms_id: str) -> Template:
        return await account_template(self._db, account_id, mms_id)

    async def find_message(self, tracking_id: str) -> Message:
        row = await self._db.one(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE tracking_id = ?",
            (tracking_id,),
            f"no message {tracking_id}",
        )
        return message_row(row)

    async def find_template(self, mms_id: str) -> Template:
        row = await self._db.one(
            f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE mms_id = ?", (mms_id,), f"no template {mms_id}"
        )
        return template_row(row)

    async def find_by_carrier_id(self, carrier: str, carrier_message_id: str) -> Message:
        row = await self._db.one(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE carrier = ? AND carrier_message_id = ?",
            (carrier, carrier_message_id),
            f"no message known to {carrier} as {carrier_message_id}",
        )
        return message_row(row)

    async def list_parts(self, owner_id: str) -> list[Part]:
        rows = await self._db.read(
            f"SELECT {PART_COLUMNS} FROM parts WHERE owner_id = ? ORDER BY position", (owner_id,)
        )
        return [part_row(r) for r in rows]

    async def list_events(self, subject_id: str) -> list[Event]:
        rows = await self._db.read(
            "SELECT code, status, details, created_at FROM events WHERE subject_id = ? ORDER BY id",
            (subject_id,),
        )
        return [Event(r[0], r[1], r[2], from_epoch(r[3])) for r in rows]

    async def list_postbacks(self, subject_id: str) -> list[tuple[str, str, str, int]]:
        rows = await self._db.read(
            "SELECT event_id, code, state, attempts FROM postbacks WHERE subject_id = ? ORDER BY id", (subject_id,)
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def find_hosted_page(self, code: str) -> HostedPage:
        row = await self._db.one(
            "SELECT code, tracking_id, expires_at FROM hosted_pages WHERE code = ?", (code,), "no such page"
        )
        return HostedPage(row[0], row[1], from_epoch(row[2]))

    async def sms_segments(self, tracking_id: str) -> list[SmsSegmentState]:
        rows = await self._db.read(
            "SELECT connector, smsc_id, seq, total FROM sms_segments WHERE tracking_id = ? ORDER BY seq",
            (tracking_id,),
        )
        segments = [SmsSegmentState(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
        if not segments:
            return []
        receipts: dict[tuple[str, str], tuple[str, str]] = {}
        for connector in {s.connector for s in segments}:
            ids = sorted({c for s in segments if s.connector == connector for c in candidate_ids(s.smsc_id)})
            found = await self._db.read(
                "SELECT smsc_id, status, details FROM sms_receipts WHERE connector = ? "
                f"AND smsc_id IN ({', '.join('?' for _ in ids)})",
                (connector, *ids),
            )
            receipts.update({(connector, r[0]): (r[1], r[2]) for r in found})
        out: list[SmsSegmentState] = []
        for segment in segments:
            match = next(
                (
                    receipts[(segment.connector, c)]
                    for c in candidate_ids(segment.smsc_id)
                    if (segment.connector, c) in receipts
                ),
                None,
            )
            out.append(
                segment
                if match is None
                else SmsSegmentState(segment.connector, segment.smsc_id, segment.seq, segment.total, match[0], match[1])
            )
        return out

    async def pending_report(self, tracking_id: str) -> KeptReport | None:
        return await pending_report(self._db, tracking_id)
