"""What the gateway (the VASP) parses in MM7: an MMSC's answer to a SubmitReq (:func:`parse_submit_response`)
and the requests an MMSC sends it (:func:`parse_request`), with the lenient readers of the envelope, its
elements and the MM content they share.

Pure: bytes in, values out; no I/O, no clock.

Parsing is lenient, the way MMSCs in the field need it (as Mbuni is): elements are matched by local name, so
any MM7 namespace version, any prefix or no namespace at all is accepted; ``href`` with or without ``cid:``;
content that is multipart/related, multipart/mixed or flat (the MIME is :mod:`.mime`'s). XML is parsed with
entity resolution, DTD loading and network access off, and a document with a DTD is refused (SOAP 1.1 forbids
them), so entity bombs cost nothing. Anything that cannot be read raises :class:`Mm7ParseError` saying why.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from lxml import etree  # lxml ships no type information

from mmsgate.carriers.mm7.mime import bare_id, header_param, leaves, mm7_part, part_header, split_parts
from mmsgate.carriers.mm7.records import (
    DeliverReq,
    DeliveryReportReq,
    Mm7Fault,
    Mm7ParseError,
    Mm7Part,
    OtherReq,
    ReadReplyReq,
    SubmitRsp,
)
from mmsgate.carriers.mm7.status import Mm7Status, status_text

_XML_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)

_ADDRESS_KINDS = frozenset({"Number", "ShortCode", "RFC2822Address"})
_PARSE_FAILURES = (ValueError, TypeError, LookupError, AttributeError, RecursionError, etree.LxmlError)


@dataclass(frozen=True, slots=True)
class _Envelope:
    transaction_id: str | None
    version: str | None
    message: Any
    """The element in the SOAP Body."""
    attachments: tuple[Message, ...]
    """The top-level MIME parts other than the SOAP part."""


# ------------------------------------------------------------------------------------------------- elements


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


# ------------------------------------------------------------------------------------------------- envelope


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
        xml, attachments = split_parts(body, content_type)
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


def _href_candidates(href: str) -> set[str]:
    href = href.strip()
    ids = {href, urllib.parse.unquote(href)}
    ids |= {i[4:] for i in ids if i[:4].lower() == "cid:"}
    return {b for i in ids if (b := bare_id(i)) is not None}


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
                if bare_id(part_header(part, header)) in wanted:
                    return [part]
    return list(attachments)


def _content_parts(envelope: _Envelope) -> tuple[list[Mm7Part], str | None]:
    """(every content part in order, the Content-ID of the SMIL start part if the content names one)."""
    entities = _content_entity(envelope)
    start = None
    if len(entities) == 1 and entities[0].get_content_maintype() == "multipart":
        start = bare_id(header_param(entities[0], "start"))
    try:
        return [mm7_part(leaf) for entity in entities for leaf in leaves(entity)], start
    except Mm7ParseError:
        raise
    except _PARSE_FAILURES as exc:
        raise Mm7ParseError(f"unreadable MM content: {exc.__class__.__name__}: {exc}") from exc


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


# ------------------------------------------------------------------------------------------------- parsing


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
