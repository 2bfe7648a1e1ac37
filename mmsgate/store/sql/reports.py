"""Reports kept before the record of their submit (:class:`~mmsgate.core.roles.KeptReports`): a carrier's
delivery report, or an SMSC's receipt for a fallback SMS segment, that overtook the write saying what the
carrier took. Kept in ``kept_reports`` until that write exists; the delivery engine then applies them."""

from __future__ import annotations

from datetime import datetime

import msgspec

from mmsgate.core.codes import MessageState
from mmsgate.core.model import from_epoch
from mmsgate.core.records import KeptReport, ReportKind, candidate_ids, normalise_id
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.rows import Row, Statement

KEPT_COLUMNS = "kind, carrier, carrier_message_id, submission_id, status, details, code, extra, received_at, expires_at"
_IDS = "k.carrier_message_id, k.alt_id, k.alt_id2"
"""The readings of a kept receipt's id, one of which an SMS segment's id may be."""
_K_COLUMNS = ", ".join(f"k.{c.strip()}" for c in KEPT_COLUMNS.split(","))

UNRECORDED = (MessageState.ACCEPTED.value, MessageState.MEDIA_READY.value, MessageState.SUBMITTING.value)
"""The states of a message whose submit is not recorded yet: a report for it waits."""

_extra = msgspec.json.Decoder(dict[str, str])


def kept_row(row: Row) -> KeptReport:
    return KeptReport(
        kind=ReportKind(row[0]),
        carrier=row[1],
        carrier_message_id=row[2],
        submission_id=row[3],
        status=row[4],
        details=row[5],
        code=row[6],
        extra=_extra.decode(row[7]),
        received_at=from_epoch(row[8]),
        expires_at=from_epoch(row[9]),
    )


def keep_statement(report: KeptReport, *, unless_segment: bool = False) -> Statement:
    """The insert that keeps ``report`` (the first one kept for a carrier's id stays). ``unless_segment``:
    only while no SMS segment is recorded under the receipt's id, checked in the same statement."""
    own = normalise_id(report.carrier_message_id) if report.kind is ReportKind.SMS else report.carrier_message_id
    ids = candidate_ids(own) if report.kind is ReportKind.SMS else (own,)
    alt, alt2 = (*ids[1:], own, own)[:2]
    values = (
        report.kind.value,
        report.carrier,
        own,
        alt,
        alt2,
        report.submission_id,
        report.status,
        report.details,
        report.code,
        msgspec.json.encode(report.extra).decode(),
        report.received_at.timestamp(),
        report.expires_at.timestamp(),
    )
    sql = (
        "INSERT INTO kept_reports (kind, carrier, carrier_message_id, alt_id, alt_id2, submission_id, status, "
        "details, code, extra, received_at, expires_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
    )
    params: tuple[object, ...] = values
    if unless_segment:
        sql += (
            " WHERE NOT EXISTS (SELECT 1 FROM sms_segments WHERE connector = ? "
            f"AND smsc_id IN ({', '.join('?' for _ in ids)}))"
        )
        params = (*values, report.carrier, *ids)
    else:
        sql += " WHERE 1 = 1"  # SQLite reads ON CONFLICT after a bare SELECT as a join's ON
    return sql + " ON CONFLICT (kind, carrier, carrier_message_id) DO NOTHING RETURNING carrier", params


async def pending_report(db: SqlDatabase, tracking_id: str) -> KeptReport | None:
    """The report kept for a message: by its tracking id, by its carrier's id, or by one of its segments."""
    rows = await db.read(
        f"SELECT {KEPT_COLUMNS} FROM kept_reports WHERE kind = 'mms' AND submission_id = ? "
        f"UNION ALL SELECT {_K_COLUMNS} FROM kept_reports k JOIN messages m ON m.carrier = k.carrier "
        "AND m.carrier_message_id = k.carrier_message_id WHERE k.kind = 'mms' AND m.tracking_id = ? "
        "AND m.carrier_message_id IS NOT NULL "
        f"UNION ALL SELECT {_K_COLUMNS} FROM kept_reports k JOIN sms_segments s ON s.connector = k.carrier "
        f"AND s.smsc_id IN ({_IDS}) WHERE k.kind = 'sms' AND s.tracking_id = ?",
        (tracking_id, tracking_id, tracking_id),
    )
    return min((kept_row(r) for r in rows), key=lambda k: k.received_at, default=None)


class SqlKeptReports:
    """Reports kept until the record of their submit exists."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def keep_report(self, report: KeptReport) -> bool:
        rows = await self._db.write([keep_statement(report)])
        return bool(rows[0])

    async def kept_report(self, tracking_id: str, carrier: str, carrier_message_id: str) -> KeptReport | None:
        rows = await self._db.read(
            f"SELECT {KEPT_COLUMNS} FROM kept_reports WHERE kind = 'mms' AND carrier = ? AND carrier_message_id = ? "
            f"UNION ALL SELECT {KEPT_COLUMNS} FROM kept_reports WHERE kind = 'mms' AND submission_id = ?",
            (carrier, carrier_message_id, tracking_id),
        )
        return kept_row(rows[0]) if rows else None

    async def matched_reports(self, limit: int = 100) -> list[tuple[KeptReport, str]]:
        waiting = ", ".join("?" for _ in UNRECORDED)
        rows = await self._db.read(
            f"SELECT * FROM (SELECT {_K_COLUMNS}, m.tracking_id FROM kept_reports k "
            "JOIN messages m ON m.tracking_id = k.submission_id "
            f"WHERE k.kind = 'mms' AND m.state NOT IN ({waiting}) "
            f"UNION ALL SELECT {_K_COLUMNS}, m.tracking_id FROM kept_reports k "
            "JOIN messages m ON m.carrier = k.carrier AND m.carrier_message_id = k.carrier_message_id "
            "WHERE k.kind = 'mms' AND k.submission_id IS NULL AND m.carrier_message_id IS NOT NULL "
            f"UNION ALL SELECT {_K_COLUMNS}, s.tracking_id FROM kept_reports k "
            f"JOIN sms_segments s ON s.connector = k.carrier AND s.smsc_id IN ({_IDS}) "
            "WHERE k.kind = 'sms') AS matched ORDER BY received_at LIMIT ?",
            (*UNRECORDED, limit),
        )
        return [(kept_row(r), str(r[10])) for r in rows]

    async def forget_report(self, report: KeptReport) -> None:
        await self._db.write(
            [
                (
                    "DELETE FROM kept_reports WHERE kind = ? AND carrier = ? AND carrier_message_id = ?",
                    (report.kind.value, report.carrier, report.carrier_message_id),
                )
            ]
        )

    async def expire_reports(self, now: datetime, limit: int = 100) -> list[KeptReport]:
        # read first: every worker asks every few seconds, and there is nearly never anything to delete
        if not await self._db.read("SELECT 1 FROM kept_reports WHERE expires_at < ? LIMIT 1", (now.timestamp(),)):
            return []
        rows = await self._db.write(
            [
                (
                    "DELETE FROM kept_reports WHERE (kind, carrier, carrier_message_id) IN "
                    "(SELECT kind, carrier, carrier_message_id FROM kept_reports WHERE expires_at < ? LIMIT ?) "
                    f"RETURNING {KEPT_COLUMNS}",
                    (now.timestamp(), limit),
                )
            ]
        )
        return [kept_row(r) for r in rows[0]]
