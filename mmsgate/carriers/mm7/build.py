"""What the gateway (the VASP) builds in MM7: the SubmitReq carrying an MMS, the responses to the requests an
MMSC sends it (DeliverRsp, DeliveryReportRsp, ReadReplyRsp) and the SOAP Fault it answers with instead.

Pure: values in, bytes out; no I/O, no clock.

Building is strict: elements in XSD sequence order, the MM7 namespace declared as the default namespace of the
Body's element (or bound to a prefix the carrier asks for), ``TransactionID`` in the SOAP Header with
``env:mustUnderstand="1"``. The MIME around a SubmitReq is :mod:`.mime`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from lxml import etree  # lxml ships no type information

from mmsgate.carriers.mm7.mime import CONTENT_START, content_entity, with_content
from mmsgate.carriers.mm7.records import Address, Mm7Part
from mmsgate.carriers.mm7.status import SOAP_ENV_NS, VERSIONS, Mm7Status, namespace, status_text
from mmsgate.core.mms import MmsPart

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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
    content_type, content = content_entity(
        smil, [Mm7Part(p.content_type, data, p.content_id, p.location) for p, data in parts], binary
    )
    return with_content(doc.xml(), content_type, content)


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
