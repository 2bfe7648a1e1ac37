"""Domain records. Rows come back from the store as these frozen records.

The ones built for every API request (message, template, slide, media) are frozen ``msgspec.Struct``s,
which are built several times faster than frozen dataclasses; the others are frozen dataclasses."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from mmsgate.core.codes import JobKind, MessageState, TemplateState


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second, as postbacks and the status view show it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MediaKind(enum.StrEnum):
    """The media keys a slide may carry."""

    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    CONTACT = "contact"
    CALENDAR = "calendar"
    PDF = "pdf"


class NumberKind(enum.StrEnum):
    """What kind of sender number an account owns."""

    SHORT_CODE = "short-code"
    TOLL_FREE = "toll-free"
    TEN_DLC = "10dlc"


class Media(msgspec.Struct, frozen=True):
    kind: MediaKind
    url: str


class Slide(msgspec.Struct, frozen=True):
    """One slide: optional text and up to two media objects, in the contract's rules."""

    text: str | None = None
    media: tuple[Media, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {m.kind: {"url": m.url} for m in self.media}  # a StrEnum is its own wire name
        if self.text is not None:
            out["message-text"] = self.text
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Slide:
        media = tuple(Media(MediaKind(k), v["url"]) for k, v in data.items() if k != "message-text")
        return cls(text=data.get("message-text"), media=media)


def slides_to_wire(slides: Sequence[Slide]) -> list[dict[str, Any]]:
    return [s.to_wire() for s in slides]


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    disabled: bool = False
    transcoding: bool = True
    postback_url: str | None = None
    postback_secret: str | None = None
    rate_limit: int = 0
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: its id, a short display prefix, and never the key itself."""

    id: str
    account_id: str
    prefix: str
    revoked: bool = False
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Campaign:
    service_id: str
    account_id: str
    postback_url: str | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class SenderNumber:
    number: str
    account_id: str
    kind: NumberKind
    service_id: str | None = None
    """The only campaign that may send from this number; None allows every campaign of the account."""


@dataclass(frozen=True, slots=True)
class BlockedNumber:
    account_id: str
    number: str


class Sending(msgspec.Struct, frozen=True):
    """The fields shared by a message and a template that say how to send and fall back."""

    subject: str | None
    fallback_sms_text: str | None
    disable_fallback_sms: bool
    disable_fallback_sms_link: bool
    fallback_link_expires_at: datetime | None
    """Always set on a message; on a template None means one year from each send."""
    client_reference: str | None
    slides: tuple[Slide, ...]


class Message(msgspec.Struct, frozen=True):
    """An MMS to one recipient, from `sendmms` or `sendsavedmms`."""

    tracking_id: str
    account_id: str
    service_id: str
    to: str
    sender: str
    from_mask: str | None
    expires_at: datetime
    cache_content: bool
    sending: Sending
    mms_id: str | None = None
    state: MessageState = MessageState.ACCEPTED
    created_at: datetime = msgspec.field(default_factory=utcnow)
    carrier: str | None = None
    carrier_message_id: str | None = None
    """Set once a carrier took the message."""


class Template(msgspec.Struct, frozen=True):
    """A saved MMS (`savemms`), sent later by `sendsavedmms`."""

    mms_id: str
    tracking_id: str
    account_id: str
    name: str
    sending: Sending
    state: TemplateState = TemplateState.PROCESSING
    created_at: datetime = msgspec.field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Event:
    """One step of a message's or template's history; `code` is the contract code where one applies."""

    code: str | None
    status: str
    details: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Job:
    """A unit of work claimed by a worker under a lease."""

    id: int
    kind: JobKind
    ref: str
    account_id: str
    attempts: int
    run_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    deadline: datetime | None = None
    """No retry is scheduled after this time (a message's expiry): the job runs then instead."""
    message: Message | None = None
    """A deliver job's message as the claim read it, when the store reads it with the claim (PostgreSQL
    does: one round trip less); else the handler reads it."""


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """What the API checks a request against: the account, its campaigns, numbers and blocked numbers."""

    account: Account
    service_ids: frozenset[str]
    numbers: dict[str, SenderNumber]
    blocked: frozenset[str]

    def may_send_from(self, number: str, service_id: str) -> bool:
        owned = self.numbers.get(number)
        return owned is not None and (owned.service_id is None or owned.service_id == service_id)


@dataclass(frozen=True, slots=True)
class Part:
    """One prepared media file of a message or template; its bytes are in the blob store."""

    owner_id: str
    position: int
    slide: int
    kind: MediaKind
    content_type: str
    size: int
    sha256: str
    source_url: str
    width: int = 0
    height: int = 0
    duration: float = 0.0
    adapted: bool = False


class Outgoing(msgspec.Struct, frozen=True):
    """A postback to put in the outbox, in the same transaction as the event it reports."""

    event_id: str
    account_id: str
    subject_id: str
    code: str
    url: str
    body: str


class Step(msgspec.Struct, frozen=True):
    """One transition of a message: applied only if the message is in one of the target's source states."""

    tracking_id: str
    target: MessageState
    code: str | None
    status: str
    details: str
    postback: Outgoing | None = None
    carrier: str | None = None
    carrier_message_id: str | None = None
    close_job: bool = False
    """Set when the transition happens outside the message's job (a delivery report): the job, waiting
    for the message's expiry, is then done."""
    wake_job: bool = False
    """Set when a transition outside the message's job gives it work (a report that makes the message
    fall back to SMS): the job, waiting for the message's expiry, runs now."""
    jobs: tuple[JobEffect, ...] = ()
    """Running jobs that this transition settles in the same transaction: the message's own job released
    to run again later (a submitted message's job waits for its expiry), or another job ended (the one that
    carried a delivery report)."""


class JobEffect(msgspec.Struct, frozen=True):
    """What a write does to a running job, if ``owner`` still holds its lease: ends it (``run_at`` None)
    or queues it to run again at ``run_at`` (seconds since the epoch)."""

    job_id: int
    owner: str
    run_at: float | None = None

    @classmethod
    def of(cls, job: Job, run_at: float | None = None) -> JobEffect | None:
        """The effect on ``job`` as its worker holds it; None for a job that no worker holds."""
        return None if job.lease_owner is None else cls(job.id, job.lease_owner, run_at)


class Settled:
    """What a job handler returns when its own last write already released or finished its job."""


SETTLED = Settled()

JobOutcome = datetime | Settled | None
"""What a job handler returns: None (done), a time (run again then, not a failure) or :data:`SETTLED`."""


class JobHandler(Protocol):
    """Runs one kind of job. ``run`` raising a retryable error means "try again later"; returning a
    time means "done for now, run again then" (a message waiting for its delivery report or expiry);
    returning :data:`SETTLED` means the handler's last write settled the job itself."""

    async def run(self, job: Job) -> JobOutcome: ...

    async def attempt_failed(
        self, job: Job, error: Exception, attempt: int, max_attempts: int, next_run: datetime
    ) -> None:
        """Record that attempt ``attempt`` (of at most ``max_attempts``) failed with ``error`` and the job
        runs again at ``next_run``, where its users look (a message's timeline); nothing for work no user
        follows. The retry is scheduled whether or not this succeeds."""
        ...

    async def give_up(self, job: Job, error: Exception) -> None:
        """Record the final outcome of a job that will not be tried again."""
        ...
