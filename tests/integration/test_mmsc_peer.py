"""The MMSC test peer itself (tests/peers/mmsc-sim.js), checked without mmsgate's MM7 code: SubmitReqs built
here by hand (stdlib ``email`` and XML strings), posted with httpx; DeliveryReportReq, DeliverReq, ReadReplyReq
and raw bodies taken by a small VASP stub (Starlette on uvicorn, in this process, on a port the kernel picks)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message, MIMEPart
from email.policy import SMTP
from email.policy import default as default_policy

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.mmsc import Event, Mmsc
from tests.waiting import eventually

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SCHEMA = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"
REL6 = SCHEMA + "REL-6-MM7-1-4"
REL5 = SCHEMA + "REL-5-MM7-1-2"
USER, PASSWORD = "acme", "pa:ss"
VASP_USER, VASP_PASSWORD = "mmsgate", "vasp-secret"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
TEXT = "Here is the view from the summit \u26f0, long enough for soft line breaks in quoted-printable."
SMIL = (
    '<smil><head><layout><root-layout width="320" height="480"/><region id="Image" top="0" height="320"/>'
    '<region id="Text" top="320" height="160"/></layout></head><body><par dur="5000ms">'
    '<img src="cid:img1" region="Image"/><text src="txt1.txt" region="Text"/></par></body></smil>'
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- building requests


def children(
    version: str = "6.8.0", recipients: tuple[str, ...] = ("15551230001",), href: str = "cid:mms-content"
) -> dict[str, str]:
    """A SubmitReq's children, in schema order (tests drop or reorder them)."""
    return {
        "MM7Version": f"<MM7Version>{version}</MM7Version>",
        "SenderIdentification": "<SenderIdentification><VASPID>acme</VASPID><VASID>12345mms</VASID>"
        "<SenderAddress><ShortCode>12345</ShortCode></SenderAddress></SenderIdentification>",
        "Recipients": "<Recipients>" + "".join(f"<To><Number>{r}</Number></To>" for r in recipients) + "</Recipients>",
        "LinkedID": "<LinkedID>LNK-9</LinkedID>",
        "ExpiryDate": "<ExpiryDate>2030-01-02T03:04:05Z</ExpiryDate>",
        "DeliveryReport": "<DeliveryReport>true</DeliveryReport>",
        "Subject": "<Subject>Hello &amp; welcome</Subject>",
        "Content": f'<Content href="{href}" allowAdaptations="true"/>',
    }


def envelope(
    body: list[str],
    *,
    ns: str = REL6,
    operation: str = "SubmitReq",
    tx: str | None = "tx-0001",
    must_understand: bool = True,
    prefix: bool = False,
) -> str:
    """The SOAP envelope; ``prefix`` puts the MM7 elements under an ``mm7:`` prefix instead of a default xmlns."""
    inner = "".join(body)
    if prefix:
        inner = re.sub(r"<(/?)(\w+)", r"<\1mm7:\2", inner)
        start, end = f'<mm7:{operation} xmlns:mm7="{ns}">', f"</mm7:{operation}>"
    else:
        start, end = f'<{operation} xmlns="{ns}">', f"</{operation}>"
    understand = ' env:mustUnderstand="1"' if must_understand else ""
    header = (
        "" if tx is None else f'<env:Header><TransactionID xmlns="{ns}"{understand}>{tx}</TransactionID></env:Header>'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="{SOAP_ENV}">{header}'
        f"<env:Body>{start}{inner}{end}</env:Body></env:Envelope>\n"
    )


def leaf(data: bytes, ctype: str, cid: str | None = None, location: str | None = None, cte: str = "base64") -> MIMEPart:
    part = MIMEPart(policy=SMTP)
    maintype, subtype = ctype.split("/")
    part.set_content(data, maintype, subtype, cte=cte)
    if cid is not None:
        part["Content-ID"] = cid
    if location is not None:
        part["Content-Location"] = location
    return part


def text_part(text: str, cid: str, location: str) -> MIMEPart:
    """UTF-8 text as quoted-printable, its bytes exactly (no line break appended)."""
    part = leaf(text.encode(), "text/plain", cid, location, cte="quoted-printable")
    part.set_param("charset", "utf-8")
    return part


def multipart(subtype: str, parts: list[MIMEPart], cid: str | None = None, **params: str) -> MIMEPart:
    whole = MIMEPart(policy=SMTP)
    whole["Content-Type"] = f"multipart/{subtype}"
    for name, value in params.items():
        whole.set_param(name, value)
    if cid is not None:
        whole["Content-ID"] = cid
    for part in parts:
        whole.attach(part)
    return whole


def slides(smil: str = SMIL) -> MIMEPart:
    """The MM content: SMIL + an image (by cid:) + a text (by Content-Location)."""
    smil_part = leaf(smil.encode(), "application/smil", "<smil>")
    parts = [smil_part, leaf(JPEG, "image/jpeg", "<img1>", "img1.jpg"), text_part(TEXT, "<txt1>", "txt1.txt")]
    return multipart("related", parts, "<mms-content>", type="application/smil", start="<smil>")


def soap_with(xml: str, content: MIMEPart | None = None, start: bool = True) -> tuple[str, bytes]:
    """(Content-Type, body) of a SOAP-with-attachments request."""
    soap = MIMEPart(policy=SMTP)
    soap.set_content(xml, subtype="xml", charset="utf-8", cte="8bit")
    if start:
        soap["Content-ID"] = "<soap-start>"
    params = {"type": "text/xml", **({"start": "<soap-start>"} if start else {})}
    whole = multipart("related", [soap] + ([content] if content is not None else []), **params)
    raw = whole.as_bytes(policy=SMTP)
    return str(whole["Content-Type"]), raw.split(b"\r\n\r\n", 1)[1]


def submit(**changes: str | None) -> tuple[str, bytes]:
    """A well-formed REL-6 SubmitReq with slides; ``changes`` replace (or with None drop) children."""
    body = {**children(), **changes}
    return soap_with(envelope([v for v in body.values() if v is not None]), slides())


# ---- reading answers


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def first(root: ET.Element, name: str) -> ET.Element:
    found = next((e for e in root.iter() if local(e.tag) == name), None)
    assert found is not None, f"no {name} in {ET.tostring(root).decode()}"
    return found


def text_of(root: ET.Element, name: str) -> str:
    return first(root, name).text or ""


def body_element(root: ET.Element) -> ET.Element:
    return next(iter(first(root, "Body")))


# ---- the peer and the VASP stub


@pytest.fixture
async def mmscs() -> AsyncIterator[Callable[..., Awaitable[Mmsc]]]:
    """Start MMSC peers (env settings as keyword arguments, auth acme / pa:ss); each is killed at the end."""
    started: list[Mmsc] = []

    async def start(**env: str) -> Mmsc:
        mmsc = Mmsc({"MMSC_USERNAME": USER, "MMSC_PASSWORD": PASSWORD, **env})
        started.append(mmsc)
        return await mmsc.start()

    yield start
    for mmsc in started:
        await mmsc.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(auth=(USER, PASSWORD), timeout=10) as http:
        yield http


async def post(http: httpx.AsyncClient, mmsc: Mmsc, request: tuple[str, bytes]) -> httpx.Response:
    return await http.post(mmsc.url, content=request[1], headers={"Content-Type": request[0], "SOAPAction": '""'})


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    def message(self) -> EmailMessage:
        """The body as a MIME message (stdlib parser)."""
        head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
        message = message_from_bytes(head + self.body, policy=default_policy)
        assert isinstance(message, EmailMessage)
        return message

    def soap(self) -> ET.Element:
        if not self.headers["content-type"].startswith("multipart/"):
            return ET.fromstring(self.body)
        message = self.message()
        start = message.get_param("start")
        assert isinstance(start, str)
        soap = next(p for p in message.iter_parts() if p["Content-ID"] == start)
        payload = soap.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return ET.fromstring(payload)


@dataclass
class Vasp:
    url: str = ""
    received: list[Received] = field(default_factory=list)

    async def wait(self, count: int, within: float = 10.0) -> list[Received]:
        async def probe() -> list[Received] | None:
            return self.received if len(self.received) >= count else None

        return await eventually(probe, within, f"{count} request(s) at the VASP")


async def answer(request: Request) -> Response:
    """Record the request; answer its <xxxReq> with <xxxRsp> 1000, echoing the TransactionID."""
    vasp: Vasp = request.app.state.vasp
    body = await request.body()
    vasp.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
    name = re.search(rb"<(?:\w+:)?(\w+)Req\b", body)
    tx = re.search(rb"TransactionID[^>]*>([^<]+)<", body)
    ns = re.search(rb'Req xmlns(?::\w+)?="([^"]+)"', body)
    rsp = (name.group(1) if name else b"Unknown").decode() + "Rsp"
    header = (
        f'<env:Header><TransactionID xmlns="{REL6}">{tx.group(1).decode()}</TransactionID></env:Header>' if tx else ""
    )
    xml = (
        f'<env:Envelope xmlns:env="{SOAP_ENV}">{header}<env:Body><{rsp} xmlns="{ns.group(1).decode() if ns else REL6}">'
        "<MM7Version>6.8.0</MM7Version><Status><StatusCode>1000</StatusCode><StatusText>Success</StatusText>"
        f"</Status></{rsp}></env:Body></env:Envelope>"
    )
    return Response(xml, media_type="text/xml")


@pytest.fixture
async def vasp() -> AsyncIterator[Vasp]:
    stub = Vasp()
    app = Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])])
    app.state.vasp = stub
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    stub.url = f"http://127.0.0.1:{sock.getsockname()[1]}/mm7/inbound"
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool | None:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        return True if server.started else None

    try:
        await eventually(started, within=20, what="the VASP stub to start")
        yield stub
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        sock.close()


# ---- SubmitReq accepted


async def test_a_well_formed_rel6_submit_is_accepted(
    mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient
) -> None:
    mmsc = await mmscs()
    response = await post(client, mmsc, submit())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    tx = first(root, "TransactionID")
    assert tx.text == "tx-0001" and tx.get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
    rsp = body_element(root)
    assert rsp.tag == f"{{{REL6}}}SubmitRsp"
    assert [local(c.tag) for c in rsp] == ["MM7Version", "Status", "MessageID"]
    assert text_of(rsp, "MM7Version") == "6.8.0" and text_of(rsp, "StatusCode") == "1000"
    message_id = text_of(rsp, "MessageID")
    assert message_id

    event = mmsc.of("submit")[0]
    assert event["ok"] is True and event["problems"] == []
    expected = {
        "transactionId": "tx-0001",
        "namespace": "REL-6-MM7-1-4",
        "mm7Version": "6.8.0",
        "vaspId": "acme",
        "vasId": "12345mms",
        "sender": "12345",
        "senderType": "ShortCode",
        "recipients": ["15551230001"],
        "subject": "Hello & welcome",
        "expiryDate": "2030-01-02T03:04:05Z",
        "deliveryReport": True,
        "linkedId": "LNK-9",
        "smilRefsOk": True,
        "messageId": message_id,
        "status": 1000,
        "httpStatus": 200,
        "soapAction": '""',
        "contentType": "multipart/related",
        "href": "cid:mms-content",
    }
    assert {k: event[k] for k in expected} == expected
    assert event["recipientTypes"] == [{"field": "To", "type": "Number", "value": "15551230001"}]
    assert event["elements"] == list(children())
    parts = {p["contentId"]: p for p in event["parts"]}
    assert parts["smil"]["contentType"] == "application/smil"
    assert parts["img1"] == {
        "contentType": "image/jpeg",
        "charset": None,
        "contentId": "img1",
        "location": "img1.jpg",
        "transferEncoding": "base64",
        "size": len(JPEG),
        "sha256": sha(JPEG),
    }
    assert parts["txt1"]["sha256"] == sha(TEXT.encode())
    assert parts["txt1"]["transferEncoding"] == "quoted-printable" and parts["txt1"]["charset"] == "utf-8"
    assert parts["txt1"]["location"] == "txt1.txt"


async def test_a_rel5_submit_with_prefixes_mixed_content_and_lenient_ids(
    mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient
) -> None:
    """REL-5-MM7-1-2 / 5.3.0 under an mm7: prefix; no start (the SOAP part is the first text/xml part); href
    without cid:; Content-IDs without <>; multipart/mixed content (no SMIL)."""
    mmsc = await mmscs()
    body = children(version="5.3.0", recipients=("15551230001", "15551230002"), href="mms-content")
    xml = envelope(list(body.values()), ns=REL5, tx="tx-rel5", prefix=True)
    content = multipart("mixed", [leaf(JPEG, "image/jpeg", "img1"), text_part(TEXT, "txt1", "t.txt")], "mms-content")
    response = await post(client, mmsc, soap_with(xml, content, start=False))
    assert response.status_code == 200, response.text
    rsp = body_element(ET.fromstring(response.content))
    assert rsp.tag == f"{{{REL5}}}SubmitRsp" and text_of(rsp, "MM7Version") == "5.3.0"
    assert text_of(ET.fromstring(response.content), "TransactionID") == "tx-rel5"
    event = mmsc.of("submit")[0]
    assert event["ok"] is True, event["problems"]
    assert event["namespace"] == "REL-5-MM7-1-2" and event["mm7Version"] == "5.3.0"
    assert event["recipients"] == ["15551230001", "15551230002"]
    assert event["contentType"] == "multipart/mixed" and event["smilRefsOk"] is None
    assert [(p["contentId"], p["sha256"]) for p in event["parts"]] == [
        ("img1", sha(JPEG)),
        ("txt1", sha(TEXT.encode())),
    ]


async def test_binary_parts_keep_every_byte(mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient) -> None:
    """Content-Transfer-Encoding binary with CRLF, lone LF and lone CR inside (assembled by hand: the stdlib
    generator rewrites line breaks)."""
    mmsc = await mmscs()
    image = b"\xff\xd8a\r\nb\nc\rd\r\n\r\n--not-a-boundary\r\n\x00\xff\xd9"
    xml = envelope(list(children().values())).encode()
    body = (
        b"--outer\r\nContent-Type: text/xml; charset=utf-8\r\nContent-ID: <soap-start>\r\n\r\n" + xml + b"\r\n"
        b'--outer\r\nContent-Type: multipart/related; boundary=inner; type="application/smil"; start="<smil>"\r\n'
        b"Content-ID: <mms-content>\r\n\r\n"
        b"--inner\r\nContent-Type: application/smil\r\nContent-ID: <smil>\r\n\r\n"
        b'<smil><body><par dur="5s"><img src="cid:img1" region="Image"/></par></body></smil>\r\n'
        b"--inner\r\nContent-Type: image/jpeg\r\nContent-ID: <img1>\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + image
        + b"\r\n--inner--\r\n\r\n--outer--\r\n"
    )
    content_type = 'multipart/related; type="text/xml"; start="<soap-start>"; boundary=outer'
    response = await post(client, mmsc, (content_type, body))
    assert response.status_code == 200, response.text
    event = mmsc.of("submit")[0]
    assert event["ok"] is True, event["problems"]
    image_part = next(p for p in event["parts"] if p["contentId"] == "img1")
    assert (image_part["size"], image_part["sha256"]) == (len(image), sha(image))


# ---- SubmitReq refused as malformed


def swapped(a: str, b: str) -> list[str]:
    """The children in schema order but for two swapped."""
    body = children()
    names = list(body)
    i, j = names.index(a), names.index(b)
    names[i], names[j] = names[j], names[i]
    return [body[n] for n in names]


SMIL_BROKEN = SMIL.replace('src="cid:img1"', 'src="cid:nope"')
MALFORMED: dict[str, tuple[Callable[[], tuple[str, bytes]], list[str]]] = {
    "wrong order": (
        lambda: soap_with(envelope(swapped("DeliveryReport", "Subject")), slides()),
        ["out of order: DeliveryReport after Subject"],
    ),
    "MM7Version not first": (
        lambda: soap_with(envelope(swapped("MM7Version", "SenderIdentification")), slides()),
        ["MM7Version is not the first child", "out of order: MM7Version after SenderIdentification"],
    ),
    "missing Recipients": (lambda: submit(Recipients=None), ["missing Recipients"]),
    "unresolved SMIL src": (
        lambda: soap_with(envelope(list(children().values())), slides(SMIL_BROKEN)),
        ["SMIL src cid:nope matches no part"],
    ),
    "unresolved Content href": (
        lambda: submit(Content='<Content href="cid:elsewhere"/>'),
        ["Content href cid:elsewhere matches no MIME part"],
    ),
    "missing TransactionID": (
        lambda: soap_with(envelope(list(children().values()), tx=None), slides()),
        ["missing TransactionID in the SOAP Header"],
    ),
    "no mustUnderstand": (
        lambda: soap_with(envelope(list(children().values()), must_understand=False), slides()),
        ['TransactionID lacks mustUnderstand="1"'],
    ),
    "version mismatch": (
        lambda: submit(MM7Version="<MM7Version>5.3.0</MM7Version>"),
        ["MM7Version 5.3.0 does not match namespace REL-6-MM7-1-4 (expects 6.8.0)"],
    ),
    "unknown namespace": (
        lambda: soap_with(envelope(list(children().values()), ns=SCHEMA + "REL-6-MM7-1-9"), slides()),
        [f"unknown MM7 namespace {SCHEMA}REL-6-MM7-1-9"],
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_a_malformed_submit_gets_fault_2007_naming_the_problem(
    case: str, mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient
) -> None:
    build, problems = MALFORMED[case]
    mmsc = await mmscs()
    response = await post(client, mmsc, build())
    assert response.status_code == 500
    root = ET.fromstring(response.content)
    fault = body_element(root)
    assert local(fault.tag) == "Fault" and text_of(fault, "faultcode") == "env:Client"
    error = first(fault, "RSErrorRsp")
    assert text_of(error, "StatusCode") == "2007" and text_of(error, "StatusText") == "Message format corrupt"
    assert text_of(error, "Details") == "; ".join(problems)
    tx = [e.text for e in root.iter() if local(e.tag) == "TransactionID"]
    assert tx == ([] if case == "missing TransactionID" else ["tx-0001"])
    event = mmsc.of("submit")[0]
    assert (event["ok"], event["status"], event["httpStatus"], event["messageId"]) == (False, 2007, 500, None)
    assert event["problems"] == problems
    if case == "unresolved SMIL src":
        assert event["smilRefsOk"] is False


async def test_other_operations_get_4003(mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient) -> None:
    mmsc = await mmscs()
    xml = envelope(
        [
            "<MM7Version>6.8.0</MM7Version>",
            "<SenderIdentification><VASPID>acme</VASPID></SenderIdentification>",
            "<MessageID>M1</MessageID>",
        ],
        operation="CancelReq",
        tx="tx-cancel",
    )
    response = await client.post(mmsc.url, content=xml, headers={"Content-Type": "text/xml; charset=utf-8"})
    assert response.status_code == 500
    root = ET.fromstring(response.content)
    assert text_of(root, "StatusCode") == "4003" and text_of(root, "TransactionID") == "tx-cancel"
    assert text_of(root, "faultcode") == "env:Server"
    assert mmsc.of("unsupported", operation="CancelReq", transactionId="tx-cancel", status=4003)


async def test_basic_auth_is_required(mmscs: Callable[..., Awaitable[Mmsc]]) -> None:
    mmsc = await mmscs()
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await post(http, mmsc, submit())
        wrong = await http.post(
            mmsc.url, content=submit()[1], headers={"Content-Type": submit()[0], "Authorization": basic(USER, "nope")}
        )
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic ")
    assert [e["username"] for e in mmsc.of("auth_failed")] == [None, USER]
    assert mmsc.of("submit") == []


# ---- faults on purpose and delays


def fault_code(response: httpx.Response) -> str:
    root = ET.fromstring(response.content)
    assert local(body_element(root).tag) == "Fault"
    return text_of(first(root, "RSErrorRsp"), "StatusCode")


async def test_fault_every_and_fault_to(mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient) -> None:
    mmsc = await mmscs(FAULT_EVERY="3", FAULT_CODE="3100", FAULT_TO="15550000002:2002")
    answers = [await post(client, mmsc, submit()) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 500]
    assert fault_code(answers[2]) == "3100"
    assert text_of(ET.fromstring(answers[2].content), "faultcode") == "env:Server"
    refused = await post(
        client, mmsc, submit(Recipients="<Recipients><To><Number>15550000002</Number></To></Recipients>")
    )
    assert refused.status_code == 500 and fault_code(refused) == "2002"
    assert text_of(ET.fromstring(refused.content), "TransactionID") == "tx-0001"
    assert [(e["status"], e["ok"]) for e in mmsc.of("submit")] == [
        (1000, True),
        (1000, True),
        (3100, True),
        (2002, True),
    ]

    always = await mmscs(FAULT_ALL="4006")
    response = await post(client, always, submit())
    assert response.status_code == 500 and fault_code(response) == "4006"


async def test_delay_before_answering(mmscs: Callable[..., Awaitable[Mmsc]]) -> None:
    mmsc = await mmscs(DELAY_MS="1500")
    async with httpx.AsyncClient(auth=(USER, PASSWORD), timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await post(http, mmsc, submit())
    assert mmsc.of("submit", status=1000, delayMs=1500)
    await mmsc.wait_for(lambda e: e["event"] == "client_gone", within=10, what="the peer to see the client gone")


# ---- towards the VASP


def addresses(element: ET.Element) -> list[tuple[str, str]]:
    return [(local(a.tag), a.text or "") for a in element]


async def test_delivery_reports_follow_a_submit(
    mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient, vasp: Vasp
) -> None:
    mmsc = await mmscs(VASP_URL=vasp.url, VASP_USERNAME=VASP_USER, VASP_PASSWORD=VASP_PASSWORD, REPORT_STATUS="Expired")
    body = children(version="5.3.0", recipients=("15551230001", "15551230002"))
    response = await post(client, mmsc, soap_with(envelope(list(body.values()), ns=REL5), slides()))
    assert response.status_code == 200, response.text
    message_id = text_of(ET.fromstring(response.content), "MessageID")
    received = await vasp.wait(2)
    sent = await mmsc.gather("report_sent", 2)
    reports = []
    for got in received:
        assert got.headers["authorization"] == basic(VASP_USER, VASP_PASSWORD)
        assert got.headers["content-type"].startswith("text/xml") and got.headers["soapaction"] == '""'
        root = ET.fromstring(got.body)
        assert first(root, "TransactionID").get(f"{{{SOAP_ENV}}}mustUnderstand") == "1"
        req = body_element(root)
        assert req.tag == f"{{{REL5}}}DeliveryReportReq"
        assert [local(c.tag) for c in req] == [
            "MM7Version",
            "MMSRelayServerID",
            "MessageID",
            "Recipient",
            "Sender",
            "Date",
            "MMStatus",
            "StatusText",
        ]
        assert text_of(req, "MM7Version") == "5.3.0" and text_of(req, "MessageID") == message_id
        assert text_of(req, "MMStatus") == "Expired"
        assert addresses(first(req, "Sender")) == [("ShortCode", "12345")]
        reports.append((addresses(first(req, "Recipient"))[0], text_of(root, "TransactionID")))
    assert sorted(r for r, _ in reports) == [("Number", "15551230001"), ("Number", "15551230002")]
    assert len({tx for _, tx in reports}) == 2
    for event in sent:
        assert (event["httpStatus"], event["response"], event["statusCode"], event["txEchoed"]) == (
            200,
            "DeliveryReportRsp",
            1000,
            True,
        )
        assert event["messageId"] == message_id and event["mmStatus"] == "Expired" and event["elapsedMs"] >= 0

    await mmsc.send(
        {
            "cmd": "report",
            "messageId": message_id,
            "status": "Rejected",
            "recipient": "15551230002",
            "transactionId": "dr-given",
        }
    )
    later = (await vasp.wait(3))[2]
    req = body_element(ET.fromstring(later.body))
    assert text_of(req, "MMStatus") == "Rejected" and addresses(first(req, "Recipient")) == [("Number", "15551230002")]
    assert addresses(first(req, "Sender")) == [("ShortCode", "12345")]
    assert (await mmsc.gather("report_sent", 1, transactionId="dr-given"))[0]["txEchoed"] is True


async def test_no_report_unless_asked(
    mmscs: Callable[..., Awaitable[Mmsc]], client: httpx.AsyncClient, vasp: Vasp
) -> None:
    mmsc = await mmscs()
    await mmsc.set_vasp(vasp.url)
    first_answer = await post(client, mmsc, submit(DeliveryReport="<DeliveryReport>false</DeliveryReport>"))
    second_answer = await post(client, mmsc, submit())
    assert first_answer.status_code == second_answer.status_code == 200
    received = await vasp.wait(1)
    await mmsc.gather("report_sent", 1)
    assert "authorization" not in received[0].headers
    assert text_of(ET.fromstring(received[0].body), "MessageID") == text_of(
        ET.fromstring(second_answer.content), "MessageID"
    )
    assert len(vasp.received) == 1 and len(mmsc.of("report_sent")) == 1


def parts_of(received: Received) -> tuple[ET.Element, Message, list[Message]]:
    """(DeliverReq, content part, its leaves), found by start and Content@href like a VASP would."""
    req = body_element(received.soap())
    href = first(req, "Content").get("href") or ""
    content = next(p for p in received.message().iter_parts() if p["Content-ID"] == f"<{href.removeprefix('cid:')}>")
    assert isinstance(content, EmailMessage)
    return req, content, list(content.iter_parts())


def payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


async def test_deliver_req_mixed_and_related(mmscs: Callable[..., Awaitable[Mmsc]], vasp: Vasp) -> None:
    mmsc = await mmscs()
    await mmsc.set_vasp(vasp.url, VASP_USER, VASP_PASSWORD)
    media = [
        {"contentType": "image/jpeg", "base64": base64.b64encode(JPEG).decode(), "name": "photo.jpg"},
        {
            "contentType": "text/plain; charset=utf-8",
            "base64": base64.b64encode(TEXT.encode()).decode(),
            "name": "t.txt",
        },
    ]
    await mmsc.send(
        {
            "cmd": "deliver",
            "from": "15557654321",
            "to": "12345",
            "subject": "pic",
            "linkedId": "LNK-77",
            "transactionId": "mo-77",
            "parts": media,
        }
    )
    await mmsc.send({"cmd": "deliver", "from": "15557654321", "to": "12345", "parts": media, "content": "related"})
    received = await vasp.wait(2)
    events = await mmsc.gather("deliver_sent", 2)
    mixed = next(r for r in received if b"mo-77" in r.body)
    related = next(r for r in received if r is not mixed)

    assert mixed.headers["authorization"] == basic(VASP_USER, VASP_PASSWORD)
    assert mixed.headers["content-type"].startswith("multipart/related")
    req, content, leaves = parts_of(mixed)
    assert req.tag == f"{{{REL6}}}DeliverReq" and text_of(req, "MM7Version") == "6.8.0"
    assert [local(c.tag) for c in req] == [
        "MM7Version",
        "MMSRelayServerID",
        "LinkedID",
        "Sender",
        "Recipients",
        "TimeStamp",
        "Subject",
        "Content",
    ]
    assert addresses(first(req, "Sender")) == [("Number", "15557654321")]
    assert addresses(first(req, "To")) == [("ShortCode", "12345")]
    assert (text_of(req, "LinkedID"), text_of(req, "Subject")) == ("LNK-77", "pic")
    assert content.get_content_type() == "multipart/mixed"
    assert [(p.get_content_type(), p["Content-Location"], payload(p)) for p in leaves] == [
        ("image/jpeg", "photo.jpg", JPEG),
        ("text/plain", "t.txt", TEXT.encode()),
    ]

    req, content, leaves = parts_of(related)
    assert content.get_content_type() == "multipart/related" and content.get_param("type") == "application/smil"
    smil = next(p for p in leaves if p["Content-ID"] == content.get_param("start"))
    srcs = [e.get("src") for e in ET.fromstring(payload(smil)).iter() if e.get("src")]
    ids = {f"cid:{(p['Content-ID'] or '').strip('<>')}" for p in leaves}
    assert srcs == ["cid:photo.jpg", "cid:t.txt"] and set(srcs) <= ids
    regions = [e.get("region") for e in ET.fromstring(payload(smil)).iter() if e.get("src")]
    assert regions == ["Image", "Text"]

    for event in events:
        assert (event["httpStatus"], event["response"], event["statusCode"], event["txEchoed"]) == (
            200,
            "DeliverRsp",
            1000,
            True,
        )
    assert {e["transactionId"] for e in events} >= {"mo-77"} and len({e["transactionId"] for e in events}) == 2


async def test_read_reply_and_raw(mmscs: Callable[..., Awaitable[Mmsc]], vasp: Vasp) -> None:
    mmsc = await mmscs(VASP_URL=vasp.url, MM7_NS="REL-5-MM7-1-0")
    await mmsc.send({"cmd": "readreply", "messageId": "M-1", "recipient": "15551230001", "sender": "12345"})
    raw = b"<not>soap</not>"
    await mmsc.send({"cmd": "raw", "contentType": "application/xml", "body": base64.b64encode(raw).decode()})
    received = await vasp.wait(2)
    reply = next(r for r in received if b"ReadReplyReq" in r.body)
    req = body_element(ET.fromstring(reply.body))
    assert req.tag == f"{{{SCHEMA}REL-5-MM7-1-0}}ReadReplyReq" and text_of(req, "MM7Version") == "5.3.0"
    assert (text_of(req, "MessageID"), text_of(req, "MMStatus")) == ("M-1", "Read")
    assert text_of(req, "TimeStamp")
    other = next(r for r in received if r is not reply)
    assert other.body == raw and other.headers["content-type"] == "application/xml"
    event: Event = (await mmsc.gather("readreply_sent", 1))[0]
    assert (event["response"], event["statusCode"], event["txEchoed"]) == ("ReadReplyRsp", 1000, True)
    assert (await mmsc.gather("raw_sent", 1))[0]["httpStatus"] == 200
