"""Rows and records: the column lists, and conversions between database rows and domain records."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from mmsgate.core.codes import JobKind, MessageState, TemplateState
from mmsgate.core.model import (
    Account,
    ApiKey,
    Job,
    MediaKind,
    Message,
    Outgoing,
    Part,
    Sending,
    Slide,
    Template,
    from_epoch,
)

Row = tuple[Any, ...]

#: A job's or a postback's state as a parameter, in changes of one row found by its key. Were it written
#: in the statement, the state's partial index (jobs_due, jobs_lease, postbacks_lease: queued or running
#: rows only) would match too, and a plan prepared while that index was small reads all of it for each
#: row once it has grown. As a parameter, it leaves only the key's index to a prepared plan.
RUNNING = "running"
QUEUED = "queued"
Params = Sequence[Any]
Statement = tuple[str, Params]


class Unit(NamedTuple):
    """A guarded change: ``then`` runs only if ``guard`` (an UPDATE ... RETURNING) returns a row."""

    guard: Statement | None
    then: Sequence[Statement]


ACCOUNT_COLUMNS = "id, name, disabled, transcoding, postback_url, postback_secret, rate_limit, created_at"
KEY_COLUMNS = "id, account_id, prefix, revoked, created_at"
SENDING_COLUMNS = (
    "subject, fallback_sms_text, disable_fallback_sms, disable_fallback_sms_link, "
    "fallback_link_expires_at, client_reference, slides"
)
MESSAGE_COLUMNS = (
    "tracking_id, account_id, service_id, to_number, from_number, from_mask, expires_at, cache_content, "
    f"{SENDING_COLUMNS}, mms_id, state, created_at"
)
MESSAGE_READ_COLUMNS = f"{MESSAGE_COLUMNS}, carrier, carrier_message_id"
TEMPLATE_COLUMNS = f"mms_id, tracking_id, account_id, name, {SENDING_COLUMNS}, state, created_at"
PART_COLUMNS = (
    "owner_id, position, slide, kind, content_type, size, sha256, source_url, width, height, duration, adapted"
)
JOB_COLUMNS = "id, kind, ref, account_id, attempts, run_at, lease_owner, lease_until, deadline"

_slides_encoder = msgspec.json.Encoder()
_slides_decoder = msgspec.json.Decoder(list[dict[str, Any]])


def hash_key(api_key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is a sufficient one-way store."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def account_row(row: Row) -> Account:
    return Account(
        id=row[0],
        name=row[1],
        disabled=bool(row[2]),
        transcoding=bool(row[3]),
        postback_url=row[4],
        postback_secret=row[5],
        rate_limit=int(row[6]),
        created_at=from_epoch(row[7]),
    )


def key_row(row: Row) -> ApiKey:
    return ApiKey(id=row[0], account_id=row[1], prefix=row[2], revoked=bool(row[3]), created_at=from_epoch(row[4]))


def sending_row(row: Row) -> Sending:
    return Sending(
        subject=row[0],
        fallback_sms_text=row[1],
        disable_fallback_sms=bool(row[2]),
        disable_fallback_sms_link=bool(row[3]),
        fallback_link_expires_at=from_epoch(row[4]) if row[4] is not None else None,
        client_reference=row[5],
        slides=tuple(Slide.from_wire(s) for s in _slides_decoder.decode(row[6])),
    )


def sending_params(s: Sending) -> tuple[Any, ...]:
    return (
        s.subject,
        s.fallback_sms_text,
        s.disable_fallback_sms,
        s.disable_fallback_sms_link,
        s.fallback_link_expires_at.timestamp() if s.fallback_link_expires_at else None,
        s.client_reference,
        _slides_encoder.encode([slide.to_wire() for slide in s.slides]).decode(),
    )


def message_row(row: Row) -> Message:
    return Message(
        tracking_id=row[0],
        account_id=row[1],
        service_id=row[2],
        to=row[3],
        sender=row[4],
        from_mask=row[5],
        expires_at=from_epoch(row[6]),
        cache_content=bool(row[7]),
        sending=sending_row(row[8:15]),
        mms_id=row[15],
        state=MessageState(row[16]),
        created_at=from_epoch(row[17]),
        carrier=row[18] if len(row) > 18 else None,
        carrier_message_id=row[19] if len(row) > 19 else None,
    )


def template_row(row: Row) -> Template:
    return Template(
        mms_id=row[0],
        tracking_id=row[1],
        account_id=row[2],
        name=row[3],
        sending=sending_row(row[4:11]),
        state=TemplateState(row[11]),
        created_at=from_epoch(row[12]),
    )


def part_row(row: Row) -> Part:
    return Part(
        owner_id=row[0],
        position=int(row[1]),
        slide=int(row[2]),
        kind=MediaKind(row[3]),
        content_type=row[4],
        size=int(row[5]),
        sha256=row[6],
        source_url=row[7],
        width=int(row[8]),
        height=int(row[9]),
        duration=float(row[10]),
        adapted=bool(row[11]),
    )


def part_statements(parts: Sequence[Part]) -> list[Statement]:
    return [
        (
            f"INSERT INTO parts ({PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                p.owner_id,
                p.position,
                p.slide,
                p.kind.value,
                p.content_type,
                p.size,
                p.sha256,
                p.source_url,
                p.width,
                p.height,
                p.duration,
                p.adapted,
            ),
        )
        for p in parts
    ]


def job_row(row: Row, message: Message | None = None) -> Job:
    return Job(
        id=int(row[0]),
        kind=JobKind(row[1]),
        ref=row[2],
        account_id=row[3],
        attempts=int(row[4]),
        run_at=from_epoch(row[5]),
        lease_owner=row[6],
        lease_until=from_epoch(row[7]) if row[7] is not None else None,
        deadline=from_epoch(row[8]) if row[8] is not None else None,
        message=message,
    )


def job_statement(kind: JobKind, ref: str, account_id: str, run_at: float, deadline: float | None = None) -> Statement:
    return (
        "INSERT INTO jobs (kind, ref, account_id, state, attempts, run_at, deadline, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (kind.value, ref, account_id, "queued", 0, run_at, deadline, run_at, run_at),
    )


def event_statement(table: str, key: str, subject_id: str, event: tuple[str | None, str, str], now: float) -> Statement:
    """Record an event of a message or template (its account taken from the row)."""
    code, status, details = event
    return (
        "INSERT INTO events (subject_id, account_id, code, status, details, created_at) "
        f"SELECT {key}, account_id, ?, ?, ?, ? FROM {table} WHERE {key} = ?",
        (code, status, details, now, subject_id),
    )


POSTBACK_COLUMNS = "id, event_id, account_id, subject_id, url, body, attempts"
OUTBOX_INSERT = (
    "INSERT INTO postbacks (event_id, account_id, subject_id, code, url, body, state, attempts, run_at, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def outbox_statements(postback: Outgoing | None, now: float) -> list[Statement]:
    """Put a postback in the outbox (nothing when there is none to send)."""
    if postback is None:
        return []
    return [
        (
            OUTBOX_INSERT,
            (
                postback.event_id,
                postback.account_id,
                postback.subject_id,
                postback.code,
                postback.url,
                postback.body,
                "queued",
                0,
                now,
                now,
                now,
            ),
        )
    ]
