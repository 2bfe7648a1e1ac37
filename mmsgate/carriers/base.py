"""What a carrier plug-in implements, and what the gateway hands it to send what it receives.

Two interfaces in the shape of an httpx transport: a :class:`Carrier` delivers composed MMS (``submit`` one,
``reconcile`` one whose submit may or may not have happened, ``start`` with a sink, ``aclose``); an
:class:`SmsConnector` sends fallback SMS the same way. Failures are :class:`mmsgate.errors.CarrierError`s
that say whether they are retryable and whether the carrier certainly did not take the message:
:class:`~mmsgate.errors.CarrierBusy` (throttled or unreachable, certainly not taken: try again later),
:class:`~mmsgate.errors.CarrierRejected` (refused for good), a plain ``CarrierError`` with
``definite=False`` when it may or may not have taken it (an answer that never came).

What comes back from a carrier (delivery reports, inbound MMS, SMS receipts and inbound SMS) goes straight
to the delivery engine's sink (:class:`CarrierSink`, :class:`SmsSink`); a carrier never writes the store.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mmsgate.core.mms import Mms
from mmsgate.core.model import JobEffect
from mmsgate.core.records import SmsReceipt

# MMS ----------------------------------------------------------------------------------------------


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
    carried_by: JobEffect | None = None
    """The job that carries the report, ended by the write that records it."""


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


@dataclass(frozen=True, slots=True)
class KeptRequest:
    """A request a carrier posted, kept before it was answered."""

    kind: str
    body: bytes
    content_type: str


class InboundSink(Protocol):
    """What comes in from handsets and carriers, taken on the edge (an API process has this much)."""

    async def receive(self, message: InboundMms) -> str:
        """Store an inbound MMS and queue its postback; returns its tracking id. Raises
        :class:`mmsgate.errors.InboundRefused` for an MMS the gateway cannot take."""
        ...

    async def keep_request(self, connection: str, dedupe: str, kind: str, body: bytes, content_type: str) -> bool:
        """Keep a request a carrier posted, with the job that handles it, before it is answered; False
        (nothing done) when the connection's request ``dedupe`` came before."""
        ...

    async def kept_request(self, connection: str, dedupe: str) -> KeptRequest: ...


class CarrierSink(InboundSink, Protocol):
    """The delivery engine's side: carriers hand it what they receive."""

    async def report(self, report: DeliveryReport) -> bool:
        """Record the report; True when that write also ended the job that ``report.carried_by`` names."""
        ...

    async def note(self, carrier: str, carrier_message_id: str, status: str, details: str) -> None:
        """An event on the message a carrier knows by ``carrier_message_id`` that changes nothing else
        (a read reply, a report that says "still trying"); logged when no message is known by that id."""
        ...


class Carrier(abc.ABC):
    """Delivers composed MMS to one carrier connection."""

    #: the connection's name, also stored with each message the carrier took
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


# SMS ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sms:
    """One SMS to send: the connector encodes and splits ``text`` itself."""

    tracking_id: str
    """The message's tracking id: names the submission in logs and lets a connector spot a repeat."""
    sender: str
    """Source address: digits of a number or a short code, or an alphanumeric sender."""
    to: str
    """Destination, the digits of an international number (no ``+``), as messages store it."""
    text: str
    expires_at: datetime | None = None
    """When the SMSC may give up (SMPP validity_period); None: the SMSC's default."""


@dataclass(frozen=True, slots=True)
class SmsSubmitResult:
    """The SMSC took every segment; it knows each by one id, in segment order, normalised by
    :func:`mmsgate.core.records.normalise_id`."""

    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An SMS a handset sent (MO), reassembled when it came in segments."""

    connector: str
    sender: str
    recipient: str
    text: str


class SmsSink(Protocol):
    """The delivery engine's side: connectors hand it what they receive. Both return once it is stored."""

    async def sms_receipt(self, receipt: SmsReceipt) -> None: ...

    async def sms_inbound(self, message: InboundSms) -> None: ...


class SmsConnector(abc.ABC):
    """Sends SMS over one SMSC connection (or to the sandbox's virtual handsets)."""

    #: the connection's name, stored with each segment it took
    name: str = ""

    #: whether :meth:`reconcile` can tell if an SMS was sent (SMPP cannot ask an SMSC)
    reconciles: bool = False

    async def start(self, sink: SmsSink) -> None:  # noqa: B027 - the default receives nothing
        """Connect and begin receiving receipts and inbound SMS."""

    @abc.abstractmethod
    async def submit(self, sms: Sms) -> SmsSubmitResult:
        """Send every segment of the SMS, asking for a delivery receipt."""

    async def reconcile(self, sms: Sms) -> SmsSubmitResult | None:
        """After a crash between a submit and its record (only where :attr:`reconciles`): the result if
        the SMS was sent, None if it certainly was not."""
        raise NotImplementedError(f"{type(self).__name__} cannot tell whether an SMS was sent")

    async def aclose(self) -> None:  # noqa: B027 - the default holds nothing
        """Unbind and release connections."""
