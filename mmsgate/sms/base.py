"""The SMS connector interface: how a fallback SMS leaves the gateway, and how receipts and inbound SMS
come back.

Shaped like the Carrier interface (:mod:`mmsgate.carriers.base`): ``submit`` one SMS (every segment of
it), ``start`` with an :class:`SmsSink` to hand receipts and inbound SMS to the core, ``aclose``.
Failures are :class:`mmsgate.errors.CarrierError`s: :class:`~mmsgate.errors.CarrierBusy` when the SMSC
throttles or is unreachable and certainly did not take the SMS (try again later),
:class:`~mmsgate.errors.CarrierRejected` when it refused the SMS for good, a plain ``CarrierError``
with ``definite=False`` when it may or may not have taken it (a response that never came).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Sms:
    """One SMS to send: the connector encodes and splits ``text`` itself (see :mod:`mmsgate.carriers.smpp.encoding`)."""

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
    :func:`normalise_id`."""

    message_ids: tuple[str, ...]


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


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An SMS a handset sent (MO), reassembled when it came in segments."""

    connector: str
    sender: str
    recipient: str
    text: str


class SmsSink(Protocol):
    """The core's side: connectors hand it what they receive. Both return once it is stored."""

    async def sms_receipt(self, receipt: SmsReceipt) -> None: ...

    async def sms_inbound(self, message: InboundSms) -> None: ...


class SmsConnector(abc.ABC):
    """Sends SMS over one SMSC connection (or to the sandbox's virtual handsets)."""

    #: the connection's name, stored with each segment it took
    name: str = ""

    async def start(self, sink: SmsSink) -> None:  # noqa: B027 - the default receives nothing
        """Connect and begin receiving receipts and inbound SMS."""

    #: whether :meth:`reconcile` can tell if an SMS was sent (SMPP cannot ask an SMSC)
    reconciles: bool = False

    @abc.abstractmethod
    async def submit(self, sms: Sms) -> SmsSubmitResult:
        """Send every segment of the SMS, asking for a delivery receipt."""

    async def reconcile(self, sms: Sms) -> SmsSubmitResult | None:
        """After a crash between a submit and its record (only where :attr:`reconciles`): the result if
        the SMS was sent, None if it certainly was not."""
        raise NotImplementedError(f"{type(self).__name__} cannot tell whether an SMS was sent")

    async def aclose(self) -> None:  # noqa: B027 - the default holds nothing
        """Unbind and release connections."""


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
