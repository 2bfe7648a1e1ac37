"""The Store's delivery operations: carrier ids, throughput windows, the postback outbox, the sandbox
carrier's handsets and inboxes, and inbound MMS. Same SQL on both backends, like ``sql.py``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime

from mmsgate.core.codes import JobKind
from mmsgate.core.model import (
    Behaviour,
    Connection,
    Handset,
    HostedPage,
    Inbound,
    InboundPart,
    Message,
    NumberKind,
    Outgoing,
    PostbackDelivery,
    SandboxSms,
    SandboxSubmission,
    SenderNumber,
    SmsSegmentState,
    Step,
    from_epoch,
)
from mmsgate.errors import Conflict, NotFound
from mmsgate.sms.base import SmsReceipt, candidate_ids, normalise_id
from mmsgate.store.rows import (
    MESSAGE_READ_COLUMNS,
    POSTBACK_COLUMNS,
    RUNNING,
    Row,
    Statement,
    event_statement,
    job_statement,
    message_row,
    outbox_statements,
)
from mmsgate.store.sql import SqlStore, claim_statement

SUBMISSION_COLUMNS = "submission_id, carrier_message_id, number, outcome, mms, received_at, calls"


def submission_row(row: Row, report_at: float | None = None) -> SandboxSubmission:
    return SandboxSubmission(
        submission_id=str(row[0]),
        carrier_message_id=str(row[1]),
        number=str(row[2]),
        outcome=Behaviour(row[3]),
        mms=str(row[4]),
        received_at=float(row[5]),
        report_at=report_at,
        calls=int(row[6]),
    )


class DeliverySql(SqlStore):
    """Delivery operations over the SQL primitives of :class:`SqlStore`."""

    def __init__(self, *, group_commit_max: int = 512) -> None:
        super().__init__(group_commit_max=group_commit_max)
        self._ring_sizes: dict[str, int] = {}

    # delivery ---------------------------------------------------------------------------------
    async def find_by_carrier_id(self, carrier: str, carrier_message_id: str) -> Message:
        row = await self._one(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE carrier = ? AND carrier_message_id = ?",
            (carrier, carrier_message_id),
            f"no message known to {carrier} as {carrier_message_id}",
        )
        return message_row(row)

    async def postback_target(self, account_id: str, service_id: str | None) -> str | None:
        if service_id is not None:
            rows = await self._read("SELECT postback_url FROM campaigns WHERE service_id = ?", (service_id,))
            if rows and rows[0][0]:
                return str(rows[0][0])
        rows = await self._read("SELECT postback_url FROM accounts WHERE id = ?", (account_id,))
        return str(rows[0][0]) if rows and rows[0][0] else None

    async def _size_ring(self, carrier: str, limit: int) -> None:
        rows = await self._read("SELECT COUNT(*) FROM carrier_sends WHERE carrier = ?", (carrier,))
        if int(rows[0][0]) != limit:
            await self._write(
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
        now = self.now_sql
        granted = await self._write(
            [
                (
                    f"UPDATE carrier_sends SET at = {now} WHERE carrier = ? AND slot IN "
                    f"(SELECT slot FROM carrier_sends WHERE carrier = ? AND at <= {now} - ? "
                    f"ORDER BY at LIMIT ?{self.skip_locked}) RETURNING slot",
                    (carrier, carrier, window, want),
                )
            ]
        )
        if granted[0]:
            return len(granted[0]), 0.0
        rows = await self._read(f"SELECT MIN(at) + ? - {now} FROM carrier_sends WHERE carrier = ?", (window, carrier))
        return 0, max(0.001, float(rows[0][0] or 0.0))

    async def get_value(self, name: str) -> str | None:
        rows = await self._read("SELECT value FROM gateway_values WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def set_value(self, name: str, value: str) -> None:
        await self._write(
            [
                (
                    "INSERT INTO gateway_values (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
            ]
        )

    def _prune_targets(self, cutoff: float, moment: float) -> dict[str, tuple[str, str, str, float]]:
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
        }

    async def prune(self, finished_before: datetime, now: datetime, *, batch: int = 1000) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, (table, key, condition, value) in self._prune_targets(
            finished_before.timestamp(), now.timestamp()
        ).items():
            counts[name] = 0
            while True:  # in batches: no long transaction holds the writer
                rows = await self._write(
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

    # postback outbox --------------------------------------------------------------------------
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
        rows = await self._claim(
            (
                claim_statement("postbacks", condition, self.skip_locked)
                + f" RETURNING {', '.join('postbacks.' + c.strip() for c in POSTBACK_COLUMNS.split(','))}",
                (now, *skip_accounts, limit, now, *skip_accounts, limit, owner, now + lease_seconds, now, limit),
            )
        )
        claimed = [PostbackDelivery(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]
        return sorted(claimed, key=lambda p: p.id)

    async def postback_done(self, postback_id: int, owner: str, *, delivered: bool, error: str | None) -> bool:
        return await self._unit(
            (
                "UPDATE postbacks SET state = ?, lease_owner = NULL, lease_until = NULL, "
                "last_error = COALESCE(?, last_error), updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                ("delivered" if delivered else "failed", error, time.time(), postback_id, owner, RUNNING),
            )
        )

    async def postback_retry(self, postback_id: int, owner: str, *, run_at: datetime, error: str) -> bool:
        return await self._unit(
            (
                "UPDATE postbacks SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, "
                "last_error = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (run_at.timestamp(), error, time.time(), postback_id, owner, RUNNING),
            )
        )

    async def list_postbacks(self, subject_id: str) -> list[tuple[str, str, str, int]]:
        rows = await self._read(
            "SELECT event_id, code, state, attempts FROM postbacks WHERE subject_id = ? ORDER BY id", (subject_id,)
        )
        return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    # sandbox carrier --------------------------------------------------------------------------
    async def set_handset(self, handset: Handset) -> None:
        await self._write(
            [
                (
                    "INSERT INTO sandbox_handsets (number, behaviour, delay, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (number) DO UPDATE SET behaviour = excluded.behaviour, delay = excluded.delay, "
                    "updated_at = excluded.updated_at",
                    (handset.number, handset.behaviour.value, handset.delay, time.time()),
                )
            ]
        )

    async def get_handset(self, number: str) -> Handset:
        rows = await self._read("SELECT behaviour, delay FROM sandbox_handsets WHERE number = ?", (number,))
        if not rows:
            return Handset(number)
        return Handset(number, Behaviour(rows[0][0]), float(rows[0][1]))

    async def sandbox_submit(self, submission: SandboxSubmission) -> SandboxSubmission:
        then: list[Statement] = [
            (
                f"INSERT INTO sandbox_submissions ({SUBMISSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 1)",
                (
                    submission.submission_id,
                    submission.carrier_message_id,
                    submission.number,
                    submission.outcome.value,
                    submission.mms,
                    submission.received_at,
                ),
            )
        ]
        if submission.report_at is not None:
            then.append(
                job_statement(JobKind.SANDBOX_REPORT, submission.carrier_message_id, "sandbox", submission.report_at)
            )
        if submission.outcome is Behaviour.DELIVERS and submission.report_at is not None:
            # the handset has it from the moment of its report (the inbox shows nothing from the future)
            then.append(
                (
                    "INSERT INTO sandbox_inbox (number, carrier_message_id, mms, delivered_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (carrier_message_id) DO NOTHING",
                    (submission.number, submission.carrier_message_id, submission.mms, submission.report_at),
                )
            )
        try:
            await self._unit(None, *then)
        except Conflict:
            # the same submission again: count the call, keep the first record (and its report)
            await self._write(
                [
                    (
                        "UPDATE sandbox_submissions SET calls = calls + 1 WHERE submission_id = ?",
                        (submission.submission_id,),
                    )
                ]
            )
            found = await self.sandbox_submission(submission.submission_id)
            if found is None:  # pragma: no cover - the conflict says it exists
                raise
            return found
        return submission

    async def sandbox_submission(self, key: str) -> SandboxSubmission | None:
        rows = await self._read(
            f"SELECT {SUBMISSION_COLUMNS} FROM sandbox_submissions WHERE submission_id = ? OR carrier_message_id = ?",
            (key, key),
        )
        return submission_row(rows[0]) if rows else None

    async def sandbox_inbox(self, number: str, limit: int = 100) -> list[tuple[str, str, datetime]]:
        rows = await self._read(
            "SELECT carrier_message_id, mms, delivered_at FROM sandbox_inbox WHERE number = ? AND delivered_at <= ? "
            "ORDER BY delivered_at DESC, id DESC LIMIT ?",
            (number, time.time(), limit),
        )
        return [(r[0], r[1], from_epoch(r[2])) for r in rows]

    # inbound ----------------------------------------------------------------------------------
    async def number_owner(self, number: str) -> SenderNumber | None:
        rows = await self._read("SELECT number, account_id, kind, service_id FROM numbers WHERE number = ?", (number,))
        return SenderNumber(rows[0][0], rows[0][1], NumberKind(rows[0][2]), rows[0][3]) if rows else None

    async def receive_inbound(self, inbound: Inbound, postback: Outgoing | None) -> None:
        now = inbound.created_at.timestamp()
        await self._unit(
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
        row = await self._one(
            "SELECT id, token, account_id, carrier, sender, recipient, subject, keyword, copy_to, expires_at, "
            "created_at, linked_id FROM inbound WHERE token = ?",
            (token,),
            "no such inbound message",
        )
        parts = await self._read(
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

    # MM7 VASP endpoint -----------------------------------------------------------------------
    async def mm7_receive(self, connection: str, dedupe: str, kind: str, sha256: str, content_type: str) -> bool:
        now = time.time()
        return await self._unit(
            (
                "INSERT INTO mm7_inbox (connection, dedupe, kind, sha256, content_type, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connection, dedupe) DO NOTHING RETURNING id",
                (connection, dedupe, kind, sha256, content_type, now),
            ),
            job_statement(JobKind.MM7_INBOUND, f"{connection} {dedupe}", "mm7", now),
        )

    async def mm7_request(self, connection: str, dedupe: str) -> tuple[str, str, str]:
        row = await self._one(
            "SELECT kind, sha256, content_type FROM mm7_inbox WHERE connection = ? AND dedupe = ?",
            (connection, dedupe),
            f"no MM7 request {dedupe} from {connection}",
        )
        return str(row[0]), str(row[1]), str(row[2])

    async def record_event(self, tracking_id: str, status: str, details: str) -> None:
        await self._write(
            [event_statement("messages", "tracking_id", tracking_id, (None, status, details), time.time())]
        )

    # SMS fallback -----------------------------------------------------------------------------
    async def create_hosted_page(self, tracking_id: str, code: str, expires_at: datetime) -> HostedPage:
        await self._write(
            [
                (
                    "INSERT INTO hosted_pages (code, tracking_id, expires_at, created_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (tracking_id) DO NOTHING",
                    (code, tracking_id, expires_at.timestamp(), time.time()),
                )
            ]
        )
        row = await self._one(
            "SELECT code, tracking_id, expires_at FROM hosted_pages WHERE tracking_id = ?",
            (tracking_id,),
            f"no hosted page for {tracking_id}",
        )
        return HostedPage(row[0], row[1], from_epoch(row[2]))

    async def find_hosted_page(self, code: str) -> HostedPage:
        row = await self._one(
            "SELECT code, tracking_id, expires_at FROM hosted_pages WHERE code = ?", (code,), "no such page"
        )
        return HostedPage(row[0], row[1], from_epoch(row[2]))

    async def sms_submitted(self, step: Step, connector: str, message_ids: Sequence[str]) -> bool:
        now = time.time()
        unit = self._step_unit(step, now)
        if unit is None:
            return False
        guard, then = unit
        total = len(message_ids)
        then.extend(
            (
                "INSERT INTO sms_segments (connector, smsc_id, tracking_id, seq, total, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (connector, smsc_id) DO NOTHING",
                (connector, normalise_id(smsc_id), step.tracking_id, seq, total, now),
            )
            for seq, smsc_id in enumerate(message_ids, start=1)
        )
        return await self._unit(guard, *then)

    async def record_sms_receipt(self, receipt: SmsReceipt) -> str | None:
        # a final receipt replaces an en-route one, never the reverse; the first final one stays
        await self._write(
            [
                (
                    "INSERT INTO sms_receipts (connector, smsc_id, status, details, received_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (connector, smsc_id) DO UPDATE SET "
                    "status = excluded.status, details = excluded.details, received_at = excluded.received_at "
                    "WHERE sms_receipts.status = 'enroute'",
                    (
                        receipt.connector,
                        normalise_id(receipt.message_id),
                        receipt.status.value,
                        receipt.details,
                        time.time(),
                    ),
                )
            ]
        )
        ids = candidate_ids(receipt.message_id)
        rows = await self._read(
            f"SELECT tracking_id FROM sms_segments WHERE connector = ? AND smsc_id IN ({', '.join('?' for _ in ids)})",
            (receipt.connector, *ids),
        )
        return str(rows[0][0]) if rows else None

    async def sms_segments(self, tracking_id: str) -> list[SmsSegmentState]:
        rows = await self._read(
            "SELECT connector, smsc_id, seq, total FROM sms_segments WHERE tracking_id = ? ORDER BY seq",
            (tracking_id,),
        )
        segments = [SmsSegmentState(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
        if not segments:
            return []
        receipts: dict[tuple[str, str], tuple[str, str]] = {}
        for connector in {s.connector for s in segments}:
            ids = sorted({c for s in segments if s.connector == connector for c in candidate_ids(s.smsc_id)})
            found = await self._read(
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

    async def add_connection(self, name: str, kind: str, config: dict[str, object]) -> Connection:
        now = time.time()
        try:
            await self._write(
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
        rows = await self._read(
            "SELECT name, kind, config, created_at FROM connections WHERE kind = COALESCE(?, kind) ORDER BY name",
            (kind,),
        )
        return [Connection(r[0], r[1], json.loads(r[2]), from_epoch(r[3])) for r in rows]

    async def remove_connection(self, name: str, kind: str | None = None) -> None:
        rows = await self._write(
            [("DELETE FROM connections WHERE name = ? AND kind = COALESCE(?, kind) RETURNING name", (name, kind))]
        )
        if not rows[0]:
            raise NotFound(f"no {kind or ''} connection named {name!r}".replace("  ", " "))

    async def sandbox_sms_receive(self, sms: SandboxSms) -> None:
        await self._write(
            [
                (
                    "INSERT INTO sandbox_sms (number, sender, text, message_id, tracking_id, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (sms.number, sms.sender, sms.text, sms.message_id, sms.tracking_id, sms.received_at.timestamp()),
                )
            ]
        )

    async def sandbox_sms_inbox(self, number: str, limit: int = 100) -> list[SandboxSms]:
        rows = await self._read(
            "SELECT number, sender, text, message_id, tracking_id, received_at FROM sandbox_sms WHERE number = ? "
            "ORDER BY id DESC LIMIT ?",
            (number, limit),
        )
        return [SandboxSms(r[0], r[1], r[2], r[3], r[4], from_epoch(r[5])) for r in rows]

    async def sandbox_sms_sent(self, tracking_id: str) -> list[str]:
        rows = await self._read("SELECT message_id FROM sandbox_sms WHERE tracking_id = ? ORDER BY id", (tracking_id,))
        return [str(r[0]) for r in rows]


__all__ = ["DeliverySql", "NotFound"]
