"""The MM7 codec: build and parse the SOAP 1.1 bodies (with their MIME attachments) of 3GPP TS 23.140.

Pure: bytes and values in, bytes and values out; no I/O, no clock.

Building is strict: elements in XSD sequence order, the MM7 namespace declared as the default namespace of the
Body's element (or bound to a prefix the carrier asks for), ``TransactionID`` in the SOAP Header with
``env:mustUnderstand="1"``, CRLF line ends, ``multipart/related; type="text/xml"; start="<...>"`` around the
SOAP part and the content. MIME is written by hand rather than by ``email.generator``: the generator rewrites
line ends inside binary payloads, which would corrupt ``Content-Transfer-Encoding: binary`` media.

Parsing is lenient, the way MMSCs in the field need it (as Mbuni is): elements are matched by local name, so
any MM7 namespace version, any prefix or no namespace at all is accepted; ``href`` with or without ``cid:``;
Content-IDs with or without ``<>``; no ``start`` (the first text/xml part is the SOAP part); content that is
multipart/related, multipart/mixed or flat; base64, quoted-printable or binary transfer encodings; a body
that is bare XML whatever its Content-Type says. XML is parsed with entity resolution, DTD loading and network
access off, and a document with a DTD is refused (SOAP 1.1 forbids them), so entity bombs cost nothing.
Anything that cannot be read raises :class:`Mm7ParseError` saying why.
"""

from __future__ import annotations

import base64
import enum
import re
import secrets
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any, Literal, NamedTuple

from lxml import etree  # lxml ships no type information

from mmsgate.core.compose import SMIL_CONTENT_ID, SMIL_CONTENT_TYPE, MmsPart
from mmsgate.errors import MmsgateError

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MM7_NS_BASE = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"

VERSIONS: dict[str, str] = {
    "REL-5-MM7-1-0": "5.3.0",
    "REL-5-MM7-1-1": "5.3.0",
    "REL-5-MM7-1-2": "5.3.0",
    "REL-5-MM7-1-3": "5.3.0",
    "REL-5-MM7-1-4": "5.3.0",
    "REL-5-MM7-1-5": "5.3.0",
    "REL-6-MM7-1-0": "6.8.0",
    "REL-6-MM7-1-1": "6.8.0",
    "REL-6-MM7-1-2": "6.8.0",
    "REL-6-MM7-1-3": "6.8.0",
    "REL-6-MM7-1-4": "6.8.0",
}
"""Namespace version (the last segment of the MM7 namespace URI) → the ``MM7Version`` sent with it."""

DEFAULT_VERSION = "REL-6-MM7-1-4"

SOAP_START = "soap-start"
"""Content-ID of the SOAP part of a request the gateway builds (the ``start`` of the outer multipart)."""
CONTENT_START = "mms-content"
"""Content-ID of the MM content part of a request the gateway builds (``Content@href`` is ``cid:`` this)."""


def namespace(version: str) -> str:
    """The MM7 namespace URI of a namespace version such as ``REL-6-MM7-1-4``."""
    if version not in VERSIONS:
        raise ValueError(f"unknown MM7 namespace version {version!r}; known: {', '.join(VERSIONS)}")
    return MM7_NS_BASE + version


class Mm7ParseError(MmsgateError, ValueError):
    """An MM7 body (or its Content-Type) could not be read as the message it should be."""


# ------------------------------------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True)
class Mm7Status:
    """An MM7 ``Status`` block: ``StatusCode``, ``StatusText`` and the optional ``Details``."""

    code: int
    text: str
    details: str | None = None


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    PERMANENT = "permanent"
    """Do not send the same request again: it will fail the same way."""
    RETRYABLE = "retryable"
    """A server or service problem: the same request may succeed later (retry with back-off)."""
    THROTTLED = "throttled"
    """The carrier asks the gateway to slow down: retry later, and send less meanwhile."""


_STATUS_TEXT: dict[int, str] = {
    # 3GPP TS 23.140 (the table Mbuni and every MM7 stack carry)
    1000: "Success",
    1100: "Partial success",
    2000: "Client error",
    2001: "Operation restricted",
    2002: "Address Error",
    2003: "Address Not Found",
    2004: "Multimedia content refused",
    2005: "Message ID Not found",
    2006: "LinkedID not found",
    2007: "Message format corrupt",
    2008: "Application ID not found",
    2009: "Reply Application ID not found",
    3000: "Server Error",
    3001: "Not Possible",
    3002: "Message rejected",
    3003: "Multiple addresses not supported",
    3004: "Application Addressing not supported",
    3005: "Command rejected",
    4000: "General service error",
    4001: "Improper identification",
    4002: "Unsupported version",
    4003: "Unsupported operation",
    4004: "Validation error",
    4005: "Service error",
    4006: "Service unavailable",
    4007: "Service denied",
    4008: "Application denied",
    # Sinch / Skycore additions (their MMS status code tables)
    2400: "Content length exceeded maximum supported request size",
    2404: "Invalid VASPID",
    2408: "Unable to authenticate",
    2505: "Missing or unsupported MM7 Version",
    2507: "Unsupported namespace",
    2510: "Missing or Invalid SOAP header",
    2571: "Group message has no recipient that is not displayOnly",
    2572: "Group message has more than one recipient that is not displayOnly",
    3100: "Throughput exceeded",
    3500: "Timeout",
}

_CLASS_TEXT = {1: "Success", 2: "Client error", 3: "Server Error", 4: "General service error"}

_RETRYABLE = frozenset({3000, 3500, 4000, 4006})
_THROTTLED = frozenset({3100})
_PERMANENT_SERVER = frozenset({3001, 3002, 3003, 3004, 3005, 4001, 4002, 4003, 4004, 4005, 4007, 4008})


def classify(code: int) -> Outcome:
    """What an MM7 ``StatusCode`` means for the request that got it.

    =================================  ===========  ==========================================================
    code                               outcome      why
    =================================  ===========  ==========================================================
    1000 Success, 1100 Partial         SUCCESS      accepted (for a submit: accepted, not yet delivered)
    any other 1xxx                     SUCCESS      the success class
    2000-2009 (TS 23.140)              PERMANENT    client errors: the request itself is wrong
    any other 2xxx (Sinch 2400, 2404,  PERMANENT    carrier-specific client errors (size, credentials,
    2408, 2505, 2507, 2510, 2571/2)                 version, namespace, header, group rules)
    3000 Server Error                  RETRYABLE    a server failure; the same request may succeed later
    3001 Not Possible                  PERMANENT    the MMSC cannot do it (Skycore: number blacklisted)
    3002 Message rejected              PERMANENT    the MMSC refused this message
    3003 Multiple addresses            PERMANENT    needs a different request (one per recipient)
    3004 Application Addressing        PERMANENT    needs a different request
    3005 Command rejected              PERMANENT    the MMSC refused this command
    3100 Throughput exceeded (Sinch)   THROTTLED    "retry later": slow down and retry
    3500 Timeout (Sinch)               RETRYABLE    the carrier's gateway timed out
    any other 3xxx                     RETRYABLE    its class: like 3000, a server error
    4000 General service error         RETRYABLE    a service failure that may pass
    4001 Improper identification       PERMANENT    credentials / VASPID wrong: fix the configuration
    4002 Unsupported version           PERMANENT    configuration: another MM7 version is needed
    4003 Unsupported operation         PERMANENT    the MMSC does not do this operation
    4004 Validation error              PERMANENT    the request does not validate
    4005 Service error                 PERMANENT    TS 23.140: "should not be resent"
    4006 Service unavailable           RETRYABLE    temporarily unavailable (busy, capacity)
    4007 Service denied                PERMANENT    not allowed for this client or address
    4008 Application denied            PERMANENT    not allowed for this application
    any other 4xxx                     RETRYABLE    its class: like 4000, a general service error
    anything outside 1000-4999         PERMANENT    no class to go by; nothing says waiting would help
    =================================  ===========  ==========================================================
    """
    if code in _THROTTLED:
        return Outcome.THROTTLED
    if code in _RETRYABLE:
        return Outcome.RETRYABLE
    if code in _PERMANENT_SERVER:
        return Outcome.PERMANENT
    match code // 1000 if 1000 <= code <= 4999 else 0:
        case 1:
            return Outcome.SUCCESS
        case 3 | 4:
            return Outcome.RETRYABLE
        case _:
            return Outcome.PERMANENT


def status_text(code: int) -> str:
    """The standard (or carrier) name of a status code; an unknown code gets its class's name."""
    known = _STATUS_TEXT.get(code)
    if known is not None:
        return known
    return _CLASS_TEXT.get(code // 1000, "Unknown status") if 1000 <= code <= 4999 else "Unknown status"


# ------------------------------------------------------------------------------------------------- values


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
class SubmitReq:
    transaction_id: str | None
    version: str | None
    mm7_version: str | None
    vasp_id: str | None
    vas_id: str | None
    sender: str | None
    recipients: tuple[str, ...]
    subject: str | None
    expiry: datetime | None
    """In UTC; None when absent or relative (``P1D``: resolving it needs a clock)."""
    delivery_report: bool | None
    linked_id: str | None
    smil: str | None
    parts: tuple[Mm7Part, ...]
    """The content parts other than the SMIL."""
    allow_adaptations: bool | None = None


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


# ------------------------------------------------------------------------------------------------- building

_CRLF = b"\r\n"
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TOKEN_ID = re.compile(r"[!-;=?-~]+")  # printable ASCII without space, '<' and '>'


def _xml_safe(text: str) -> str:
    """Text without the characters XML 1.0 cannot carry (C0 controls, lone surrogates, U+FFFE/FFFF)."""
    return _XML_INVALID.sub("", text)


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC to the second; a naive datetime is taken to be UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bool(value: bool) -> str:
    return "true" if value else "false"


class _Doc:
    """A SOAP envelope under construction, its MM7 elements in one namespace (default or prefixed)."""

    def __init__(self, version: str, prefix: str | None, transaction_id: str | None) -> None:
        self.ns = namespace(version)
        self.mm7_version = VERSIONS[version]
        self.nsmap = {prefix: self.ns}
        self.root = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"env": SOAP_ENV_NS})
        if transaction_id is not None:
            header = etree.SubElement(self.root, f"{{{SOAP_ENV_NS}}}Header")
            tid = etree.SubElement(
                header, f"{{{self.ns}}}TransactionID", {f"{{{SOAP_ENV_NS}}}mustUnderstand": "1"}, nsmap=self.nsmap
            )
            tid.text = transaction_id
        self.body = etree.SubElement(self.root, f"{{{SOAP_ENV_NS}}}Body")

    def message(self, name: str, parent: Any = None) -> Any:
        """The MM7 message element (declaring the namespace) with its MM7Version."""
        element = etree.SubElement(self.body if parent is None else parent, f"{{{self.ns}}}{name}", nsmap=self.nsmap)
        self.add(element, "MM7Version", self.mm7_version)
        return element

    def add(self, parent: Any, name: str, text: str | None = None, **attrib: str) -> Any:
        element = etree.SubElement(parent, f"{{{self.ns}}}{name}", attrib)
        if text is not None:
            element.text = text
        return element

    def address(self, parent: Any, name: str, address: str | Address) -> None:
        """``<name><Number|ShortCode|RFC2822Address>…</…></name>``; a Number goes without a leading ``+``."""
        if isinstance(address, str):
            address = Address(address, "RFC2822Address" if "@" in address else "Number")
        value = address.value.removeprefix("+") if address.kind == "Number" else address.value
        attrib = {"displayOnly": "true"} if address.display_only else {}
        self.add(self.add(parent, name), address.kind, value, **attrib)

    def status(self, parent: Any, status: Mm7Status) -> None:
        block = self.add(parent, "Status")
        self.add(block, "StatusCode", str(status.code))
        self.add(block, "StatusText", _xml_safe(status.text) or status_text(status.code))
        if status.details:
            self.add(block, "Details", _xml_safe(status.details))

    def content(self, parent: Any, allow_adaptations: bool | None = None) -> None:
        attrib = {"href": f"cid:{CONTENT_START}"}
        if allow_adaptations is not None:
            attrib["allowAdaptations"] = _bool(allow_adaptations)
        self.add(parent, "Content", **attrib)

    def xml(self) -> bytes:
        return _XML_DECLARATION + bytes(etree.tostring(self.root, xml_declaration=False, encoding="UTF-8"))


def _header_value(value: str) -> str:
    if not value.isascii() or any(c in value for c in "\r\n\0"):
        raise ValueError(f"not usable in a MIME header: {value!r}")
    return value


def _entity(headers: Sequence[tuple[str, str]], data: bytes) -> bytes:
    head = b"".join(f"{name}: {_header_value(value)}".encode("ascii") + _CRLF for name, value in headers)
    return head + _CRLF + data


def _multipart(entities: Sequence[bytes]) -> tuple[str, bytes]:
    """(boundary, body) of a multipart holding the entities; the boundary occurs in none of them."""
    while True:
        # '=_' cannot occur in base64 or quoted-printable text, and the random part makes binary collisions
        # astronomically unlikely; the check makes them impossible
        boundary = f"=_mm7_{secrets.token_hex(12)}"
        marker = boundary.encode("ascii")
        if not any(marker in entity for entity in entities):
            break
    body = b"".join(b"--" + marker + _CRLF + entity + _CRLF for entity in entities)
    return boundary, body + b"--" + marker + b"--" + _CRLF


def _media(part: Mm7Part, binary: bool) -> bytes:
    headers = [("Content-Type", part.content_type)]
    if part.content_id is not None:
        if not _TOKEN_ID.fullmatch(part.content_id):
            raise ValueError(f"not usable as a Content-ID: {part.content_id!r}")
        headers.append(("Content-ID", f"<{part.content_id}>"))
    if part.location is not None:
        headers.append(("Content-Location", part.location))
    if binary:
        headers.append(("Content-Transfer-Encoding", "binary"))
        return _entity(headers, part.data)
    headers.append(("Content-Transfer-Encoding", "base64"))
    encoded = base64.b64encode(part.data)
    return _entity(headers, _CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76)))


def _content(smil: str | None, parts: Sequence[Mm7Part], binary: bool) -> tuple[str, bytes]:
    """(Content-Type, body) of the MM content: multipart/related led by the SMIL, or multipart/mixed without."""
    ids = [p.content_id for p in parts if p.content_id is not None]
    if smil is not None:
        ids.append(SMIL_CONTENT_ID)
    if len(ids) != len(set(ids)):
        raise ValueError(f"Content-IDs repeat in {ids}")
    entities = [_media(p, binary) for p in parts]
    if smil is None:
        boundary, body = _multipart(entities)
        return f'multipart/mixed; boundary="{boundary}"', body
    smil_part = Mm7Part(f"{SMIL_CONTENT_TYPE}; charset=utf-8", smil.encode(), SMIL_CONTENT_ID, None)
    boundary, body = _multipart([_media(smil_part, binary), *entities])
    return f'multipart/related; type="{SMIL_CONTENT_TYPE}"; start="<{SMIL_CONTENT_ID}>"; boundary="{boundary}"', body


def _with_content(xml: bytes, content_type: str, content: bytes) -> tuple[bytes, str]:
    soap = _entity(
        [
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-ID", f"<{SOAP_START}>"),
            ("Content-Transfer-Encoding", "binary"),
        ],
        xml,
    )
    mm = _entity([("Content-Type", content_type), ("Content-ID", f"<{CONTENT_START}>")], content)
    boundary, body = _multipart([soap, mm])
    return body, f'multipart/related; type="text/xml"; start="<{SOAP_START}>"; boundary="{boundary}"'


XML_CONTENT_TYPE = "text/xml; charset=utf-8"


def build_submit_req(
    *,
    transaction_id: str,
    version: str,
    vasp_id: str,
    vas_id: str,
    sender: str,
    sender_is_short_code: bool,
    recipient: str,
    subject: str | None,
    expiry: datetime | None,
    smil: str,
    parts: Sequence[tuple[MmsPart, bytes]],
    linked_id: str | None = None,
    delivery_report: bool = True,
    allow_adaptations: bool = True,
    binary: bool = False,
    prefix: str | None = None,
) -> tuple[bytes, str]:
    """(HTTP body, Content-Type) of a SubmitReq carrying the SMIL and the parts (each with its bytes).

    An empty ``vasp_id`` or ``vas_id`` is left out (Sinch can run without a VASID). Numbers go without a
    leading ``+``; a recipient holding ``@`` goes as an RFC2822Address. Subject characters XML cannot carry
    are dropped. ``prefix`` binds the MM7 namespace to a prefix (``mm7``) for MMSCs that want one.
    """
    doc = _Doc(version, prefix, transaction_id)
    req = doc.message("SubmitReq")
    ident = doc.add(req, "SenderIdentification")
    if vasp_id:
        doc.add(ident, "VASPID", vasp_id)
    if vas_id:
        doc.add(ident, "VASID", vas_id)
    doc.address(ident, "SenderAddress", Address(sender, "ShortCode" if sender_is_short_code else "Number"))
    doc.address(doc.add(req, "Recipients"), "To", recipient)
    if linked_id is not None:
        doc.add(req, "LinkedID", linked_id)
    if expiry is not None:
        doc.add(req, "ExpiryDate", _iso(expiry))
    doc.add(req, "DeliveryReport", _bool(delivery_report))
    if subject and (safe := _xml_safe(subject)):
        doc.add(req, "Subject", safe)
    doc.content(req, allow_adaptations)
    content_type, content = _content(
        smil, [Mm7Part(p.content_type, data, p.content_id, p.location) for p, data in parts], binary
    )
    return _with_content(doc.xml(), content_type, content)


def build_deliver_req(
    *,
    transaction_id: str,
    version: str,
    sender: str | Address,
    recipients: Sequence[str | Address],
    cc: Sequence[str | Address] = (),
    bcc: Sequence[str | Address] = (),
    relay_server_id: str | None = None,
    linked_id: str | None = None,
    timestamp: datetime | None = None,
    priority: str | None = None,
    subject: str | None = None,
    smil: str | None = None,
    parts: Sequence[Mm7Part] = (),
    binary: bool = False,
    prefix: str | None = None,
) -> tuple[bytes, str]:
    """(HTTP body, Content-Type) of a DeliverReq (an MO, as an MMSC sends it). With a SMIL the content is
    multipart/related led by it, without one multipart/mixed; with neither SMIL nor parts the body is bare XML."""
    doc = _Doc(version, prefix, transaction_id)
    req = doc.message("DeliverReq")
    if relay_server_id is not None:
        doc.add(req, "MMSRelayServerID", relay_server_id)
    if linked_id is not None:
        doc.add(req, "LinkedID", linked_id)
    doc.address(req, "Sender", sender)
    if recipients or cc or bcc:
        holder = doc.add(req, "Recipients")
        for name, group in (("To", recipients), ("Cc", cc), ("Bcc", bcc)):
            for address in group:
                doc.address(holder, name, address)
    if timestamp is not None:
        doc.add(req, "TimeStamp", _iso(timestamp))
    if priority is not None:
        doc.add(req, "Priority", priority)
    if subject and (safe := _xml_safe(subject)):
        doc.add(req, "Subject", safe)
    if smil is None and not parts:
        return doc.xml(), XML_CONTENT_TYPE
    doc.content(req, allow_adaptations=True)
    content_type, content = _content(smil, parts, binary)
    return _with_content(doc.xml(), content_type, content)


def build_delivery_report_req(
    *,
    transaction_id: str,
    version: str,
    message_id: str,
    recipient: str | Address,
    sender: str | Address,
    date: datetime,
    mm_status: str,
    status_text: str | None = None,
    relay_server_id: str | None = None,
    prefix: str | None = None,
) -> tuple[bytes, str]:
    """(HTTP body, Content-Type) of a DeliveryReportReq (bare XML, as an MMSC sends it)."""
    doc = _Doc(version, prefix, transaction_id)
    req = doc.message("DeliveryReportReq")
    return _report_req(doc, req, relay_server_id, message_id, recipient, sender, "Date", date, mm_status, status_text)


def build_read_reply_req(
    *,
    transaction_id: str,
    version: str,
    message_id: str,
    recipient: str | Address,
    sender: str | Address,
    timestamp: datetime,
    mm_status: str,
    status_text: str | None = None,
    relay_server_id: str | None = None,
    prefix: str | None = None,
) -> tuple[bytes, str]:
    """(HTTP body, Content-Type) of a ReadReplyReq (bare XML, as an MMSC sends it)."""
    doc = _Doc(version, prefix, transaction_id)
    req = doc.message("ReadReplyReq")
    return _report_req(
        doc, req, relay_server_id, message_id, recipient, sender, "TimeStamp", timestamp, mm_status, status_text
    )


def _report_req(
    doc: _Doc,
    req: Any,
    relay_server_id: str | None,
    message_id: str,
    recipient: str | Address,
    sender: str | Address,
    time_name: Literal["Date", "TimeStamp"],
    time: datetime,
    mm_status: str,
    status_text: str | None,
) -> tuple[bytes, str]:
    """(HTTP body, Content-Type) of a DeliveryReportReq or ReadReplyReq (``req`` in ``doc``): the same elements
    (taken in this order) but for the name of the time element."""
    if relay_server_id is not None:
        doc.add(req, "MMSRelayServerID", relay_server_id)
    doc.add(req, "MessageID", message_id)
    doc.address(req, "Recipient", recipient)
    doc.address(req, "Sender", sender)
    doc.add(req, time_name, _iso(time))
    doc.add(req, "MMStatus", mm_status)
    if status_text is not None:
        doc.add(req, "StatusText", _xml_safe(status_text))
    return doc.xml(), XML_CONTENT_TYPE


def build_response(
    name: Literal["DeliverRsp", "DeliveryReportRsp", "ReadReplyRsp", "SubmitRsp"],
    *,
    transaction_id: str,
    version: str,
    status: Mm7Status,
    message_id: str | None = None,
    prefix: str | None = None,
) -> bytes:
    """The text/xml body of a response: MM7Version, Status and, for a SubmitRsp, the MessageID."""
    if message_id is not None and name != "SubmitRsp":
        raise ValueError(f"{name} carries no MessageID")
    doc = _Doc(version, prefix, transaction_id)
    rsp = doc.message(name)
    doc.status(rsp, status)
    if message_id is not None:
        doc.add(rsp, "MessageID", message_id)
    return doc.xml()


def build_fault(
    *,
    transaction_id: str | None,
    version: str,
    status: Mm7Status,
    by_vasp: bool = True,
    prefix: str | None = None,
) -> bytes:
    """The text/xml body of a SOAP 1.1 Fault (sent with HTTP 500): faultcode ``env:Client`` for 2xxx and 4xxx
    codes, ``env:Server`` for the rest; its detail holds a VASPErrorRsp (``by_vasp``) or an RSErrorRsp."""
    doc = _Doc(version, prefix, transaction_id)
    fault = etree.SubElement(doc.body, f"{{{SOAP_ENV_NS}}}Fault")
    etree.SubElement(fault, "faultcode").text = "env:Client" if status.code // 1000 in (2, 4) else "env:Server"
    etree.SubElement(fault, "faultstring").text = _xml_safe(status.text) or status_text(status.code)
    detail = etree.SubElement(fault, "detail")
    doc.status(doc.message("VASPErrorRsp" if by_vasp else "RSErrorRsp", detail), status)
    return doc.xml()


# ------------------------------------------------------------------------------------------------- parsing

_XML_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
_XML_TYPES = frozenset({"text/xml", "application/xml", "application/soap+xml"})
_ADDRESS_KINDS = frozenset({"Number", "ShortCode", "RFC2822Address"})
_MAX_DEPTH = 4
_PARSE_FAILURES = (ValueError, TypeError, LookupError, AttributeError, RecursionError, etree.LxmlError)


@dataclass(frozen=True, slots=True)
class _Envelope:
    transaction_id: str | None
    version: str | None
    message: Any
    """The element in the SOAP Body."""
    attachments: tuple[Message, ...]
    """The top-level MIME parts other than the SOAP part."""


def _local(element: Any) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _children(element: Any) -> Iterator[Any]:
    return (child for child in element if isinstance(child.tag, str))


def _child(element: Any, name: str) -> Any:
    return next((child for child in _children(element) if _local(child) == name), None)


def _text(element: Any, name: str) -> str | None:
    """The stripped text of the first child called ``name``; None if it is missing or empty."""
    child = _child(element, name)
    if child is None:
        return None
    text = "".join(child.itertext()).strip()
    return text or None


def _raw_text(element: Any, name: str) -> str | None:
    """The text of the first child called ``name`` exactly as sent (subjects keep their spaces)."""
    child = _child(element, name)
    return None if child is None else "".join(child.itertext())


def _attribute(element: Any, name: str) -> str | None:
    for key, value in element.attrib.items():
        if key.rpartition("}")[2] == name:
            return str(value)
    return None


def _boolean(text: str | None) -> bool | None:
    match (text or "").strip().lower():
        case "true" | "1":
            return True
        case "false" | "0":
            return False
        case _:
            return None


def _datetime(text: str | None) -> datetime | None:
    """An absolute ISO 8601 time in UTC (a naive one taken as UTC); None if absent, relative or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _address_of(element: Any) -> str | None:
    value = "".join(element.itertext()).strip()
    if _local(element) == "Number":
        value = value.removeprefix("+")
    return value or None


def _addresses(holder: Any) -> list[str]:
    """The addresses in ``To``, ``Sender``, ...: typed children, or bare text as very old versions send it.
    A Number (or a bare ``+`` and digits) loses its leading ``+``."""
    typed = [child for child in _children(holder) if _local(child) in _ADDRESS_KINDS]
    if typed:
        return [a for a in map(_address_of, typed) if a is not None]
    text = (holder.text or "").strip()
    if text.startswith("+") and text[1:].isdigit():  # a bare number, as in a typed Number
        text = text[1:]
    return [text] if text else []


def _address(element: Any, name: str) -> str | None:
    holder = _child(element, name)
    found = [] if holder is None else _addresses(holder)
    return found[0] if found else None


def _recipients(element: Any) -> tuple[str, ...]:
    holder = _child(element, "Recipients")
    groups: dict[str, list[str]] = {"To": [], "Cc": [], "Bcc": []}
    for group in () if holder is None else _children(holder):
        bucket = groups.get(_local(group))
        if bucket is not None:
            bucket.extend(_addresses(group))
    return (*groups["To"], *groups["Cc"], *groups["Bcc"])


def _status(element: Any) -> Mm7Status | None:
    block = _child(element, "Status")
    if block is None:
        return None
    raw = _text(block, "StatusCode")
    try:
        code = int(raw or "")
    except ValueError:
        raise Mm7ParseError(f"StatusCode {raw!r} is not a number") from None
    return Mm7Status(code, _text(block, "StatusText") or status_text(code), _text(block, "Details"))


def _version_of(element: Any) -> str | None:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return None
    uri = tag[1 : tag.index("}")]
    marker = "23.140/schema/"
    at = uri.find(marker)
    if at < 0:
        return None
    return uri[at + len(marker) :].strip("/ ") or None


def _bare_id(value: str | None) -> str | None:
    """A Content-ID or start parameter without its angle brackets."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


def _header(part: Message, name: str) -> str | None:
    value = part.get(name)
    return None if value is None else " ".join(str(value).split())


def _content_type_header(content_type: str | None) -> Message | None:
    if content_type is None:
        return None
    holder = Message()
    holder["Content-Type"] = " ".join(content_type.split())  # unfolds, and keeps CR/LF from injecting headers
    return holder


def _boundary_from_body(body: bytes) -> str | None:
    """The boundary of a multipart body whose Content-Type did not say (its first line is ``--boundary``)."""
    first = body.split(b"\n", 1)[0].strip()
    if not first.startswith(b"--") or len(first) < 3 or len(first) > 72:
        return None
    try:
        boundary = first[2:].decode("ascii")
    except UnicodeDecodeError:
        return None
    return boundary if '"' not in boundary and "\\" not in boundary else None


def _is_xml(payload: bytes) -> bool:
    return payload.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        raise Mm7ParseError(f"a {part.get_content_type()} part has no readable body")
    return data


def _split(body: bytes, content_type: str | None) -> tuple[bytes, tuple[Message, ...]]:
    """(the SOAP XML, the other top-level parts) of an HTTP body."""
    if not body.strip():
        raise Mm7ParseError("the body is empty")
    if _is_xml(body):  # bare XML, whatever the Content-Type says (Skycore sends reports as 'multipart/related')
        return body, ()
    header = _content_type_header(content_type)
    start: str | None = None
    boundary: str | None = None
    if header is not None and header.get_content_maintype() == "multipart":
        start = _bare_id(_param(header, "start"))
        boundary = _param(header, "boundary")
    # the declared boundary, else (none declared, or it is not in the body) the one the body starts with
    boundaries = [b for b in dict.fromkeys((boundary, _boundary_from_body(body))) if b]
    if not boundaries:
        raise Mm7ParseError(f"the body is neither XML nor MIME multipart (Content-Type {content_type!r})")
    parts: tuple[Message, ...] = ()
    for boundary in boundaries:
        envelope = b'Content-Type: multipart/related; boundary="' + boundary.encode("ascii", "replace") + b'"\r\n\r\n'
        # compat32 hands back header values as sent (the email policies re-render them, quoting parameters)
        parts = tuple(_subparts(BytesParser(policy=policy.compat32).parsebytes(envelope + body)))
        if parts:
            break
    else:
        raise Mm7ParseError(f"no MIME part found with boundary {' or '.join(map(repr, boundaries))}")
    soap = _soap_part(parts, start)
    return _payload(soap), tuple(p for p in parts if p is not soap)


def _param(header: Message, name: str) -> str | None:
    value = header.get_param(name)
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        value = value[2]
    return None if value is None else str(value)


def _soap_part(parts: Sequence[Message], start: str | None) -> Message:
    if start is not None:
        for part in parts:
            if _bare_id(_header(part, "Content-ID")) == start:
                return part
    for part in parts:
        if part.get_content_type() in _XML_TYPES:
            return part
    for part in parts:
        if not part.is_multipart() and _is_xml(_payload(part)):
            return part
    raise Mm7ParseError("no SOAP part: nothing matches the start parameter and no part is XML")


def _xml(data: bytes) -> Any:
    data = data.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
    try:
        root = etree.fromstring(data, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise Mm7ParseError(f"the SOAP part is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise Mm7ParseError("the SOAP part has a document type declaration, which SOAP forbids")
    return root


def _envelope(body: bytes, content_type: str | None) -> _Envelope:
    try:
        xml, attachments = _split(body, content_type)
        root = _xml(xml)
    except Mm7ParseError:
        raise
    except _PARSE_FAILURES as exc:
        raise Mm7ParseError(f"unreadable MM7 body: {exc.__class__.__name__}: {exc}") from exc
    if _local(root) != "Envelope":
        raise Mm7ParseError(f"the XML root is {_local(root) or root.tag!r}, not a SOAP Envelope")
    body_element = _child(root, "Body")
    if body_element is None:
        raise Mm7ParseError("the SOAP Envelope has no Body")
    message = next(_children(body_element), None)
    if message is None:
        raise Mm7ParseError("the SOAP Body is empty")
    header = _child(root, "Header")
    transaction = None
    if header is not None:
        transaction = next((e for e in header.iter() if _local(e) == "TransactionID"), None)
    transaction_id = None if transaction is None else ("".join(transaction.itertext()).strip() or None)
    version = _version_of(message) or (None if transaction is None else _version_of(transaction))
    return _Envelope(transaction_id, version, message, attachments)


def _subparts(part: Message) -> list[Message]:
    payload = part.get_payload() if part.is_multipart() else None
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _leaves(part: Message, depth: int = 0) -> list[Message]:
    if not part.is_multipart():
        return [part]
    if depth >= _MAX_DEPTH:
        raise Mm7ParseError("the content is nested too deeply")
    return [leaf for sub in _subparts(part) for leaf in _leaves(sub, depth + 1)]


def _mm7_part(part: Message) -> Mm7Part:
    return Mm7Part(
        content_type=_header(part, "Content-Type") or "text/plain",
        data=_payload(part),
        content_id=_bare_id(_header(part, "Content-ID")),
        location=_header(part, "Content-Location"),
    )


def _href_candidates(href: str) -> set[str]:
    href = href.strip()
    ids = {href, urllib.parse.unquote(href)}
    ids |= {i[4:] for i in ids if i[:4].lower() == "cid:"}
    return {b for i in ids if (b := _bare_id(i)) is not None}


def _content_entity(envelope: _Envelope) -> list[Message]:
    """The parts holding the MM: the one ``Content@href`` names (by Content-ID, else Content-Location); failing
    that, whatever was attached besides the SOAP part."""
    attachments = envelope.attachments
    content = _child(envelope.message, "Content")
    href = None if content is None else _attribute(content, "href")
    if href:
        wanted = _href_candidates(href)
        for header in ("Content-ID", "Content-Location"):
            for part in attachments:
                if _bare_id(_header(part, header)) in wanted:
                    return [part]
    return list(attachments)


def _content_parts(envelope: _Envelope) -> tuple[list[Mm7Part], str | None]:
    """(every content part in order, the Content-ID of the SMIL start part if the content names one)."""
    entities = _content_entity(envelope)
    start = None
    if len(entities) == 1 and entities[0].get_content_maintype() == "multipart":
        start = _bare_id(_param(entities[0], "start"))
    try:
        return [_mm7_part(leaf) for entity in entities for leaf in _leaves(entity)], start
    except Mm7ParseError:
        raise
    except _PARSE_FAILURES as exc:
        raise Mm7ParseError(f"unreadable MM content: {exc.__class__.__name__}: {exc}") from exc


def _is_smil(part: Mm7Part) -> bool:
    return part.content_type.split(";", 1)[0].strip().lower() == SMIL_CONTENT_TYPE


def _decode_text(part: Mm7Part) -> str:
    holder = _content_type_header(part.content_type)
    charset = (None if holder is None else _param(holder, "charset")) or "utf-8"
    try:
        return part.data.decode(charset, "replace")
    except LookupError:
        return part.data.decode("utf-8", "replace")


def _expect(envelope: _Envelope, *names: str) -> None:
    if _local(envelope.message) not in names:
        raise Mm7ParseError(f"expected {' or '.join(names)}, got {_local(envelope.message)!r}")


def _fault(envelope: _Envelope) -> Mm7Fault:
    fault = envelope.message
    if _local(fault) != "Fault":  # an RSErrorRsp straight in the Body, as some MMSCs answer
        status = _status(fault)
        return Mm7Fault(envelope.transaction_id, "", status.text if status else _local(fault), status)
    code = (_text(fault, "faultcode") or "").rpartition(":")[2]
    detail = _child(fault, "detail")
    status = None
    if detail is not None:
        holder = next((e for e in detail.iter() if _local(e) == "Status"), None)
        status = None if holder is None else _status(holder.getparent())
    return Mm7Fault(envelope.transaction_id, code, _text(fault, "faultstring") or "", status)


def parse_submit_response(body: bytes, content_type: str | None) -> SubmitRsp | Mm7Fault:
    """What an MMSC answered a SubmitReq: a SubmitRsp, or a Fault (also an RSErrorRsp sent without one)."""
    envelope = _envelope(body, content_type)
    _expect(envelope, "SubmitRsp", "Fault", "RSErrorRsp", "VASPErrorRsp")
    if _local(envelope.message) != "SubmitRsp":
        return _fault(envelope)
    status = _status(envelope.message)
    if status is None:
        raise Mm7ParseError("the SubmitRsp has no Status")
    return SubmitRsp(envelope.transaction_id, envelope.version, status, _text(envelope.message, "MessageID"))


def parse_submit_req(body: bytes, content_type: str | None) -> SubmitReq:
    """A SubmitReq as an MMSC reads it (for round trips, tests and fake MMSCs)."""
    envelope = _envelope(body, content_type)
    _expect(envelope, "SubmitReq")
    req = envelope.message
    ident = _child(req, "SenderIdentification")
    parts, start = _content_parts(envelope)
    smil_part = next((p for p in parts if start is not None and p.content_id == start), None)
    if smil_part is None:
        smil_part = next((p for p in parts if _is_smil(p)), None)
    content = _child(req, "Content")
    return SubmitReq(
        transaction_id=envelope.transaction_id,
        version=envelope.version,
        mm7_version=_text(req, "MM7Version"),
        vasp_id=None if ident is None else _text(ident, "VASPID"),
        vas_id=None if ident is None else _text(ident, "VASID"),
        sender=None if ident is None else _address(ident, "SenderAddress"),
        recipients=_recipients(req),
        subject=_raw_text(req, "Subject"),
        expiry=_datetime(_text(req, "ExpiryDate")),
        delivery_report=_boolean(_text(req, "DeliveryReport")),
        linked_id=_text(req, "LinkedID"),
        smil=None if smil_part is None else _decode_text(smil_part),
        parts=tuple(p for p in parts if p is not smil_part),
        allow_adaptations=None if content is None else _boolean(_attribute(content, "allowAdaptations")),
    )


def parse_request(body: bytes, content_type: str | None) -> DeliverReq | DeliveryReportReq | ReadReplyReq | OtherReq:
    """A request an MMSC sent the gateway; any operation the gateway does not handle comes back as OtherReq."""
    envelope = _envelope(body, content_type)
    req = envelope.message
    name = _local(req)
    common = (envelope.transaction_id, envelope.version, _text(req, "MM7Version"))
    if name == "DeliverReq":
        sender = _address(req, "Sender")
        if sender is None:
            raise Mm7ParseError("the DeliverReq has no Sender")
        parts, _ = _content_parts(envelope)
        return DeliverReq(
            *common,
            relay_server_id=_text(req, "MMSRelayServerID"),
            linked_id=_text(req, "LinkedID"),
            sender=sender,
            recipients=_recipients(req),
            subject=_raw_text(req, "Subject"),
            timestamp=_datetime(_text(req, "TimeStamp")),
            parts=tuple(parts),
        )
    if name in ("DeliveryReportReq", "ReadReplyReq"):
        message_id = _text(req, "MessageID")
        mm_status = _text(req, "MMStatus")
        if message_id is None or mm_status is None:
            raise Mm7ParseError(f"the {name} lacks its MessageID or MMStatus")
        recipient, sender = _address(req, "Recipient"), _address(req, "Sender")
        if name == "DeliveryReportReq":
            return DeliveryReportReq(
                *common,
                message_id=message_id,
                recipient=recipient,
                sender=sender,
                date=_datetime(_text(req, "Date")),
                mm_status=mm_status,
                status_text=_text(req, "StatusText"),
            )
        return ReadReplyReq(
            *common,
            message_id=message_id,
            recipient=recipient,
            sender=sender,
            timestamp=_datetime(_text(req, "TimeStamp")),
            mm_status=mm_status,
            status_text=_text(req, "StatusText"),
        )
    return OtherReq(envelope.transaction_id, envelope.version, name)
