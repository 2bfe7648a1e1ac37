"""The MM7 codec: public documentation fixtures, round trips of what the gateway builds, lenient parsing of
what MMSCs send, status classification, and refusal of garbage."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import Message as MimeMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree  # lxml ships no type information

from mmsgate.carriers.mm7.build import build_fault, build_response, build_submit_req
from mmsgate.carriers.mm7.parse import parse_request, parse_submit_response
from mmsgate.carriers.mm7.records import (
    Address,
    DeliverReq,
    DeliveryReportReq,
    Mm7Fault,
    Mm7ParseError,
    Mm7Part,
    OtherReq,
    ReadReplyReq,
    SubmitRsp,
)
from mmsgate.carriers.mm7.status import DEFAULT_VERSION, VERSIONS, Mm7Status, Outcome, classify, namespace, status_text
from mmsgate.core.compose import compose
from mmsgate.core.mms import Mms, MmsPart
from mmsgate.core.model import Media, MediaKind, Message, Part, Sending, Slide
from tests.mm7_mmsc import (
    SubmitReq,
    build_deliver_req,
    build_delivery_report_req,
    build_read_reply_req,
    parse_submit_req,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "mm7"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS6 = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
QUICK = 1.0  # seconds any refusal may take

# SubmitReq children in XSD sequence order (TS 23.140 REL-6, as in carrier-protocols.md §1)
SUBMIT_REQ_XSD = [
    "MM7Version",
    "SenderIdentification",
    "Recipients",
    "ServiceCode",
    "LinkedID",
    "MessageClass",
    "TimeStamp",
    "ReplyCharging",
    "EarliestDeliveryTime",
    "ExpiryDate",
    "DeliveryReport",
    "ReadReply",
    "Priority",
    "Subject",
    "ChargedParty",
    "ChargedPartyID",
    "DistributionIndicator",
    "DeliveryCondition",
    "ApplicID",
    "ReplyApplicID",
    "AuxApplicInfo",
    "ContentClass",
    "DRMContent",
    "Content",
]


def load(name: str) -> tuple[bytes, str]:
    """(body, Content-Type) of a fixture: a start line, headers, a blank line, the body."""
    raw = (DATA / name).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head.split(b"\r\n", 1)[1] + b"\r\n\r\n")
    content_type = headers["Content-Type"]
    assert content_type is not None
    return body, str(content_type)


def local(element: Any) -> str:
    return str(etree.QName(element).localname)


def mime(body: bytes, content_type: str) -> MimeMessage:
    return BytesParser(policy=policy.compat32).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)


def subparts(part: MimeMessage) -> list[MimeMessage]:
    payload = part.get_payload()
    assert isinstance(payload, list)
    return [p for p in payload if isinstance(p, MimeMessage)]


def soap_of(body: bytes, content_type: str) -> Any:
    """The SOAP Envelope element of a built request."""
    if not content_type.startswith("multipart/"):
        return etree.fromstring(body)
    soap = subparts(mime(body, content_type))[0]
    assert soap["Content-ID"] == "<soap-start>"
    assert soap.get_content_type() == "text/xml"
    return etree.fromstring(soap.get_payload(decode=True))


def mm7_element(envelope: Any) -> Any:
    (body,) = envelope.findall(f"{{{SOAP}}}Body")
    (element,) = list(body)
    return element


def refused(parse: Callable[[bytes, str | None], object], body: bytes, content_type: str | None, match: str) -> None:
    started = time.perf_counter()
    with pytest.raises(Mm7ParseError, match=match):
        parse(body, content_type)
    assert time.perf_counter() - started < QUICK


# ------------------------------------------------------------------------------------------------ versions


def test_versions_map_namespaces_to_mm7_versions() -> None:
    expected = {f"REL-5-MM7-1-{i}": "5.3.0" for i in range(6)} | {f"REL-6-MM7-1-{i}": "6.8.0" for i in range(5)}
    assert expected == VERSIONS
    assert DEFAULT_VERSION == "REL-6-MM7-1-4"
    assert namespace("REL-6-MM7-1-4") == NS6
    assert namespace("REL-5-MM7-1-0").endswith("/23.140/schema/REL-5-MM7-1-0")
    for bad in ("REL-7-MM7-1-0", "", "6.8.0"):
        with pytest.raises(ValueError, match="unknown MM7 namespace version"):
            namespace(bad)
    with pytest.raises(ValueError, match="unknown MM7 namespace version"):
        build_response("DeliverRsp", transaction_id="t", version="REL-6-MM7-1-9", status=Mm7Status(1000, "Success"))


# ------------------------------------------------------------------------------------------------ fixtures


def test_fixture_submit_req() -> None:
    body, content_type = load("submit_req.http")
    req = parse_submit_req(body, content_type)
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAABGdBTUEAAK/INwWK6QAAABl0RVh0"
        "U29mdHdhcmUAQWRvYmUgSW1hZ2VSZWFkeXHJZTwAAAFUSURBVDjLrZM/SAJxGIZdWwuDlnCplkAE"
        "m1zkaIiGFFpyMIwGK5KGoK2lphDKkMDg3LLUSIJs"
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) == 144
    assert req == SubmitReq(
        transaction_id="1000001",
        version="REL-6-MM7-1-4",
        mm7_version="6.8.0",
        vasp_id="skfdjslkjfdslkfj434das",
        vas_id="126273",
        sender="111122",
        recipients=("16172383232",),
        subject="My first MM7 Message",
        expiry=None,
        delivery_report=None,
        linked_id=None,
        smil=None,
        parts=(
            Mm7Part("text/plain", b"Hi! This is my first MMS MT message.\r\n", "text.txt", None),
            Mm7Part("image/png", png, "image.png", None),
        ),
        allow_adaptations=False,
    )


def test_fixture_submit_rsp() -> None:
    body, content_type = load("submit_rsp.http")
    assert parse_submit_response(body, content_type) == SubmitRsp(
        transaction_id="1000001",
        version="REL-6-MM7-1-4",
        status=Mm7Status(1000, "Successfully parsed and validated request", None),
        message_id="369500617770864640",
    )


def test_fixture_fault_with_rserror_rsp() -> None:
    body, content_type = load("fault_rserror_2007.http")
    fault = parse_submit_response(body, content_type)
    assert fault == Mm7Fault(
        transaction_id="1000001",
        fault_code="Client",
        fault_string="Client error",
        status=Mm7Status(2007, "Unable to parse request", "Message format corrupt"),
    )
    assert isinstance(fault, Mm7Fault) and fault.status is not None
    assert classify(fault.status.code) is Outcome.PERMANENT


def test_fixture_deliver_req_with_image_and_text() -> None:
    body, content_type = load("deliver_req.http")
    jpeg = (DATA / "deliver_req_image.jpg").read_bytes()
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
    assert parse_request(body, content_type) == DeliverReq(
        transaction_id="1000001",
        version="REL-6-MM7-1-4",
        mm7_version="6.8.0",
        relay_server_id=None,
        linked_id="1000001",
        sender="1617423433",
        recipients=("111122",),
        subject=None,
        timestamp=datetime(2014, 4, 14, 16, 15, 23, 414000, tzinfo=UTC),
        parts=(
            # the page's blank line before each boundary belongs to the body part
            Mm7Part("image/jpeg", jpeg + b"\r\n", "image_0.jpg", None),
            Mm7Part("text/plain", b"Test MO message!\r\n", "text_0.txt", None),
        ),
    )


def test_fixture_delivery_report_req() -> None:
    body, content_type = load("delivery_report_req.http")
    assert content_type.startswith("multipart/related")  # as published, over a bare XML body
    assert parse_request(body, content_type) == DeliveryReportReq(
        transaction_id="10000001",
        version="REL-6-MM7-1-4",
        mm7_version="6.8.0",
        message_id="369500617770864640",
        recipient="16175550123",
        sender="111122",
        date=datetime(2015, 3, 16, 14, 3, 51, 749000, tzinfo=UTC),
        mm_status="Retrieved",
        status_text="Success",
    )


# ------------------------------------------------------------------------------------------------ SubmitReq


def composed() -> tuple[Mms, list[tuple[MmsPart, bytes]]]:
    """A three-slide MMS from compose(), with media bytes that stress binary transfer (CR, LF, '--', NUL)."""
    slides = (
        Slide(text="Hello ☕", media=(Media(MediaKind.IMAGE, "https://example.com/a.jpg"),)),
        Slide(media=(Media(MediaKind.VIDEO, "https://e.com/v"), Media(MediaKind.AUDIO, "https://e.com/a"))),
        Slide(text="Bye\r\nnow", media=(Media(MediaKind.PDF, "https://example.com/d.pdf"),)),
    )
    types = {
        MediaKind.IMAGE: "image/jpeg",
        MediaKind.VIDEO: "video/3gpp",
        MediaKind.AUDIO: "audio/amr",
        MediaKind.PDF: "application/pdf",
    }
    blobs: dict[str, bytes] = {}
    parts: list[Part] = []
    for number, slide in enumerate(slides, 1):
        for media in slide.media:
            position = len(parts) + 1
            data = bytes([position]) + bytes(range(256)) + b"\r\n--\r\n\n\r\r\n" + b"\x00" * position
            sha = f"{position:064x}"
            blobs[sha] = data
            parts.append(
                Part(
                    owner_id="t-1",
                    position=position,
                    slide=number,
                    kind=media.kind,
                    content_type=types[media.kind],
                    size=len(data),
                    sha256=sha,
                    source_url=media.url,
                )
            )
    sending = Sending(
        subject="Hello",
        fallback_sms_text=None,
        disable_fallback_sms=False,
        disable_fallback_sms_link=False,
        fallback_link_expires_at=EXPIRES,
        client_reference=None,
        slides=slides,
    )
    message = Message(
        tracking_id="t-1",
        account_id="acc",
        service_id="svc",
        to="15551230000",
        sender="12345",
        from_mask=None,
        expires_at=EXPIRES,
        cache_content=True,
        sending=sending,
    )
    mms = compose(message, parts)
    return mms, [(p, p.data if p.data is not None else blobs[p.sha256 or ""]) for p in mms.parts]


def submit(mms: Mms, pairs: list[tuple[MmsPart, bytes]], **overrides: Any) -> tuple[bytes, str]:
    arguments: dict[str, Any] = {
        "transaction_id": "tx-1",
        "version": DEFAULT_VERSION,
        "vasp_id": "acme",
        "vas_id": "12345mms",
        "sender": mms.sender,
        "sender_is_short_code": True,
        "recipient": mms.to,
        "subject": mms.subject,
        "expiry": mms.expires_at,
        "smil": mms.smil,
        "parts": pairs,
        "linked_id": "LNK-9",
    }
    return build_submit_req(**(arguments | overrides))


@pytest.mark.parametrize("binary", [False, True], ids=["base64", "binary"])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_submit_req_round_trips(version: str, binary: bool) -> None:
    mms, pairs = composed()
    assert len(pairs) == 6  # image, text, video, audio, pdf, text
    body, content_type = submit(mms, pairs, version=version, binary=binary)
    assert parse_submit_req(body, content_type) == SubmitReq(
        transaction_id="tx-1",
        version=version,
        mm7_version=VERSIONS[version],
        vasp_id="acme",
        vas_id="12345mms",
        sender="12345",
        recipients=("15551230000",),
        subject="Hello",
        expiry=EXPIRES,
        delivery_report=True,
        linked_id="LNK-9",
        smil=mms.smil,
        parts=tuple(Mm7Part(p.content_type, data, p.content_id, p.location) for p, data in pairs),
        allow_adaptations=True,
    )


@pytest.mark.parametrize("binary", [False, True], ids=["base64", "binary"])
def test_submit_req_mime_packaging(binary: bool) -> None:
    mms, pairs = composed()
    body, content_type = submit(mms, pairs, binary=binary)
    assert re.fullmatch(r'multipart/related; type="text/xml"; start="<soap-start>"; boundary="[^"]+"', content_type)
    if not binary:  # nothing raw in the body: every line end is CRLF
        assert body.count(b"\n") == body.count(b"\r\n")
    outer = mime(body, content_type)
    soap, content = subparts(outer)
    assert soap["Content-Type"] == "text/xml; charset=utf-8"
    assert content["Content-ID"] == "<mms-content>"
    assert re.fullmatch(
        r'multipart/related; type="application/smil"; start="<smil>"; boundary="[^"]+"', content["Content-Type"]
    )
    smil, *media = subparts(content)
    assert smil["Content-ID"] == "<smil>"
    assert smil.get_content_type() == "application/smil"
    assert smil.get_payload(decode=True) == mms.smil.encode()
    encoding = "binary" if binary else "base64"
    assert [m["Content-Transfer-Encoding"] for m in [smil, *media]] == [encoding] * 7
    assert [(m["Content-ID"], m["Content-Location"], m["Content-Type"]) for m in media] == [
        (f"<{p.content_id}>", p.location, p.content_type) for p, _ in pairs
    ]
    assert [m.get_payload(decode=True) for m in media] == [data for _, data in pairs]


def test_submit_req_elements_in_schema_order() -> None:
    mms, pairs = composed()
    envelope = soap_of(*submit(mms, pairs))
    assert envelope.tag == f"{{{SOAP}}}Envelope"
    (transaction,) = envelope.findall(f"{{{SOAP}}}Header/{{{NS6}}}TransactionID")
    assert transaction.text == "tx-1"
    assert transaction.get(f"{{{SOAP}}}mustUnderstand") == "1"
    req = mm7_element(envelope)
    assert req.tag == f"{{{NS6}}}SubmitReq"
    assert req.prefix is None and req.nsmap[None] == NS6  # the MM7 namespace is the default namespace
    names = [local(c) for c in req]
    assert names == [
        "MM7Version",
        "SenderIdentification",
        "Recipients",
        "LinkedID",
        "ExpiryDate",
        "DeliveryReport",
        "Subject",
        "Content",
    ]
    assert names == [n for n in SUBMIT_REQ_XSD if n in names]  # a subsequence of the XSD order
    assert all(c.tag.startswith(f"{{{NS6}}}") for c in req.iter())
    ident, recipients = req[1], req[2]
    assert [local(c) for c in ident] == ["VASPID", "VASID", "SenderAddress"]
    assert [(local(c), c.text) for c in ident[2]] == [("ShortCode", "12345")]
    assert [(local(to), [(local(a), a.text) for a in to]) for to in recipients] == [("To", [("Number", "15551230000")])]
    assert req[0].text == "6.8.0"
    assert req[4].text == "2030-01-02T03:04:05Z"
    assert req[5].text == "true"
    assert dict(req[7].attrib) == {"href": "cid:mms-content", "allowAdaptations": "true"}


def test_submit_req_options_and_numbers() -> None:
    mms, pairs = composed()
    body, content_type = submit(
        mms,
        pairs,
        sender="+15557654321",
        sender_is_short_code=False,
        recipient="+15551230000",
        subject=None,
        expiry=None,
        linked_id=None,
        vas_id="",
        delivery_report=False,
        allow_adaptations=False,
        version="REL-5-MM7-1-0",
    )
    req = mm7_element(soap_of(body, content_type))
    assert [local(c) for c in req] == ["MM7Version", "SenderIdentification", "Recipients", "DeliveryReport", "Content"]
    assert [local(c) for c in req[1]] == ["VASPID", "SenderAddress"]
    assert [(local(c), c.text) for c in req[1][1]] == [("Number", "15557654321")]  # Sinch: no '+'
    assert req[2][0][0].text == "15551230000"
    parsed = parse_submit_req(body, content_type)
    assert (parsed.vas_id, parsed.subject, parsed.expiry, parsed.linked_id) == (None, None, None, None)
    assert (parsed.delivery_report, parsed.allow_adaptations, parsed.mm7_version) == (False, False, "5.3.0")


def test_every_smil_src_resolves_to_a_part() -> None:
    mms, pairs = composed()
    req = parse_submit_req(*submit(mms, pairs))
    assert req.smil is not None
    sources = [e.get("src") for e in etree.fromstring(req.smil.encode()).iter() if e.get("src") is not None]
    assert len(sources) == 5  # image, text, video, audio, text: the pdf is an attachment outside the SMIL
    ids = {p.content_id for p in req.parts}
    locations = {p.location for p in req.parts}
    for src in sources:
        assert src.removeprefix("cid:") in ids or src in locations


def test_submit_req_prefix_for_mmscs_that_want_one() -> None:
    mms, pairs = composed()
    body, content_type = submit(mms, pairs, prefix="mm7")
    req = mm7_element(soap_of(body, content_type))
    assert req.prefix == "mm7" and req.tag == f"{{{NS6}}}SubmitReq"
    assert b"<mm7:SubmitReq" in body and b"<mm7:TransactionID" in body
    assert parse_submit_req(body, content_type).parts == parse_submit_req(*submit(mms, pairs)).parts


def test_submit_req_refuses_what_it_cannot_send() -> None:
    mms, pairs = composed()
    first, data = pairs[0]
    with pytest.raises(ValueError, match="Content-IDs repeat"):
        submit(mms, [(first, data), (first, data)])
    with pytest.raises(ValueError, match="Content-IDs repeat"):
        submit(mms, [(MmsPart("smil", "x.txt", "text/plain", 1), b"x")])
    with pytest.raises(ValueError, match="Content-ID"):
        submit(mms, [(MmsPart("a b", "x.txt", "text/plain", 1), b"x")])
    with pytest.raises(ValueError, match="MIME header"):
        submit(mms, [(MmsPart("a", "x\r\nX-Evil: 1", "text/plain", 1), b"x")])


def test_subject_drops_what_xml_cannot_carry() -> None:
    mms, pairs = composed()
    req = parse_submit_req(*submit(mms, pairs, subject="a\x00b\x07c\ufffed\tok"))
    assert req.subject == "abcd\tok"


XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@settings(max_examples=60, deadline=None)
@given(subject=st.text(max_size=60), text=st.text(max_size=200), data=st.binary(max_size=300), binary=st.booleans())
def test_any_subject_text_and_bytes_survive_a_submit_round_trip(
    subject: str, text: str, data: bytes, binary: bool
) -> None:
    parts = [
        (MmsPart("text1", "slide1.txt", "text/plain; charset=utf-8", len(text.encode())), text.encode()),
        (MmsPart("image1", "slide1.jpg", "image/jpeg", len(data)), data),
    ]
    body, content_type = build_submit_req(
        transaction_id="t",
        version=DEFAULT_VERSION,
        vasp_id="v",
        vas_id="s",
        sender="12345",
        sender_is_short_code=True,
        recipient="15551230000",
        subject=subject,
        expiry=None,
        smil="<smil/>",
        parts=parts,
        binary=binary,
    )
    req = parse_submit_req(body, content_type)
    assert req.subject == (XML_INVALID.sub("", subject) or None)
    assert [p.data for p in req.parts] == [text.encode(), data]
    assert req.parts[0].data.decode() == text


# ------------------------------------------------------------------------------------------------ responses


@pytest.mark.parametrize("version", list(VERSIONS))
def test_submit_rsp_round_trips(version: str) -> None:
    status = Mm7Status(1000, "Success", "queued")
    body = build_response("SubmitRsp", transaction_id="tx-7", version=version, status=status, message_id="MMSC1")
    assert parse_submit_response(body, "text/xml; charset=utf-8") == SubmitRsp("tx-7", version, status, "MMSC1")
    rsp = mm7_element(etree.fromstring(body))
    assert [local(c) for c in rsp] == ["MM7Version", "Status", "MessageID"]
    assert [local(c) for c in rsp[1]] == ["StatusCode", "StatusText", "Details"]
    assert rsp.nsmap[None] == namespace(version)


@pytest.mark.parametrize("name", ["DeliverRsp", "DeliveryReportRsp", "ReadReplyRsp"])
def test_other_responses(name: Any) -> None:
    body = build_response(name, transaction_id="mo-77", version=DEFAULT_VERSION, status=Mm7Status(1000, "Success"))
    envelope = etree.fromstring(body)
    (transaction,) = envelope.findall(f"{{{SOAP}}}Header/{{{NS6}}}TransactionID")
    assert transaction.text == "mo-77"
    rsp = mm7_element(envelope)
    assert rsp.tag == f"{{{NS6}}}{name}"
    assert [local(c) for c in rsp] == ["MM7Version", "Status"]
    assert [c.text for c in rsp[1]] == ["1000", "Success"]
    assert parse_request(body, "text/xml") == OtherReq("mo-77", DEFAULT_VERSION, name)
    with pytest.raises(ValueError, match="MessageID"):
        build_response(name, transaction_id="t", version=DEFAULT_VERSION, status=Mm7Status(1000, "x"), message_id="m")


def test_empty_status_text_gets_the_standard_one() -> None:
    body = build_response("SubmitRsp", transaction_id="t", version=DEFAULT_VERSION, status=Mm7Status(4006, ""))
    rsp = parse_submit_response(body, None)
    assert isinstance(rsp, SubmitRsp) and rsp.status == Mm7Status(4006, "Service unavailable")


@pytest.mark.parametrize(
    ("code", "by_vasp", "fault_code", "holder"),
    [
        (2007, False, "Client", "RSErrorRsp"),
        (4003, True, "Client", "VASPErrorRsp"),
        (3000, True, "Server", "VASPErrorRsp"),
        (3100, False, "Server", "RSErrorRsp"),
    ],
)
def test_faults_round_trip(code: int, by_vasp: bool, fault_code: str, holder: str) -> None:
    status = Mm7Status(code, status_text(code), "why")
    body = build_fault(transaction_id="tx-3", version=DEFAULT_VERSION, status=status, by_vasp=by_vasp)
    assert parse_submit_response(body, "text/xml") == Mm7Fault("tx-3", fault_code, status.text, status)
    fault = mm7_element(etree.fromstring(body))
    assert fault.tag == f"{{{SOAP}}}Fault"
    assert [c.tag for c in fault] == ["faultcode", "faultstring", "detail"]  # unqualified, as SOAP 1.1 has them
    assert fault[0].text == f"env:{fault_code}"
    (error,) = list(fault[2])
    assert error.tag == f"{{{NS6}}}{holder}"
    assert [local(c) for c in error] == ["MM7Version", "Status"]


def test_fault_without_transaction_has_no_header() -> None:
    body = build_fault(transaction_id=None, version=DEFAULT_VERSION, status=Mm7Status(4004, "Validation error"))
    assert etree.fromstring(body).find(f"{{{SOAP}}}Header") is None
    fault = parse_submit_response(body, None)
    assert isinstance(fault, Mm7Fault) and fault.transaction_id is None and fault.fault_code == "Client"


# ------------------------------------------------------------------------------------------------ MMSC requests


@pytest.mark.parametrize("binary", [False, True], ids=["base64", "binary"])
@pytest.mark.parametrize("with_smil", [True, False], ids=["related", "mixed"])
def test_deliver_req_round_trips(with_smil: bool, binary: bool) -> None:
    image = Mm7Part("image/jpeg", b"\xff\xd8\r\n--\xff\xd9", "image_0.jpg", "image_0.jpg")
    text = Mm7Part("text/plain; charset=utf-8", "Hi ☕".encode(), "text_0", None)
    smil = '<smil><body><par><img src="image_0.jpg"/><text src="cid:text_0"/></par></body></smil>'
    body, content_type = build_deliver_req(
        transaction_id="mo-77",
        version="REL-5-MM7-1-3",
        relay_server_id="mmsc.example",
        linked_id="LNK-77",
        sender="+15557654321",
        recipients=[Address("12345", "ShortCode"), Address("15550000001", display_only=True)],
        cc=["a@example.com"],
        bcc=["15550000002"],
        timestamp=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        priority="Normal",
        subject="pic",
        smil=smil if with_smil else None,
        parts=[image, text],
        binary=binary,
    )
    req = mm7_element(soap_of(body, content_type))
    assert [local(c) for c in req] == [
        "MM7Version",
        "MMSRelayServerID",
        "LinkedID",
        "Sender",
        "Recipients",
        "TimeStamp",
        "Priority",
        "Subject",
        "Content",
    ]
    assert req[4][1][0].get("displayOnly") == "true"
    smil_part = [Mm7Part("application/smil; charset=utf-8", smil.encode(), "smil", None)] if with_smil else []
    assert parse_request(body, content_type) == DeliverReq(
        transaction_id="mo-77",
        version="REL-5-MM7-1-3",
        mm7_version="5.3.0",
        relay_server_id="mmsc.example",
        linked_id="LNK-77",
        sender="15557654321",
        recipients=("12345", "15550000001", "a@example.com", "15550000002"),
        subject="pic",
        timestamp=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        parts=(*smil_part, image, text),
    )


def test_deliver_req_without_content() -> None:
    body, content_type = build_deliver_req(
        transaction_id="mo-1", version=DEFAULT_VERSION, sender="15557654321", recipients=["12345"]
    )
    assert content_type == "text/xml; charset=utf-8"
    req = parse_request(body, content_type)
    assert isinstance(req, DeliverReq) and req.parts == () and req.subject is None and req.timestamp is None


@pytest.mark.parametrize("version", list(VERSIONS))
def test_delivery_report_req_round_trips(version: str) -> None:
    body, content_type = build_delivery_report_req(
        transaction_id="dr-1",
        version=version,
        relay_server_id="mmsc",
        message_id="MMSC1",
        recipient="+15551230001",
        sender=Address("12345", "ShortCode"),
        date=datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC),
        mm_status="Retrieved",
        status_text="Delivered",
    )
    assert content_type == "text/xml; charset=utf-8"
    names = [local(c) for c in mm7_element(etree.fromstring(body))]
    assert names == [
        "MM7Version",
        "MMSRelayServerID",
        "MessageID",
        "Recipient",
        "Sender",
        "Date",
        "MMStatus",
        "StatusText",
    ]
    assert parse_request(body, content_type) == DeliveryReportReq(
        transaction_id="dr-1",
        version=version,
        mm7_version=VERSIONS[version],
        message_id="MMSC1",
        recipient="15551230001",
        sender="12345",
        date=datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC),
        mm_status="Retrieved",
        status_text="Delivered",
    )


def test_read_reply_req_round_trips() -> None:
    body, content_type = build_read_reply_req(
        transaction_id="rr-1",
        version=DEFAULT_VERSION,
        message_id="MMSC1",
        recipient="15551230001",
        sender=Address("12345", "ShortCode"),
        timestamp=datetime(2026, 1, 2, tzinfo=UTC),
        mm_status="Read",
    )
    names = [local(c) for c in mm7_element(etree.fromstring(body))]
    assert names == ["MM7Version", "MessageID", "Recipient", "Sender", "TimeStamp", "MMStatus"]
    assert parse_request(body, content_type) == ReadReplyReq(
        transaction_id="rr-1",
        version=DEFAULT_VERSION,
        mm7_version="6.8.0",
        message_id="MMSC1",
        recipient="15551230001",
        sender="12345",
        timestamp=datetime(2026, 1, 2, tzinfo=UTC),
        mm_status="Read",
    )


def test_operations_the_gateway_does_not_handle() -> None:
    cancel = (
        f'<e:Envelope xmlns:e="{SOAP}"><e:Header><TransactionID xmlns="{NS6}">c-1</TransactionID></e:Header>'
        f'<e:Body><CancelReq xmlns="{NS6}"><MM7Version>6.8.0</MM7Version><MessageID>M</MessageID></CancelReq>'
        "</e:Body></e:Envelope>"
    ).encode()
    assert parse_request(cancel, "text/xml") == OtherReq("c-1", "REL-6-MM7-1-4", "CancelReq")


@settings(max_examples=40, deadline=None)
@given(subject=st.text(min_size=1, max_size=60), text=st.text(max_size=200))
def test_any_mo_subject_and_text_survive(subject: str, text: str) -> None:
    part = Mm7Part("text/plain; charset=utf-8", text.encode(), "t", None)
    body, content_type = build_deliver_req(
        transaction_id="m", version=DEFAULT_VERSION, sender="1", recipients=["2"], subject=subject, parts=[part]
    )
    req = parse_request(body, content_type)
    assert isinstance(req, DeliverReq)
    assert req.subject == (XML_INVALID.sub("", subject) or None)
    assert req.parts == (part,)


# ------------------------------------------------------------------------------------------------ lenient parsing


def deliver_xml(href: str, *, envelope_ns: str = SOAP, ns: str | None = NS6, prefix: str | None = None) -> bytes:
    """A DeliverReq envelope; ``prefix`` puts the MM7 elements under that prefix, ``ns`` None uses none."""
    p = f"{prefix}:" if prefix else ""
    declare = "" if ns is None else (f' xmlns:{prefix}="{ns}"' if prefix else f' xmlns="{ns}"')
    env = "SOAP-ENV"
    env_declare = "" if envelope_ns == "" else f' xmlns:{env}="{envelope_ns}"'
    e = f"{env}:" if envelope_ns else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{e}Envelope{env_declare}>\n'
        f"<{e}Header><{p}TransactionID{declare}>mo-9</{p}TransactionID></{e}Header>\n<{e}Body>\n"
        f"<{p}DeliverReq{declare}><{p}MM7Version>6.8.0</{p}MM7Version>"
        f"<{p}Sender><{p}Number>+15557654321</{p}Number></{p}Sender>"
        f"<{p}Recipients><{p}To><{p}ShortCode>12345</{p}ShortCode></{p}To>"
        f"<{p}Cc><{p}RFC2822Address>a@example.com</{p}RFC2822Address></{p}Cc></{p}Recipients>"
        f"<{p}Subject>pic</{p}Subject>"
        f"<{p}Content href={quoteattr(href)}/></{p}DeliverReq>\n</{e}Body></{e}Envelope>\n"
    ).encode()


def multipart(boundary: str, *entities: bytes, preamble: bytes = b"") -> bytes:
    return (
        preamble
        + b"".join(b"--" + boundary.encode() + b"\r\n" + e + b"\r\n" for e in entities)
        + (b"--" + boundary.encode() + b"--\r\n")
    )


def entity(headers: str, body: bytes) -> bytes:
    return headers.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


IMAGE = b"\xff\xd8 image \xff\xd9"
CONTENT = multipart(
    "inner",
    entity("Content-Type: image/jpeg\nContent-ID: img\nContent-Transfer-Encoding: binary", IMAGE),
    entity(
        "Content-Type: text/plain; charset=utf-8\nContent-ID: <txt>\nContent-Transfer-Encoding: quoted-printable",
        b"caf=C3=A9 =E2=98=95 and a soft=\r\n break",
    ),
)
DECOY = entity("Content-Type: text/plain\nContent-ID: <decoy>", b"not the content")


def mo(
    xml: bytes, *, start: str | None = '"<soap>"', content_id: str = "<mo-content>", soap_first: bool = True
) -> bytes:
    soap = entity("Content-Type: text/xml; charset=utf-8\nContent-ID: <soap>", xml)
    content = entity(f'Content-Type: multipart/mixed; boundary="inner"\nContent-ID: {content_id}', CONTENT)
    parts = (soap, DECOY, content) if soap_first else (DECOY, content, soap)
    return multipart("outer", *parts)


def check_mo(req: object, version: str | None = "REL-6-MM7-1-4") -> None:
    assert req == DeliverReq(
        transaction_id="mo-9",
        version=version,
        mm7_version="6.8.0",
        relay_server_id=None,
        linked_id=None,
        sender="15557654321",
        recipients=("12345", "a@example.com"),
        subject="pic",
        timestamp=None,
        parts=(
            Mm7Part("image/jpeg", IMAGE, "img", None),
            Mm7Part("text/plain; charset=utf-8", "café ☕ and a soft break".encode(), "txt", None),
        ),
    )


OUTER = 'multipart/related; type="text/xml"; start="<soap>"; boundary="outer"'


@pytest.mark.parametrize("href", ["cid:mo-content", "mo-content", "<mo-content>", "CID:mo-content", "cid:mo%2Dcontent"])
def test_href_with_or_without_cid(href: str) -> None:
    check_mo(parse_request(mo(deliver_xml(href)), OUTER))


def test_content_ids_without_angle_brackets() -> None:
    check_mo(parse_request(mo(deliver_xml("cid:mo-content"), content_id="mo-content"), OUTER))


def test_href_naming_a_content_location() -> None:
    body = mo(deliver_xml("content.mime"), content_id="<x>").replace(
        b"Content-ID: <x>", b"Content-ID: <x>\r\nContent-Location: content.mime"
    )
    check_mo(parse_request(body, OUTER))


def test_no_start_means_the_first_xml_part() -> None:
    body = mo(deliver_xml("cid:mo-content"), soap_first=False)
    check_mo(parse_request(body, 'multipart/related; type="text/xml"; boundary="outer"'))
    check_mo(parse_request(body, 'multipart/related; type="text/xml"; start="<nowhere>"; boundary="outer"'))


def test_a_content_type_with_the_wrong_boundary() -> None:
    check_mo(parse_request(mo(deliver_xml("cid:mo-content")), 'multipart/related; start="<soap>"; boundary="other"'))


def test_no_content_type_at_all() -> None:
    check_mo(parse_request(mo(deliver_xml("cid:mo-content")), None))  # the boundary comes from the first line
    body, _ = build_delivery_report_req(
        transaction_id="d",
        version=DEFAULT_VERSION,
        message_id="M",
        recipient="1",
        sender="2",
        date=EXPIRES,
        mm_status="Expired",
    )
    assert isinstance(parse_request(body, None), DeliveryReportReq)


def test_mm7_prefix_and_another_soap_prefix() -> None:
    check_mo(parse_request(mo(deliver_xml("cid:mo-content", prefix="mm7")), OUTER))


def test_no_namespace_at_all() -> None:
    check_mo(parse_request(mo(deliver_xml("cid:mo-content", envelope_ns="", ns=None)), OUTER), version=None)


def test_another_namespace_version_and_an_unlisted_one() -> None:
    for version in ("REL-5-MM7-1-2", "REL-6-MM7-1-9"):
        xml = deliver_xml(
            "cid:mo-content", ns=f"http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/{version}"
        )
        check_mo(parse_request(mo(xml), OUTER), version=version)


def test_content_not_in_a_nested_multipart() -> None:
    soap = entity("Content-Type: text/xml\nContent-ID: <soap>", deliver_xml("cid:nowhere"))
    image = entity(
        "Content-Type: image/jpeg\nContent-ID: <img>\nContent-Transfer-Encoding: base64", b"/9ggaW1hZ2Ug/9k="
    )
    text = entity("Content-Type: text/plain; charset=utf-8\nContent-ID: <txt>", "café ☕ and a soft break".encode())
    req = parse_request(multipart("flat", soap, image, text), 'multipart/related; start="<soap>"; boundary="flat"')
    check_mo(req)


def test_plain_text_xml_delivery_report() -> None:
    xml = (
        f'<S:Envelope xmlns:S="{SOAP}"><S:Header><mm7:TransactionID xmlns:mm7="{NS6}">d-1</mm7:TransactionID>'
        f'</S:Header><S:Body><mm7:DeliveryReportReq xmlns:mm7="{NS6}"><mm7:MM7Version>6.8.0</mm7:MM7Version>'
        "<mm7:MessageID> MMSC1 </mm7:MessageID><mm7:Recipient><mm7:Number>+15551230001</mm7:Number></mm7:Recipient>"
        "<mm7:Sender>12345</mm7:Sender><mm7:Date>2026-01-01T13:00:00+01:00</mm7:Date>"
        "<mm7:MMStatus>Rejected</mm7:MMStatus></mm7:DeliveryReportReq></S:Body></S:Envelope>"
    ).encode()
    assert parse_request(b"\xef\xbb\xbf\r\n" + xml, "text/xml") == DeliveryReportReq(
        transaction_id="d-1",
        version="REL-6-MM7-1-4",
        mm7_version="6.8.0",
        message_id="MMSC1",
        recipient="15551230001",
        sender="12345",  # bare text, as REL-5-MM7-1-0 sent it
        date=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        mm_status="Rejected",
        status_text=None,
    )


def test_rserror_rsp_without_a_fault_around_it() -> None:
    xml = (
        f'<env:Envelope xmlns:env="{SOAP}"><env:Body><RSErrorRsp xmlns="{NS6}"><MM7Version>6.8.0</MM7Version>'
        "<Status><StatusCode> 4001 </StatusCode><StatusText>Improper identification</StatusText></Status>"
        "</RSErrorRsp></env:Body></env:Envelope>"
    ).encode()
    status = Mm7Status(4001, "Improper identification")
    assert parse_submit_response(xml, "text/xml") == Mm7Fault(None, "", "Improper identification", status)


def test_relative_expiry_and_unreadable_times_are_none() -> None:
    mms, pairs = composed()
    body, content_type = submit(mms, pairs)
    for odd in (b"P1DT2H", b"next tuesday", b""):
        assert parse_submit_req(body.replace(b"2030-01-02T03:04:05Z", odd), content_type).expiry is None


# ------------------------------------------------------------------------------------------------ status codes

CLASSIFIED = [
    (1000, Outcome.SUCCESS),
    (1100, Outcome.SUCCESS),
    (1999, Outcome.SUCCESS),
    *((code, Outcome.PERMANENT) for code in range(2000, 2010)),
    *((code, Outcome.PERMANENT) for code in (2400, 2404, 2408, 2505, 2507, 2510, 2571, 2572, 2999)),
    (3000, Outcome.RETRYABLE),
    *((code, Outcome.PERMANENT) for code in (3001, 3002, 3003, 3004, 3005)),
    (3100, Outcome.THROTTLED),
    (3200, Outcome.RETRYABLE),
    (3500, Outcome.RETRYABLE),
    (3999, Outcome.RETRYABLE),
    (4000, Outcome.RETRYABLE),
    *((code, Outcome.PERMANENT) for code in (4001, 4002, 4003, 4004, 4005, 4007, 4008)),
    (4006, Outcome.RETRYABLE),
    (4999, Outcome.RETRYABLE),
    *((code, Outcome.PERMANENT) for code in (-1, 0, 999, 5000, 10000)),
]


@pytest.mark.parametrize(("code", "outcome"), CLASSIFIED)
def test_classify(code: int, outcome: Outcome) -> None:
    assert classify(code) is outcome


def test_status_texts() -> None:
    assert status_text(1000) == "Success"
    assert status_text(1100) == "Partial success"
    assert status_text(2007) == "Message format corrupt"
    assert status_text(3100) == "Throughput exceeded"
    assert status_text(4003) == "Unsupported operation"
    assert status_text(4006) == "Service unavailable"
    assert status_text(2998) == "Client error"
    assert status_text(3998) == "Server Error"
    assert status_text(5000) == "Unknown status"


# ------------------------------------------------------------------------------------------------ garbage

BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9))
    + f']><e:Envelope xmlns:e="{SOAP}"><e:Body>&j;</e:Body></e:Envelope>'.encode()
)
XXE = (
    b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + f'<e:Envelope xmlns:e="{SOAP}"><e:Body><DeliverReq><Sender>&x;</Sender></DeliverReq>'.encode()
    + b"</e:Body></e:Envelope>"
)


@pytest.mark.parametrize(
    ("body", "content_type", "match"),
    [
        (b"", "text/xml", "empty"),
        (b"  \r\n ", None, "empty"),
        (b"hello, world", "text/plain", "neither XML nor MIME"),
        (b"<not xml", "text/xml", "not well-formed"),
        (b"<a></b>", None, "not well-formed"),
        (BOMB, "text/xml", "not well-formed XML: Maximum entity amplification"),
        (XXE, "text/xml", "document type declaration"),
        (b'<!DOCTYPE Envelope [<!ENTITY a "b">]><Envelope><Body>&a;</Body></Envelope>', None, "document type"),
        (f'<e:Envelope xmlns:e="{SOAP}"><e:Header/></e:Envelope>'.encode(), "text/xml", "no Body"),
        (f'<e:Envelope xmlns:e="{SOAP}"><e:Body/></e:Envelope>'.encode(), "text/xml", "Body is empty"),
        (b"<html><body>502 Bad Gateway</body></html>", "text/html", "not a SOAP Envelope"),
        (b"junk\r\n--b\r\nContent-Type: text/xml\r\n\r\n<x/>", "multipart/related; boundary=zzz", "no MIME part"),
        (b"--b\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--b--\r\n", "multipart/related; boundary=b", "no SOAP"),
        (b"--b\r\nContent-Type: text/xml\r\n\r\n{}\r\n--b--\r\n", "multipart/related; boundary=b", "well-formed"),
    ],
    ids=[
        "empty",
        "blank",
        "text",
        "broken-xml",
        "mismatched",
        "entity-bomb",
        "external-entity",
        "small-dtd",
        "no-body",
        "empty-body",
        "html",
        "wrong-boundary",
        "no-xml-part",
        "json-in-xml-part",
    ],
)
def test_garbage_is_refused_quickly(body: bytes, content_type: str | None, match: str) -> None:
    refused(parse_request, body, content_type, match)
    refused(parse_submit_response, body, content_type, match)
    refused(parse_submit_req, body, content_type, match)


def test_incomplete_messages_are_refused() -> None:
    def envelope(inner: str) -> bytes:
        return f'<e:Envelope xmlns:e="{SOAP}"><e:Body xmlns="{NS6}">{inner}</e:Body></e:Envelope>'.encode()

    refused(parse_request, envelope("<DeliverReq><MM7Version>6.8.0</MM7Version></DeliverReq>"), None, "no Sender")
    refused(
        parse_request,
        envelope("<DeliveryReportReq><MMStatus>Expired</MMStatus></DeliveryReportReq>"),
        None,
        "MessageID",
    )
    refused(parse_request, envelope("<ReadReplyReq><MessageID>m</MessageID></ReadReplyReq>"), None, "MMStatus")
    refused(parse_submit_response, envelope("<SubmitRsp><MM7Version>6.8.0</MM7Version></SubmitRsp>"), None, "no Status")
    bad_code = "<SubmitRsp><Status><StatusCode>OK</StatusCode></Status></SubmitRsp>"
    refused(parse_submit_response, envelope(bad_code), None, "not a number")
    refused(parse_submit_response, envelope("<DeliverReq/>"), None, "expected SubmitRsp")
    refused(parse_submit_req, envelope("<DeliverReq/>"), None, "expected SubmitReq")


def test_deeply_nested_content_is_refused() -> None:
    inner = entity("Content-Type: text/plain", b"x")
    for level in range(6):
        inner = entity(f'Content-Type: multipart/mixed; boundary="n{level}"', multipart(f"n{level}", inner))
    soap = entity("Content-Type: text/xml", deliver_xml("cid:nowhere"))
    refused(parse_request, multipart("o", soap, inner), 'multipart/related; boundary="o"', "nested too deeply")
