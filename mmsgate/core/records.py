"""Records of the gateway's side business, as the store returns them: the postback outbox, the sandbox
carrier's handsets, inbound MMS, hosted pages, SMS segments and receipts, reports kept before the record of
their submit, configured connections, and what the console lists. The message domain itself (messages,
templates, jobs, steps) is in :mod:`mmsgate.core.model`."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec


@dataclass(frozen=True, slots=True)
class PostbackDelivery:
    """A postback claimed from the outbox for one delivery attempt, with where it goes and the key it is
    signed with as they are configured at the claim (the campaign's URL, else the account's; None when
    there is none any more), not as they were when the postback was queued."""

    id: int
    event_id: str
    account_id: str
    subject_id: str
    url: str | None
    body: str
    attempts: int
    secret: str | None = None


class Behaviour(enum.StrEnum):
    """How a sandbox handset treats an MMS sent to it."""

    DELIVERS = "delivers"
    REJECTS = "rejects"
    UNREACHABLE = "unreachable"
    NO_MMS = "no-mms"
    THROTTLES = "throttles"


@dataclass(frozen=True, slots=True)
class Handset:
    """A sandbox carrier's virtual handset; a number never configured delivers at once."""

    number: str
    behaviour: Behaviour = Behaviour.DELIVERS
    delay: float = 0.0


class SandboxSubmission(msgspec.Struct, frozen=True):
    """What the sandbox carrier received for one submission, and what it will report."""

    submission_id: str
    carrier_message_id: str
    number: str
    outcome: Behaviour
    mms: str
    """The composed MMS as JSON, as the handset will see it."""
    received_at: float
    report_at: float | None = None
    calls: int = 1


@dataclass(frozen=True, slots=True)
class InboundPart:
    """One file of an MMS a handset sent; its bytes are in the blob store."""

    position: int
    name: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """An MMS a handset sent to one of an account's numbers (MO)."""

    id: str
    token: str
    account_id: str
    carrier: str
    sender: str
    recipient: str
    subject: str | None
    keyword: str | None
    copy_to: tuple[str, ...]
    expires_at: datetime
    created_at: datetime
    parts: tuple[InboundPart, ...] = ()
    linked_id: str | None = None
    """The MMSC's LinkedID of an MMS received over MM7: a reply refers to it."""


@dataclass(frozen=True, slots=True)
class HostedPage:
    """The page a fallback SMS links to: it shows the message's slides until ``expires_at``."""

    code: str
    tracking_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SmsSegmentState:
    """One segment of a fallback SMS as the SMSC took it, with its receipt once one came."""

    connector: str
    smsc_id: str
    seq: int
    total: int
    status: str | None = None
    """The receipt's :class:`SmsStatus` value; None before any receipt."""
    details: str = ""


@dataclass(frozen=True, slots=True)
class Connection:
    """A configured connection (``mmsgate mm7 add``, ``mmsgate smpp add``): its kind and settings."""

    name: str
    kind: str
    config: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SandboxSms:
    """An SMS a sandbox handset received (a fallback SMS)."""

    number: str
    sender: str
    text: str
    message_id: str
    tracking_id: str
    received_at: datetime


# SMS receipts --------------------------------------------------------------------------------------


class SmsStatus(enum.StrEnum):
    """A receipt's outcome. Only ``enroute`` is not final."""

    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    ENROUTE = "enroute"


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    """What an SMSC says became of one segment it took."""

    connector: str
    message_id: str
    """As the receipt gives it (hex or decimal); the store matches it with :func:`candidate_ids`."""
    status: SmsStatus
    details: str
    """The SMSC's own words, e.g. ``stat:UNDELIV err:001``."""


class ReportKind(enum.StrEnum):
    """What a kept report is: a carrier's delivery report of an MMS, or an SMSC's receipt of one segment of
    a fallback SMS (whose own record stays with the receipts)."""

    MMS = "mms"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class KeptReport:
    """A delivery report or SMS receipt that came before the record of the submit it reports on, kept
    until that record exists (and applied then) or until ``expires_at``."""

    kind: ReportKind
    carrier: str
    """The carrier, MM7 connection or SMS connection that sent it."""
    carrier_message_id: str
    """The id the carrier gave the message (an SMS receipt's as :func:`normalise_id` keeps it)."""
    status: str
    """A delivery report's status (delivered, rejected, expired, failed) or a receipt's :class:`SmsStatus`."""
    details: str
    received_at: datetime
    expires_at: datetime
    submission_id: str | None = None
    """The message's tracking id, when the carrier reports with it (the sandbox)."""
    code: str | None = None
    """The carrier's own status (MM7 ``MMStatus``)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Additive postback fields the report carried."""


def normalise_id(raw: str) -> str:
    """An SMSC message id in the form the store keeps: trimmed, lower case, without leading zeros
    (``"0"`` stays ``"0"``)."""
    text = raw.strip().lower()
    return text.lstrip("0") or ("0" if text else "")


def candidate_ids(raw: str) -> tuple[str, ...]:
    """The normalised forms a receipt's id may have had in the submit's response: itself, and its
    other reading when SMSCs mix hexadecimal and decimal (hex in ``submit_sm_resp``, decimal in the
    receipt, or the other way)."""
    own = normalise_id(raw)
    found = [own]
    if own and all(c in "0123456789abcdef" for c in own) and len(own) <= 32:
        found.append(str(int(own, 16)))  # a hex id given in decimal by the receipt... or the reverse
        if own.isdigit():
            found.append(format(int(own), "x"))
    return tuple(dict.fromkeys(found))


# console ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostbackAttempt:
    """One POST of a postback: when it started, how long it took, the HTTP status (None when no answer
    came) and what went wrong (None when delivered)."""

    postback_id: int
    subject_id: str
    attempt: int
    at: datetime
    elapsed: float
    http_status: int | None
    error: str | None
    url: str | None = None
    """Where it was sent (None when it was not: no URL); the postback's row keeps the latest."""


@dataclass(frozen=True, slots=True)
class PostbackRecord:
    """A postback of the outbox as the console shows it."""

    event_id: str
    code: str
    url: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    tries: tuple[PostbackAttempt, ...] = ()


@dataclass(frozen=True, slots=True)
class FailingPostback:
    """A postback still waiting after a failed attempt, and how many later postbacks of its message wait
    behind it (a message's postbacks go in order)."""

    event_id: str
    subject_id: str
    code: str
    url: str
    state: str
    attempts: int
    last_error: str | None
    next_try: datetime
    """When it is due again (its lease's end while an attempt runs)."""
    created_at: datetime
    held: int


@dataclass(frozen=True, slots=True)
class AccountBacklog:
    """How an account's postbacks stand in the outbox: ``waiting`` (queued or being sent) since
    ``oldest``, of which ``retrying`` after a failed attempt and ``held`` behind an earlier postback of
    their message that failed; ``failed``, given up; and the failing ones themselves, oldest first."""

    account_id: str
    waiting: int = 0
    oldest: datetime | None = None
    retrying: int = 0
    held: int = 0
    failed: int = 0
    failing: tuple[FailingPostback, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """Which messages a console page lists: every filter is optional; ``before`` is the (created_at,
    tracking id) of the last message of the previous page."""

    state: str | None = None
    number: str | None = None
    """The recipient's or the sender's number."""
    account_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive."""
    before: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class KnownHandset:
    """A sandbox handset the console lists: its settings, what it holds, and when it was last active."""

    number: str
    behaviour: Behaviour
    delay: float
    received: int
    sent: int
    last_active: datetime


@dataclass(frozen=True, slots=True)
class ConsoleUpload:
    """A file uploaded in the console for a test send; its bytes are in the blob store."""

    token_hash: str
    sha256: str
    content_type: str
    name: str
    size: int
    created_at: datetime
    expires_at: datetime


UPLOADS_PATH = "/console/uploads/"
"""Where the console serves files uploaded for a test send: ``UPLOADS_PATH + token``."""


def upload_token_hash(token: str) -> str:
    """How an upload's token is stored: it is 192 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
