"""Moving messages and templates along their lifecycle (:class:`~mmsgate.core.roles.Lifecycle`): every change
a compare-and-set (a guarded unit) committed with concurrent ones, with its event, postback and job effects;
and a fallback SMS's hosted page, segments and receipts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from mmsgate.core import lifecycle
from mmsgate.core.codes import EventCode, JobKind, MessageState, TemplateState
from mmsgate.core.model import Outgoing, Part, Step, from_epoch
from mmsgate.core.records import (
    HostedPage,
    KeptReport,
    ReportKind,
    SmsReceipt,
    SmsStatus,
    candidate_ids,
    normalise_id,
)
from mmsgate.errors import NotFound
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.reports import keep_statement
from mmsgate.store.sql.rows import (
    QUEUED,
    RUNNING,
    Statement,
    event_statement,
    outbox_statements,
    part_statements,
)


def step_unit(step: Step, now: float) -> tuple[Statement, list[Statement]] | None:
    """The guard and the statements of a transition (None when no state leads to its target): the unit
    that :meth:`SqlLifecycle.advance` commits."""
    origins = lifecycle.sources(step.target)
    if not origins:
        return None  # no state leads there (accepted): nothing to change
    then: list[Statement] = [
        event_statement("messages", "tracking_id", step.tracking_id, (step.code, step.status, step.details), now),
        *outbox_statements(step.postback, now),
    ]
    if step.close_job:
        then.append(
            (
                "UPDATE jobs SET state = 'done', updated_at = ? WHERE kind = ? AND ref = ? AND state = ?",
                (now, JobKind.DELIVER.value, step.tracking_id, QUEUED),
            )
        )
    if step.wake_job:
        then.append(
            (
                "UPDATE jobs SET run_at = ?, updated_at = ? WHERE kind = ? AND ref = ? AND state = ?",
                (now, now, JobKind.DELIVER.value, step.tracking_id, QUEUED),
            )
        )
    for effect in step.jobs:
        if effect.run_at is None:
            then.append(
                (
                    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ? "
                    "WHERE id = ? AND lease_owner = ? AND state = ?",
                    (now, effect.job_id, effect.owner, RUNNING),
                )
            )
        else:
            then.append(
                (
                    "UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, "
                    "updated_at = ? WHERE id = ? AND lease_owner = ? AND state = ?",
                    (effect.run_at, now, effect.job_id, effect.owner, RUNNING),
                )
            )
    guard: Statement = (
        "UPDATE messages SET state = ?, updated_at = ?, carrier = COALESCE(?, carrier), "
        "carrier_message_id = COALESCE(?, carrier_message_id) "
        f"WHERE tracking_id = ? AND state IN ({', '.join('?' for _ in origins)}) RETURNING tracking_id",
        (
            step.target.value,
            now,
            step.carrier,
            step.carrier_message_id,
            step.tracking_id,
            *(o.value for o in origins),
        ),
    )
    return guard, then


class SqlLifecycle:
    """Moving messages and templates along their lifecycle."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def media_ready(
        self,
        tracking_id: str,
        parts: Sequence[Part],
        *,
        code: str | None,
        status: str,
        details: str,
        postback: Outgoing | None = None,
        submitting: str | None = None,
    ) -> bool:
        now = time.time()
        state = MessageState.SUBMITTING if submitting else MessageState.MEDIA_READY
        then = [  # an accepted message has no parts yet: nothing to delete first
            *part_statements(parts),
            event_statement("messages", "tracking_id", tracking_id, (code, status, details), now),
            *outbox_statements(postback, now),
        ]
        if submitting:
            step = (None, "Submitting", f"to carrier {submitting}")
            then.append(event_statement("messages", "tracking_id", tracking_id, step, now))
        return await self._db.unit(
            (
                "UPDATE messages SET state = ?, updated_at = ?, carrier = COALESCE(?, carrier) "
                "WHERE tracking_id = ? AND state = ? RETURNING tracking_id",
                (state.value, now, submitting, tracking_id, MessageState.ACCEPTED.value),
            ),
            *then,
        )

    async def advance(self, step: Step) -> bool:
        unit = step_unit(step, time.time())
        return False if unit is None else await self._db.unit(unit[0], *unit[1])

    async def record_event(self, tracking_id: str, status: str, details: str) -> None:
        await self._db.write(
            [event_statement("messages", "tracking_id", tracking_id, (None, status, details), time.time())]
        )

    async def template_ready(
        self, mms_id: str, parts: Sequence[Part], *, details: str, postback: Outgoing | None = None
    ) -> bool:
        now = time.time()
        code = EventCode.TEMPLATE_READY
        return await self._db.unit(
            (
                "UPDATE templates SET state = ?, updated_at = ? WHERE mms_id = ? AND state = ? RETURNING mms_id",
                (TemplateState.READY.value, now, mms_id, TemplateState.PROCESSING.value),
            ),
            ("DELETE FROM parts WHERE owner_id = ?", (mms_id,)),
            *part_statements(parts),
            event_statement("templates", "mms_id", mms_id, (code.value, code.status, details), now),
            *outbox_statements(postback, now),
        )

    async def set_template_state(
        self, mms_id: str, state: TemplateState, *, code: str | None, details: str, postback: Outgoing | None = None
    ) -> None:
        now = time.time()
        status = EventCode(code).status if code else state.value.capitalize()
        applied = await self._db.unit(
            (
                "UPDATE templates SET state = ?, updated_at = ? WHERE mms_id = ? RETURNING mms_id",
                (state.value, now, mms_id),
            ),
            event_statement("templates", "mms_id", mms_id, (code, status, details), now),
            *outbox_statements(postback, now),
        )
        if not applied:
            raise NotFound(f"no template {mms_id}")

    async def create_hosted_page(self, tracking_id: str, code: str, expires_at: datetime) -> HostedPage:
        await self._db.write(
            [
                (
                    "INSERT INTO hosted_pages (code, tracking_id, expires_at, created_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (tracking_id) DO NOTHING",
                    (code, tracking_id, expires_at.timestamp(), time.time()),
                )
            ]
        )
        row = await self._db.one(
            "SELECT code, tracking_id, expires_at FROM hosted_pages WHERE tracking_id = ?",
            (tracking_id,),
            f"no hosted page for {tracking_id}",
        )
        return HostedPage(row[0], row[1], from_epoch(row[2]))

    async def sms_submitted(self, step: Step, connector: str, message_ids: Sequence[str]) -> bool:
        now = time.time()
        unit = step_unit(step, now)
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
        return await self._db.unit(guard, *then)

    async def record_sms_receipt(self, receipt: SmsReceipt, *, keep_until: datetime | None = None) -> str | None:
        now = time.time()
        # a final receipt replaces an en-route one, never the reverse; the first final one stays
        statements: list[Statement] = [
            (
                "INSERT INTO sms_receipts (connector, smsc_id, status, details, received_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (connector, smsc_id) DO UPDATE SET "
                "status = excluded.status, details = excluded.details, received_at = excluded.received_at "
                "WHERE sms_receipts.status = 'enroute'",
                (receipt.connector, normalise_id(receipt.message_id), receipt.status.value, receipt.details, now),
            )
        ]
        if keep_until is not None and receipt.status is not SmsStatus.ENROUTE:
            kept = KeptReport(
                ReportKind.SMS,
                receipt.connector,
                receipt.message_id,
                receipt.status.value,
                receipt.details,
                received_at=from_epoch(now),
                expires_at=keep_until,
            )
            statements.append(keep_statement(kept, unless_segment=True))
        await self._db.write(statements)
        ids = candidate_ids(receipt.message_id)
        rows = await self._db.read(
            f"SELECT tracking_id FROM sms_segments WHERE connector = ? AND smsc_id IN ({', '.join('?' for _ in ids)})",
            (receipt.connector, *ids),
        )
        return str(rows[0][0]) if rows else None
