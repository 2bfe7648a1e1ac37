"""The MMSC's side of MM7, used by the tests and benchmarks to play an MMSC: it builds what an MMSC sends a
VASP (DeliverReq, DeliveryReportReq, ReadReplyReq) and reads what a VASP sends an MMSC (SubmitReq).

The gateway never does either, so this lives with the tests; it is made of the gateway's own codec pieces
(:mod:`mmsgate.carriers.mm7.build`, ``.mime``, ``.parse``), built as strictly and read as leniently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from mmsgate.carriers.mm7.build import _Doc, _iso, _xml_safe
from mmsgate.carriers.mm7.mime import _content_type_header, content_entity, header_param, with_content
from mmsgate.carriers.mm7.parse import (
    _address,
    _attribute,
    _child,
    _content_parts,
    _datetime,
    _envelope,
    _expect,
    _raw_text,
    _recipients,
    _text,
)
from mmsgate.carriers.mm7.records import Address, Mm7Part
from mmsgate.core.mms import SMIL_CONTENT_TYPE

XML_CONTENT_TYPE = "text/xml; charset=utf-8"


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


# ------------------------------------------------------------------------------------------------- building


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
    content_type, content = content_entity(smil, parts, binary)
    return with_content(doc.xml(), content_type, content)


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


# ------------------------------------------------------------------------------------------------- parsing


def _boolean(text: str | None) -> bool | None:
    match (text or "").strip().lower():
        case "true" | "1":
            return True
        case "false" | "0":
            return False
        case _:
            return None


def _is_smil(part: Mm7Part) -> bool:
    return part.content_type.split(";", 1)[0].strip().lower() == SMIL_CONTENT_TYPE


def _decode_text(part: Mm7Part) -> str:
    holder = _content_type_header(part.content_type)
    charset = (None if holder is None else header_param(holder, "charset")) or "utf-8"
    try:
        return part.data.decode(charset, "replace")
    except LookupError:
        return part.data.decode("utf-8", "replace")


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
