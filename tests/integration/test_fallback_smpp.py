"""SMS fallback over a real SMPP connection, in process: the gateway's workers (SQLite and PostgreSQL)
with an SMPP connection in the store, the SMSC peer (npm `smpp`, tests/peers/smsc-sim.js) on loopback,
a sandbox handset that cannot take MMS, and a postback receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mmsgate.carriers.smpp.settings import SMPP, SmppConnection
from mmsgate.core.codes import MessageState
from mmsgate.core.records import Behaviour, Handset
from mmsgate.store import Store
from tests.integration.test_delivery import Gateway, gateway_settings, running_gateway
from tests.smsc import Smsc

SYSTEM_ID, PASSWORD = "mmsgate", "pw12345"
TEXT = [{"message-text": "Your parcel is on its way"}]


async def gateway_with_smsc(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, smsc: Smsc, password: str = PASSWORD
) -> AsyncIterator[Gateway]:
    config = SmppConnection(host="127.0.0.1", port=smsc.port, system_id=SYSTEM_ID, password=password)
    await store.connections.add_connection("peer", SMPP, config.stored())
    async with running_gateway(store, gateway_settings(tmp_path, backend, request)) as gateway:
        yield gateway


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    peer = await Smsc({"SMSC_SYSTEM_ID": SYSTEM_ID, "SMSC_PASSWORD": PASSWORD, "RECEIPT_STATUS": "DELIVRD"}).start()
    yield peer
    await peer.stop()


@pytest.fixture
async def undelivering_smsc() -> AsyncIterator[Smsc]:
    peer = await Smsc({"SMSC_SYSTEM_ID": SYSTEM_ID, "SMSC_PASSWORD": PASSWORD, "RECEIPT_STATUS": "UNDELIV"}).start()
    yield peer
    await peer.stop()


@pytest.fixture
async def gateway(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, smsc: Smsc
) -> AsyncIterator[Gateway]:
    async for gateway in gateway_with_smsc(store, backend, tmp_path, request, smsc):
        yield gateway


async def bound(smsc: Smsc) -> None:
    await smsc.wait_for(lambda e: e.get("event") == "bind" and e.get("ok") is True, within=20, what="the bind")


async def test_long_fallback_sms_goes_in_segments_and_is_delivered_once_every_segment_is(
    gateway: Gateway, smsc: Smsc
) -> None:
    caller, secret = await gateway.account()
    await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.NO_MMS))
    await bound(smsc)
    text = "Your parcel [ref {A-17}] is out for delivery today; " * 4  # extension characters: count twice
    tracking_id = await gateway.send(caller, client_reference="parcel-1", fallback_sms_text=text.strip(), slide=TEXT)
    (delivered,) = await gateway.postbacks(tracking_id, ["N202"])
    assert delivered.signed_by(secret)
    body = delivered.json
    assert (body["sent-as"], body["tracking-id"], body["client-reference"]) == ("SMS", tracking_id, "parcel-1")
    segments = await gateway.store.messages.sms_segments(tracking_id)
    assert len(segments) >= 2 and all(s.status == "delivered" for s in segments)
    complete = await smsc.wait_for(lambda e: e.get("event") == "complete", what="the reassembled SMS")
    assert complete["text"].startswith(text.strip() + " http")
    assert complete["total"] == len(segments)
    assert body["status-details"] == f"SMS delivered ({len(segments)} parts)"


async def test_receipts_saying_undelivered_end_the_message_e202(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, undelivering_smsc: Smsc
) -> None:
    async for gateway in gateway_with_smsc(store, backend, tmp_path, request, undelivering_smsc):
        caller, _ = await gateway.account()
        await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.NO_MMS))
        await bound(undelivering_smsc)
        tracking_id = await gateway.send(caller, client_reference="ref-e202", slide=TEXT)
        (failed,) = await gateway.postbacks(tracking_id, ["E202"])
        body = failed.json
        assert (body["status"], body["sent-as"], body["client-reference"]) == ("Fallback SMS failed", "SMS", "ref-e202")
        assert "UNDELIV" in body["status-details"]
        assert (await gateway.store.messages.find_message(tracking_id)).state is MessageState.SMS_FAILED


async def test_refused_bind_ends_the_fallback_e202_with_the_reason(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, smsc: Smsc
) -> None:
    async for gateway in gateway_with_smsc(store, backend, tmp_path, request, smsc, password="wrong"):
        caller, _ = await gateway.account()
        await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.NO_MMS))
        await smsc.wait_for(lambda e: e.get("event") == "bind" and e.get("ok") is False, within=20, what="a refusal")
        tracking_id = await gateway.send(caller, slide=TEXT)
        (failed,) = await gateway.postbacks(tracking_id, ["E202"])
        assert "peer" in failed.json["status-details"] and "bind" in failed.json["status-details"].lower()
        assert smsc.accepted() == []


async def test_inbound_sms_reaches_the_account_as_n401_with_the_text_as_a_file(gateway: Gateway, smsc: Smsc) -> None:
    caller, secret = await gateway.account()
    await bound(smsc)
    words = "STOP sending me offers, thank you — it's been a pleasure ☺ " * 3
    await smsc.send({"cmd": "mo", "from": "15550100077", "to": caller.sender, "text": words})

    await gateway.receiver.wait_for(lambda received: any(r.json.get("code") == "N401" for r in received))
    (n401,) = [r for r in gateway.receiver.received if r.json.get("code") == "N401"]
    assert n401.signed_by(secret)
    body = n401.json
    assert (body["from"], body["to"], body["keyword"]) == ("15550100077", caller.sender, "STOP")
    (content,) = body["content"]
    answer = await gateway.http.get(httpx.URL(content["file"]).path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.content.decode() == words


async def test_inbound_sms_to_no_accounts_number_is_acknowledged_and_dropped(gateway: Gateway, smsc: Smsc) -> None:
    caller, _ = await gateway.account()
    await bound(smsc)
    await smsc.send({"cmd": "mo", "from": "15550100078", "to": "19995550000", "text": "anyone there?"})
    answered = await smsc.wait_for(lambda e: e.get("event") == "mo" and "status" in e, what="the MO's answer")
    assert (answered["status"], answered["attempt"]) == (0, 0)  # taken at once, never resent
    await smsc.send({"cmd": "mo", "from": "15550100078", "to": caller.sender, "text": "and now?"})
    await gateway.receiver.wait_for(lambda received: any(r.json.get("code") == "N401" for r in received))
    assert [r.json["from"] for r in gateway.receiver.received if r.json.get("code") == "N401"] == ["15550100078"]
