"""MM7 end to end, in process: the gateway (SQLite and PostgreSQL) served by uvicorn with its workers, an MM7
connection in the store, and the MMSC peer (tests/peers/mmsc-sim.js, Node with its own MIME and XML parsers)
that checks every SubmitReq, answers it, and posts delivery reports and inbound MMS to the VASP endpoint."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mmsgate.carriers.mm7.settings import MM7, Mm7Connection
from mmsgate.carriers.smpp.settings import SMPP, SmppConnection
from mmsgate.core.codes import MessageState
from mmsgate.core.passwords import hash_password
from mmsgate.store import Store
from tests import media_samples as samples
from tests.integration.media_origin import file_reply
from tests.integration.test_delivery import Gateway, gateway_settings, running_gateway
from tests.mmsc import Mmsc
from tests.serving import served
from tests.smsc import Smsc
from tests.waiting import eventually

USER, PASSWORD = "vasp-acme", "s3cret-out"
INBOUND_USER, INBOUND_PASSWORD = "mmsc-in", "s3cret-in"


@dataclass
class Mm7Gateway:
    gateway: Gateway
    url: str
    mmsc: Mmsc


@contextlib.asynccontextmanager
async def mm7_gateway(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, env: dict[str, str], **config: object
) -> AsyncIterator[Mm7Gateway]:
    mmsc = await Mmsc({"MMSC_USERNAME": USER, "MMSC_PASSWORD": PASSWORD, **env}).start()
    try:
        settings_ = gateway_settings(tmp_path, backend, request, sms_fallback_codes="Unrecognised")
        values: dict[str, object] = {
            "url": f"{mmsc.url}/mm7",
            "vasp_id": "acme",
            "vas_id": "28444mms",
            "username": USER,
            "password": PASSWORD,
            "inbound_username": INBOUND_USER,
            "inbound_password": INBOUND_PASSWORD,
            "timeout": 5.0,
            **config,
        }
        password = str(values.pop("inbound_password"))
        settings = Mm7Connection(**values, inbound_password_hash=hash_password(password))  # type: ignore[arg-type]
        await store.connections.add_connection("carrier", MM7, settings.stored())
        async with running_gateway(store, settings_) as gateway, served(gateway.app) as url:
            await mmsc.set_vasp(f"{url}/mm7/carrier", INBOUND_USER, INBOUND_PASSWORD)
            yield Mm7Gateway(gateway, url, mmsc)
    finally:
        await mmsc.stop()


@pytest.fixture
async def mm7(store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Mm7Gateway]:
    async with mm7_gateway(store, backend, tmp_path, request, {}) as gateway:
        yield gateway


async def test_sendmms_goes_over_mm7_and_the_report_makes_it_delivered(mm7: Mm7Gateway) -> None:
    gw = mm7.gateway
    caller, secret = await gw.account()
    photo = samples.jpeg(320, 240)
    url = gw.origin.route("/mm7.jpg", file_reply(photo, "image/jpeg"))
    tracking_id = await gw.send(
        caller,
        client_reference="mm7-1",
        message_subject="Über MM7 ☕",
        slide=[{"message-text": "Hello over MM7", "image": {"url": url}}, {"message-text": "second"}],
    )
    sent, delivered = await gw.postbacks(tracking_id, ["N101", "N102"])
    assert sent.signed_by(secret) and delivered.signed_by(secret)
    assert delivered.json["client-reference"] == "mm7-1" and delivered.json["sent-as"] == "MMS"

    (submit,) = mm7.mmsc.of("submit")
    assert submit["ok"] is True, submit["problems"]
    assert submit["smilRefsOk"] is True
    assert (submit["vaspId"], submit["vasId"], submit["recipients"]) == ("acme", "28444mms", [caller.to])
    assert (submit["sender"], submit["subject"], submit["transactionId"]) == (caller.sender, "Über MM7 ☕", tracking_id)
    assert submit["mm7Version"] == "6.8.0" and submit["deliveryReport"] in (True, "true")
    hashes = {p["sha256"] for p in submit["parts"]}
    assert hashlib.sha256(photo).hexdigest() in hashes
    assert hashlib.sha256(b"Hello over MM7").hexdigest() in hashes
    message = await gw.store.messages.find_message(tracking_id)
    assert (message.state, message.carrier, message.carrier_message_id) == (
        MessageState.DELIVERED,
        "carrier",
        submit["messageId"],
    )
    (report,) = await mm7.mmsc.gather("report_sent", 1)
    assert (report["httpStatus"], report["response"], report["statusCode"]) == (200, "DeliveryReportRsp", 1000)
    assert report["txEchoed"] is True


@pytest.mark.parametrize("version", ["REL-5-MM7-1-2", "REL-6-MM7-1-0"])
async def test_each_connection_speaks_its_own_mm7_version(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, version: str
) -> None:
    async with mm7_gateway(store, backend, tmp_path, request, {}, version=version) as mm7:
        caller, _ = await mm7.gateway.account()
        tracking_id = await mm7.gateway.send(caller, slide=[{"message-text": "versioned"}])
        await mm7.gateway.postbacks(tracking_id, ["N101", "N102"])
        (submit,) = mm7.mmsc.of("submit")
        assert submit["ok"] is True, submit["problems"]
        assert submit["namespace"] == version
        assert submit["mm7Version"] == ("5.3.0" if version.startswith("REL-5") else "6.8.0")


async def test_a_permanent_fault_rejects_the_message(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with mm7_gateway(store, backend, tmp_path, request, {"FAULT_ALL": "2002"}) as mm7:
        caller, _ = await mm7.gateway.account()
        tracking_id = await mm7.gateway.send(caller, slide=[{"message-text": "to nowhere"}])
        (rejected,) = await mm7.gateway.postbacks(tracking_id, ["E102"])
        assert "2002" in rejected.json["status-details"]
        assert len(mm7.mmsc.of("submit")) == 1  # not tried again


async def test_throttling_backs_off_and_delivers_once(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {"FAULT_EVERY": "1", "FAULT_CODE": "3100"}
    async with mm7_gateway(store, backend, tmp_path, request, env) as mm7:
        caller, _ = await mm7.gateway.account()
        tracking_id = await mm7.gateway.send(caller, slide=[{"message-text": "busy network"}])
        await mm7.mmsc.gather("submit", 1, status=3100)
        # the MMSC stops throttling: the gateway's next attempt (after its back-off) goes through
        await mm7.mmsc.send({"cmd": "faults", "every": 0})
        await mm7.mmsc.gather("faults_set", 1)
        await mm7.gateway.postbacks(tracking_id, ["N101", "N102"], within=30)
        submits = mm7.mmsc.of("submit")
        assert [s["status"] for s in submits] == [3100, 1000]
        assert submits[1]["t"] - submits[0]["t"] >= 4000  # backed off (5 s, less the clocks' jitter)


async def test_inbound_mms_over_mm7_reaches_the_account_once_with_its_exact_parts(mm7: Mm7Gateway) -> None:
    gw = mm7.gateway
    caller, secret = await gw.account()
    photo = samples.jpeg(64, 48)
    parts = [
        {"contentType": "image/jpeg", "base64": base64.b64encode(photo).decode(), "name": "photo.jpg"},
        {"contentType": "text/plain; charset=utf-8", "base64": base64.b64encode("Hi ☺".encode()).decode()},
    ]
    mo = {"cmd": "deliver", "from": "+15557654321", "to": caller.sender, "subject": "INFO please"}
    for _ in range(2):  # the MMSC sends it again (same TransactionID and LinkedID)
        await mm7.mmsc.send({**mo, "transactionId": "mo-77", "linkedId": "LNK-77", "parts": parts})
    answers = await mm7.mmsc.gather("deliver_sent", 2)
    assert [(a["httpStatus"], a["response"], a["statusCode"], a["txEchoed"]) for a in answers] == [
        (200, "DeliverRsp", 1000, True)
    ] * 2
    await gw.receiver.wait_for(lambda received: any(r.json.get("code") == "N401" for r in received))
    (n401,) = [r for r in gw.receiver.received if r.json.get("code") == "N401"]
    assert n401.signed_by(secret)
    body = n401.json
    assert (body["from"], body["to"], body["keyword"], body["message-subject"]) == (
        "15557654321",
        caller.sender,
        "INFO",
        "INFO please",
    )
    files = [await gw.http.get(httpx.URL(c["file"]).path) for c in body["content"]]
    assert [(f.headers["content-type"], f.content) for f in files] == [
        ("image/jpeg", photo),
        ("text/plain; charset=utf-8", "Hi ☺".encode()),
    ]
    # a moment later, still one N401: the repeat was answered but not handled again
    await mm7.mmsc.send({**mo, "transactionId": "mo-78", "parts": parts[1:]})
    await gw.receiver.wait_for(lambda received: len([r for r in received if r.json.get("code") == "N401"]) == 2)
    assert [r.json["tracking-id"] != body["tracking-id"] for r in gw.receiver.received if r.json["code"] == "N401"]


async def test_the_vasp_endpoint_refuses_strangers_and_unknown_operations(mm7: Mm7Gateway) -> None:
    async with httpx.AsyncClient(base_url=mm7.url, timeout=10) as http:
        unauthorised = await http.post("/mm7/carrier", content=b"<x/>", auth=(INBOUND_USER, "wrong"))
        assert unauthorised.status_code == 401 and "Basic" in unauthorised.headers["www-authenticate"]
        assert (
            await http.post("/mm7/nobody", content=b"<x/>", auth=(INBOUND_USER, INBOUND_PASSWORD))
        ).status_code == 404
        garbage = await http.post("/mm7/carrier", content=b"not xml", auth=(INBOUND_USER, INBOUND_PASSWORD))
        assert garbage.status_code == 500 and b"2007" in garbage.content
    await mm7.mmsc.send({"cmd": "raw", "contentType": "text/xml", "body": base64.b64encode(CANCEL).decode()})
    (answer,) = await mm7.mmsc.gather("raw_sent", 1)
    assert (answer["httpStatus"], answer["statusCode"]) == (500, 4003)


CANCEL = b"""<?xml version="1.0"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header>
<TransactionID xmlns="http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4">c-1</TransactionID>
</env:Header><env:Body>
<CancelReq xmlns="http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4">
<MM7Version>6.8.0</MM7Version><MessageID>m-1</MessageID></CancelReq></env:Body></env:Envelope>"""


REPORTED = {
    "Retrieved": ["N101", "N102"],
    "Forwarded": ["N101", "N102"],
    "Rejected": ["N101", "E102"],
    "Expired": ["N101", "N103"],
    "Unrecognized": ["N101", "E102"],
    "Unrecognised": ["N101", "E202"],  # listed as "cannot take MMS": the SMS fallback, and no SMS connection here
}
"""Every MMStatus of TS 23.140 that ends a message, and the postbacks it ends in."""
WAITING = ("Deferred", "Indeterminate")
"""The MMStatus values that do not end a message: it keeps waiting for its final report."""


async def test_every_mm7_report_status_ends_the_message_as_it_should(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """One message per MMStatus, each first reported Deferred by the MMSC, then with its own status."""
    async with mm7_gateway(store, backend, tmp_path, request, {"REPORT_STATUS": "Deferred"}) as mm7:
        caller, _ = await mm7.gateway.account()
        statuses = [*REPORTED, *WAITING]
        sent = {status: await mm7.gateway.send(caller, slide=[{"message-text": status}]) for status in statuses}
        for tracking_id in sent.values():
            await mm7.gateway.postbacks(tracking_id, ["N101"])
        await mm7.mmsc.gather("report_sent", len(statuses))
        carrier_ids = {s["transactionId"]: s["messageId"] for s in mm7.mmsc.of("submit")}
        for status, tracking_id in sent.items():
            await mm7.mmsc.send({"cmd": "report", "messageId": carrier_ids[tracking_id], "status": status})
        await mm7.mmsc.gather("report_sent", 2 * len(statuses), statusCode=1000)

        ended = {status: (await mm7.gateway.postbacks(sent[status], codes))[-1] for status, codes in REPORTED.items()}
        for status in ("Rejected", "Expired", "Unrecognized"):
            assert f"MMStatus {status}" in ended[status].json["status-details"]
        assert ended["Forwarded"].json["status"] == ended["Retrieved"].json["status"] == "Delivered"
        for status, state in [("Forwarded", MessageState.DELIVERED), ("Rejected", MessageState.REJECTED)]:
            assert (await store.messages.find_message(sent[status])).state is state

        async def noted(tracking_id: str, status: str) -> list[str] | None:
            events = [f"{e.status}: {e.details}" for e in await store.messages.list_events(tracking_id)]
            reports = [e for e in events if e.startswith("Delivery report: MMStatus ")]
            # the MMSC's first report (Deferred) and the test's
            return (
                events if len(reports) == 2 and reports[-1].startswith(f"Delivery report: MMStatus {status}") else None
            )

        for status in WAITING:
            events = await eventually(functools.partial(noted, sent[status], status), 15, f"the {status} report")
            assert all(e.endswith("; still waiting") for e in events if e.startswith("Delivery report"))
            assert (await store.messages.find_message(sent[status])).state is MessageState.SUBMITTED
        received = [r.json.get("tracking-id") for r in mm7.gateway.receiver.received]
        assert all(received.count(sent[status]) == 1 for status in WAITING)  # N101 only


async def test_a_report_listed_as_cannot_take_mms_falls_back_to_an_sms_over_smpp(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    smsc = await Smsc({"SMSC_SYSTEM_ID": "gw", "SMSC_PASSWORD": "pw"}).start()
    try:
        config = SmppConnection(host="127.0.0.1", port=smsc.port, system_id="gw", password="pw")
        await store.connections.add_connection("smsc", SMPP, config.stored())
        async with mm7_gateway(store, backend, tmp_path, request, {"REPORT_STATUS": "Unrecognised"}) as mm7:
            caller, _ = await mm7.gateway.account()
            tracking_id = await mm7.gateway.send(caller, slide=[{"message-text": "hi"}], fallback_sms_text="See:")
            _, delivered = await mm7.gateway.postbacks(tracking_id, ["N101", "N202"])
            assert delivered.json["sent-as"] == "SMS"
            events = [e.status for e in await store.messages.list_events(tracking_id)]
            assert "Falling back to SMS" in events
            (sms,) = smsc.accepted()
            assert sms["text"].startswith("See: http")
            assert await store.sandbox.sandbox_sms_inbox(caller.to) == []
    finally:
        await smsc.stop()


async def test_a_real_handsets_fallback_never_lands_in_the_sandbox(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with mm7_gateway(store, backend, tmp_path, request, {"REPORT_STATUS": "Unrecognised"}) as mm7:
        caller, _ = await mm7.gateway.account()
        tracking_id = await mm7.gateway.send(caller, slide=[{"message-text": "hi"}], fallback_sms_text="See:")
        _, failed = await mm7.gateway.postbacks(tracking_id, ["N101", "E202"])
        assert failed.json["status-details"] == f"no SMS connection serves {caller.to}"
        assert await store.sandbox.sandbox_sms_inbox(caller.to) == []


async def test_read_replies_and_pending_reports_are_recorded_on_the_message(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with mm7_gateway(store, backend, tmp_path, request, {"REPORT_STATUS": "Deferred"}) as mm7:
        caller, _ = await mm7.gateway.account()
        tracking_id = await mm7.gateway.send(caller, slide=[{"message-text": "read me"}])
        await mm7.gateway.postbacks(tracking_id, ["N101"])
        (submit,) = mm7.mmsc.of("submit")
        await mm7.mmsc.gather("report_sent", 1)
        await mm7.mmsc.send({"cmd": "readreply", "messageId": submit["messageId"], "status": "Read"})
        await mm7.mmsc.gather("readreply_sent", 1, statusCode=1000)

        async def noted() -> list[str] | None:
            events = [f"{e.status}: {e.details}" for e in await store.messages.list_events(tracking_id)]
            wanted = ("Read reply: MMStatus Read", "Delivery report: MMStatus Deferred")
            return events if all(any(e.startswith(w) for e in events) for w in wanted) else None

        events = await eventually(noted, within=15, what="the read reply and the report to be recorded")
        assert any(e.startswith("Delivery report") and e.endswith("; still waiting") for e in events)
        assert (await store.messages.find_message(tracking_id)).state is MessageState.SUBMITTED


async def test_an_unanswered_submit_is_recorded_as_unknown_and_not_sent_again(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with mm7_gateway(store, backend, tmp_path, request, {"DELAY_MS": "4000"}, timeout=1.0) as mm7:
        caller, _ = await mm7.gateway.account()
        tracking_id = await mm7.gateway.send(caller, slide=[{"message-text": "slow MMSC"}])
        (failed,) = await mm7.gateway.postbacks(tracking_id, ["E101"], within=30)
        assert "may have the message" in failed.json["status-details"]
        assert len(mm7.mmsc.of("submit")) == 1
