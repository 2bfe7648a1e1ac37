"""The MM7 records the codec builds from and parses into: content parts, typed addresses, the answers to a
SubmitReq (:class:`SubmitRsp`, :class:`Mm7Fault`), the requests an MMSC sends the gateway (:class:`DeliverReq`,
:class:`DeliveryReportReq`, :class:`ReadReplyReq`, :class:`OtherReq`), and :class:`Mm7ParseError`, raised
for anything that cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from mmsgate.carriers.mm7.status import Mm7Status
from mmsgate.errors import MmsgateError


class Mm7ParseError(MmsgateError, ValueError):
    """An MM7 body (or its Content-Type) could not be read as the message it should be."""


@dataclass(frozen=True, slots=True)
class Mm7Part:
    """One MIME part of an MM's content. ``content_type`` is the header as sent (parameters included);
    ``content_id`` is without ``<>``."""

    content_type: str
    data: bytes
    content_id: str | None
    location: str | None


AddressKind = Literal["Number", "ShortCode", "RFC2822Address"]


class Address(NamedTuple):
    """An address for the builders that take typed addresses (a plain str is a ``Number``, or an
    ``RFC2822Address`` if it holds ``@``)."""

    value: str
    kind: AddressKind = "Number"
    display_only: bool = False


@dataclass(frozen=True, slots=True)
class SubmitRsp:
    transaction_id: str | None
    version: str | None
    """The MM7 namespace version seen (``REL-6-MM7-1-4``), None if the element had no MM7 namespace."""
    status: Mm7Status
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Mm7Fault:
    """A SOAP Fault. ``fault_code`` is the local part of the faultcode QName (``Client``, ``Server``, ...);
    ``status`` is the Status of the RSErrorRsp / VASPErrorRsp in its detail, if there is one."""

    transaction_id: str | None
    fault_code: str
    fault_string: str
    status: Mm7Status | None


@dataclass(frozen=True, slots=True)
class DeliverReq:
    """An MO: an MMS a handset sent, relayed by the MMSC."""

    transaction_id: str | None
    version: str | None
    mm7_version: str | None
    relay_server_id: str | None
    linked_id: str | None
    sender: str
    recipients: tuple[str, ...]
    """To, then Cc, then Bcc, each in document order."""
    subject: str | None
    timestamp: datetime | None
    parts: tuple[Mm7Part, ...]
    """Every part of the content in order, SMIL included."""


@dataclass(frozen=True, slots=True)
class DeliveryReportReq:
    transaction_id: str | None
    version: str | None
    mm7_version: str | None
    message_id: str
    recipient: str | None
    sender: str | None
    date: datetime | None
    mm_status: str
    status_text: str | None


@dataclass(frozen=True, slots=True)
class ReadReplyReq:
    transaction_id: str | None
    version: str | None
    mm7_version: str | None
    message_id: str
    recipient: str | None
    sender: str | None
    timestamp: datetime | None
    mm_status: str
    status_text: str | None = None


@dataclass(frozen=True, slots=True)
class OtherReq:
    """A request the gateway does not handle (CancelReq, ReplaceReq, ...): answer it 4003."""

    transaction_id: str | None
    version: str | None
    name: str
