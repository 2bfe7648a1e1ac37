"""The Carrier interface: how a composed MMS leaves the gateway, and how reports and inbound MMS come in.

A carrier is a small class in the shape of an httpx transport: ``submit`` one MMS, ``reconcile`` one
whose submit may or may not have happened (a crash between the call and its record), ``start`` with
a :class:`CarrierSink` to hand delivery reports and inbound messages to the core, and ``aclose``.
Failures are :class:`mmsgate.errors.CarrierError`s that say whether they are retryable and whether the
carrier certainly did not take the message.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Protocol

from mmsgate.core.compose import Mms


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The carrier took the message and knows it by ``carrier_message_id``."""

    carrier_message_id: str


class ReportStatus(enum.StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a carrier says became of a message it took."""

    carrier: str
    carrier_message_id: str
    status: ReportStatus
    details: str
    extra: dict[str, str] = field(default_factory=dict)
    """Additive postback fields the carrier knows, such as ``operator-id`` or ``handset``."""
    submission_id: str | None = None
    """The gateway's submission id (the tracking id), for carriers that report with it."""
    code: str | None = None
    """The carrier's own status (MM7 ``MMStatus``), matched against the statuses that mean "cannot take MMS"."""
    carried_by: tuple[int, str] | None = None
    """(job id, lease owner) of the job that carries the report, ended by the write that records it."""


@dataclass(frozen=True, slots=True)
class InboundFile:
    """One part of an MMS a handset sent."""

    content_type: str
    data: bytes
    name: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMms:
    """An MMS a handset sent (MO): to one of an account's numbers, perhaps copied to others."""

    carrier: str
    sender: str
    recipients: tuple[str, ...]
    subject: str | None
    files: tuple[InboundFile, ...]
    operator_id: str | None = None
    linked_id: str | None = None
    """The MMSC's LinkedID (MM7), kept with the message so that a reply can refer to it."""


class InboundSink(Protocol):
    async def receive(self, message: InboundMms) -> str:
        """Store an inbound MMS and queue its postback; returns its tracking id."""
        ...


class CarrierSink(InboundSink, Protocol):
    """The core's side: carriers hand it what they receive."""

    async def report(self, report: DeliveryReport) -> bool:
        """Record the report; True when that write also ended the job that ``report.carried_by`` names."""
        ...


class Carrier(abc.ABC):
    """Delivers composed MMS to one carrier connection."""

    #: the registry key, also stored with each message the carrier took
    name: str = ""

    async def start(self, sink: CarrierSink) -> None:  # noqa: B027 - most carriers need nothing
        """Begin receiving reports and inbound messages (servers, polls); the default receives nothing."""

    @abc.abstractmethod
    async def submit(self, mms: Mms) -> SubmitResult:
        """Hand the MMS over. ``mms.tracking_id`` identifies the submission: a carrier that can, uses it
        to recognise a repeat."""

    @abc.abstractmethod
    async def reconcile(self, mms: Mms) -> SubmitResult | None:
        """After a crash between a submit and its record: the result if the carrier has the message,
        None if it certainly has not (the gateway then submits it)."""

    async def aclose(self) -> None:  # noqa: B027 - most carriers hold nothing
        """Release connections."""
