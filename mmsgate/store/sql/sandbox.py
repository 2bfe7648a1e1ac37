"""The sandbox carrier's virtual handsets (:class:`~mmsgate.core.roles.SandboxState`): how each behaves, the
submissions the sandbox received with their report jobs, and what each handset received and sent."""

from __future__ import annotations

import json
import time
from datetime import datetime

from mmsgate.core.codes import JobKind
from mmsgate.core.model import from_epoch
from mmsgate.core.records import Behaviour, Handset, Inbound, InboundPart, KnownHandset, SandboxSms, SandboxSubmission
from mmsgate.errors import Conflict
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.rows import Row, Statement, job_statement

SANDBOX = "sandbox"
"""The carrier name inbound MMS from the sandbox's handsets are recorded with."""

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


class SqlSandbox:
    """The sandbox carrier's handsets."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def set_handset(self, handset: Handset) -> None:
        await self._db.write(
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
        rows = await self._db.read("SELECT behaviour, delay FROM sandbox_handsets WHERE number = ?", (number,))
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
            await self._db.unit(None, *then)
        except Conflict:
            # the same submission again: count the call, keep the first record (and its report)
            await self._db.write(
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
        rows = await self._db.read(
            f"SELECT {SUBMISSION_COLUMNS} FROM sandbox_submissions WHERE submission_id = ? OR carrier_message_id = ?",
            (key, key),
        )
        return submission_row(rows[0]) if rows else None

    async def sandbox_inbox(self, number: str, limit: int = 100) -> list[tuple[str, str, datetime]]:
        rows = await self._db.read(
            "SELECT carrier_message_id, mms, delivered_at FROM sandbox_inbox WHERE number = ? AND delivered_at <= ? "
            "ORDER BY delivered_at DESC, id DESC LIMIT ?",
            (number, time.time(), limit),
        )
        return [(r[0], r[1], from_epoch(r[2])) for r in rows]

    async def sandbox_sms_receive(self, sms: SandboxSms) -> None:
        await self._db.write(
            [
                (
                    "INSERT INTO sandbox_sms (number, sender, text, message_id, tracking_id, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (sms.number, sms.sender, sms.text, sms.message_id, sms.tracking_id, sms.received_at.timestamp()),
                )
            ]
        )

    async def sandbox_sms_inbox(self, number: str, limit: int = 100) -> list[SandboxSms]:
        rows = await self._db.read(
            "SELECT number, sender, text, message_id, tracking_id, received_at FROM sandbox_sms WHERE number = ? "
            "ORDER BY id DESC LIMIT ?",
            (number, limit),
        )
        return [SandboxSms(r[0], r[1], r[2], r[3], r[4], from_epoch(r[5])) for r in rows]

    async def sandbox_sms_sent(self, tracking_id: str) -> list[str]:
        rows = await self._db.read(
            "SELECT message_id FROM sandbox_sms WHERE tracking_id = ? ORDER BY id", (tracking_id,)
        )
        return [str(r[0]) for r in rows]

    async def known_handsets(self, limit: int = 200) -> list[KnownHandset]:
        rows = await self._db.read(
            "SELECT a.number, MAX(a.at), SUM(a.received), SUM(a.sent), MAX(h.behaviour), MAX(h.delay) FROM ("
            "SELECT number, updated_at AS at, 0 AS received, 0 AS sent FROM sandbox_handsets "
            "UNION ALL SELECT number, delivered_at, 1, 0 FROM sandbox_inbox "
            "UNION ALL SELECT number, received_at, 1, 0 FROM sandbox_sms "
            "UNION ALL SELECT sender, created_at, 0, 1 FROM inbound WHERE carrier = ?"
            ") AS a LEFT JOIN sandbox_handsets h ON h.number = a.number "
            "GROUP BY a.number ORDER BY MAX(a.at) DESC, a.number LIMIT ?",
            (SANDBOX, limit),
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

    async def sent_by(self, number: str, limit: int = 50) -> list[Inbound]:
        rows = await self._db.read(
            "SELECT id, token, account_id, carrier, sender, recipient, subject, keyword, copy_to, expires_at, "
            "created_at, linked_id FROM inbound WHERE sender = ? ORDER BY created_at DESC LIMIT ?",
            (number, limit),
        )
        if not rows:
            return []
        marks = ", ".join("?" for _ in rows)
        part_rows = await self._db.read(
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
