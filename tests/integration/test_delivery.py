"""The delivery engine end to end, in process: API → media → sandbox carrier → reports → postbacks.

The gateway app runs over a real store (SQLite and PostgreSQL) with the real workers of
:func:`mmsgate.runtime.running_worker`; media come from a loopback origin and postbacks go to a
loopback receiver, both real HTTP servers on ports the kernel picks.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from mmsgate.app import create_app
from mmsgate.config import Settings, load_settings
from mmsgate.core.codes import MessageState
from mmsgate.core.model import iso, utcnow
from mmsgate.core.records import Behaviour, Handset
from mmsgate.runtime import Running, running_worker
from mmsgate.store import Store
from tests import media_samples as samples
from tests.conftest import Caller, provision
from tests.integration.media_origin import Origin, file_reply
from tests.receiver import HANG, Received, Receiver
from tests.waiting import eventually

API = "/ep/v2/"


@dataclass
class Gateway:
    """An in-process gateway with its workers, an origin for media and a postback receiver."""

    store: Store
    settings: Settings
    http: httpx.AsyncClient
    running: Running
    origin: Origin
    receiver: Receiver
    app: ASGIApp

    async def account(self, path: str = "/postbacks", sender: str = "28444") -> tuple[Caller, str]:
        """A provisioned account whose postbacks go to ``path`` on the receiver; returns its secret too."""
        caller = await provision(self.store, sender)
        account = await self.store.accounts.update_account(caller.account_id, postback_url=self.receiver.url(path))
        assert account.postback_secret
        return caller, account.postback_secret

    async def send(self, caller: Caller, **fields: object) -> str:
        response = await self.http.post(API, json=caller.body(**fields), headers={"x-api-key": caller.api_key})
        answer = response.json()
        assert answer["status"] == "success", answer
        return str(answer["tracking-id"])

    async def send_saved(self, caller: Caller, mms_id: str, fallback_sms_text: str) -> str:
        """``sendsavedmms`` of a template to the caller's handset; its tracking id."""
        answer = await self.http.post(
            API,
            json={
                "action": "sendsavedmms",
                "mms-id": mms_id,
                "service-id": caller.service_id,
                "to": caller.to,
                "from": caller.sender,
                "fallback-sms-text": fallback_sms_text,
            },
            headers={"x-api-key": caller.api_key},
        )
        return str(answer.json()["tracking-id"])

    async def postbacks(self, tracking_id: str, codes: list[str], within: float = 30.0) -> list[Received]:
        """Wait until the postbacks of ``tracking_id`` carry exactly ``codes`` (in order)."""

        def mine(received: list[Received]) -> list[Received]:
            return [r for r in received if r.json.get("tracking-id") == tracking_id]

        await self.receiver.wait_for(lambda received: len(mine(received)) >= len(codes), within)
        found = mine(self.receiver.received)
        assert [r.json["code"] for r in found] == codes, [r.json for r in found]
        return found


def gateway_settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest, **extra: object) -> Settings:
    database = str(request.getfixturevalue("pg_url")) if backend == "postgresql" else None
    values: dict[str, object] = {
        "data_dir": tmp_path / "gw",
        "database": database,
        "media_allow_networks": "127.0.0.0/8",
        "postback_allow_networks": "127.0.0.0/8",
        "media_processes": 1,
        "postback_retry_interval": 0.2,
        "postback_timeout": 3.0,
        **extra,
    }
    return load_settings(**values)


@contextlib.asynccontextmanager
async def running_gateway(store: Store, settings: Settings) -> AsyncIterator[Gateway]:
    """The app over ``store`` with its workers running, a media origin and a postback receiver."""
    origin = await Origin().start()
    receiver = await Receiver().start()
    app = create_app(settings, store)
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http,
            running_worker(settings, store) as running,
        ):
            app.state.endpoint.after_accept = running.wake
            app.state.inbound.after_keep = running.wake
            yield Gateway(store, settings, http, running, origin, receiver, app)
    finally:
        await receiver.close()
        await origin.close()


@pytest.fixture
async def gateway(store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    async with running_gateway(store, gateway_settings(tmp_path, backend, request)) as the_gateway:
        yield the_gateway


async def test_delivered_message_reports_sent_then_delivered_and_lands_in_the_inbox(gateway: Gateway) -> None:
    caller, secret = await gateway.account()
    photo = samples.jpeg(320, 240)
    url = gateway.origin.route("/photo.jpg", file_reply(photo, "image/jpeg"))
    tracking_id = await gateway.send(
        caller,
        client_reference="order-123",
        message_subject="Your receipt",
        slide=[{"message-text": "Thanks for your order ☕", "image": {"url": url}}, {"message-text": "See you"}],
    )
    sent, delivered = await gateway.postbacks(tracking_id, ["N101", "N102"])

    for postback in (sent, delivered):
        assert postback.signed_by(secret)
        assert postback.headers["content-type"] == "application/json"
        body = postback.json
        assert body["origin"] == "MMS_MT"
        assert body["client-reference"] == "order-123"
        assert (body["to"], body["from"], body["sent-as"]) == (caller.to, caller.sender, "MMS")
        assert body["event-id"].startswith("evt_")
    assert (sent.json["status"], delivered.json["status"]) == ("Sent", "Delivered")
    assert delivered.json["operator-id"] == "99999"
    assert sent.json["event-id"] != delivered.json["event-id"]

    message = await gateway.store.messages.find_message(tracking_id)
    assert message.state is MessageState.DELIVERED
    inbox = await gateway.http.get(f"/v1/sandbox/handsets/{caller.to}/inbox", headers={"x-api-key": caller.api_key})
    (entry,) = [m for m in inbox.json()["messages"] if m["tracking-id"] == tracking_id]
    assert entry["subject"] == "Your receipt"
    parts = entry["parts"]
    assert [(p["slide"], p["content-type"]) for p in parts] == [
        (1, "image/jpeg"),
        (1, "text/plain; charset=utf-8"),
        (2, "text/plain; charset=utf-8"),
    ]
    assert [p.get("text") for p in parts[1:]] == ["Thanks for your order ☕", "See you"]
    assert parts[0]["sha256"] == hashlib.sha256(photo).hexdigest()  # small enough to be sent unchanged
    image = await gateway.http.get(
        f"/v1/sandbox/handsets/{caller.to}/inbox/{entry['carrier-message-id']}/{parts[0]['location']}",
        headers={"x-api-key": caller.api_key},
    )
    assert image.content == photo
    assert entry["smil"].count("<par ") == 2 and 'src="cid:image1"' in entry["smil"]

    # the status view says where the message went and how its postbacks stand
    async def both_recorded() -> dict[str, object] | None:
        view = await gateway.http.get(f"/v1/messages/{tracking_id}", headers={"x-api-key": caller.api_key})
        data: dict[str, object] = view.json()
        postbacks = data["postbacks"]
        assert isinstance(postbacks, list)
        return data if [p["state"] for p in postbacks] == ["delivered", "delivered"] else None

    view = await eventually(both_recorded, what="both postbacks to be recorded delivered")
    assert view["carrier"] == {"name": "sandbox", "message-id": entry["carrier-message-id"]}
    assert view["postbacks"] == [
        {"event-id": sent.json["event-id"], "code": "N101", "state": "delivered", "attempts": 1},
        {"event-id": delivered.json["event-id"], "code": "N102", "state": "delivered", "attempts": 1},
    ]


@pytest.mark.parametrize(
    ("behaviour", "fields", "codes"),
    [
        (Behaviour.REJECTS, {}, ["N101", "E102"]),
        (Behaviour.NO_MMS, {"disable_fallback_sms": True, "fallback_sms_text": None}, ["E102"]),
    ],
)
async def test_refusing_handsets_end_the_message_rejected(
    gateway: Gateway, behaviour: Behaviour, fields: dict[str, object], codes: list[str]
) -> None:
    caller, _ = await gateway.account()
    await gateway.store.sandbox.set_handset(Handset(caller.to, behaviour))
    tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}], **fields)
    received = await gateway.postbacks(tracking_id, codes)
    assert received[-1].json["status"] == "Rejected"
    assert received[-1].json["sent-as"] == "MMS"
    assert (await gateway.store.messages.find_message(tracking_id)).state is MessageState.REJECTED
    assert await gateway.store.sandbox.sandbox_inbox(caller.to) == []
    assert await gateway.store.sandbox.sandbox_sms_inbox(caller.to) == []
    if behaviour is Behaviour.NO_MMS:
        assert "disables the fallback SMS" in received[-1].json["status-details"]


@pytest.mark.parametrize("link", [True, False])
async def test_handset_without_mms_gets_the_fallback_sms_with_a_link_to_the_content(
    gateway: Gateway, link: bool
) -> None:
    caller, secret = await gateway.account()
    await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.NO_MMS))
    photo = samples.jpeg(320, 240)
    url = gateway.origin.route("/fallback.jpg", file_reply(photo, "image/jpeg"))
    tracking_id = await gateway.send(
        caller,
        client_reference="ref-9",
        fallback_sms_text="Your receipt is ready:",
        disable_fallback_sms_link=not link,
        slide=[{"message-text": "Receipt <b>42</b>", "image": {"url": url}}],
    )
    (delivered,) = await gateway.postbacks(tracking_id, ["N202"])
    assert delivered.signed_by(secret)
    body = delivered.json
    assert (body["code"], body["status"], body["sent-as"]) == ("N202", "Delivered as SMS", "SMS")
    assert (body["tracking-id"], body["client-reference"], body["to"]) == (tracking_id, "ref-9", caller.to)
    assert (await gateway.store.messages.find_message(tracking_id)).state is MessageState.SMS_DELIVERED
    (sms,) = await gateway.store.sandbox.sandbox_sms_inbox(caller.to)
    assert sms.tracking_id == tracking_id
    events = [e.status for e in await gateway.store.messages.list_events(tracking_id)]
    assert events[-4:] == ["Falling back to SMS", "Submitting SMS", "SMS submitted", "Delivered as SMS"]
    if not link:
        assert sms.text == "Your receipt is ready:"
        return
    text, _, address = sms.text.rpartition(" ")
    assert text == "Your receipt is ready:"
    path = httpx.URL(address).path
    code = path.removeprefix("/m/")
    assert len(code) >= 12  # at least 72 bits of randomness
    page = await gateway.http.get(path)
    assert page.status_code == 200
    assert "Receipt &lt;b&gt;42&lt;/b&gt;" in page.text
    image = await gateway.http.get(f"{path}/1")
    assert (image.status_code, image.content) == (200, photo)


@pytest.mark.parametrize(
    ("behaviour", "codes"),
    [(Behaviour.UNREACHABLE, ["N101", "N103"]), (Behaviour.THROTTLES, ["N103"])],
)
async def test_undeliverable_messages_expire_on_time(gateway: Gateway, behaviour: Behaviour, codes: list[str]) -> None:
    caller, _ = await gateway.account()
    await gateway.store.sandbox.set_handset(Handset(caller.to, behaviour))
    expiry = (utcnow() + timedelta(seconds=3)).replace(microsecond=0) + timedelta(seconds=1)
    tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}], mms_expiry_timestamp=iso(expiry))
    received = await gateway.postbacks(tracking_id, codes)
    expired = received[-1]
    assert expired.json["status"] == "Expired"
    late = expired.at - expiry.timestamp()
    assert 0 <= late < 3.0, f"N103 came {late:.2f} s after the expiry"
    assert (await gateway.store.messages.find_message(tracking_id)).state is MessageState.EXPIRED


async def test_saved_template_reports_ready_then_sends(gateway: Gateway) -> None:
    caller, secret = await gateway.account()
    url = gateway.origin.route("/t.jpg", file_reply(samples.jpeg(320, 240), "image/jpeg"))
    saved = await gateway.http.post(
        API,
        json={"action": "savemms", "name": "promo", "slide": [{"message-text": "Sale", "image": {"url": url}}]},
        headers={"x-api-key": caller.api_key},
    )
    mms_id = saved.json()["mms-id"]
    ready = await gateway.receiver.wait_for(lambda r: any(p.json.get("mms-id") == mms_id for p in r))
    (n003,) = [p for p in ready if p.json.get("mms-id") == mms_id]
    assert (n003.json["code"], n003.json["status"]) == ("N003", "Transcoding successful")
    assert n003.signed_by(secret)

    tracking_id = await gateway.send_saved(caller, mms_id, "see it")
    received = await gateway.postbacks(tracking_id, ["N101", "N102"])
    assert {p.json["mms-id"] for p in received} == {mms_id}

    # to a handset that cannot take MMS, the template falls back to an SMS whose page shows its slides
    await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.NO_MMS))
    fallback_id = await gateway.send_saved(caller, mms_id, "Our sale:")
    (sms_delivered,) = await gateway.postbacks(fallback_id, ["N202"])
    assert sms_delivered.json["mms-id"] == mms_id
    (sms,) = await gateway.store.sandbox.sandbox_sms_inbox(caller.to)
    page = await gateway.http.get(httpx.URL(sms.text.rpartition(" ")[2]).path)
    assert page.status_code == 200 and "Sale" in page.text and "<img" in page.text


async def test_handset_mms_reaches_the_account_with_content_urls(gateway: Gateway) -> None:
    caller, secret = await gateway.account()
    photo = samples.jpeg(200, 150)
    sent = await gateway.http.post(
        f"/v1/sandbox/handsets/{caller.to}/send",
        json={
            "to": caller.sender,
            "subject": "info about my order",
            "text": "Where is it? ☕",
            "files": [{"content-type": "image/jpeg", "name": "me.jpg", "data": base64.b64encode(photo).decode()}],
            "copy-to": ["15550100002"],
        },
        headers={"x-api-key": caller.api_key},
    )
    assert sent.status_code == 202, sent.text
    tracking_id = sent.json()["tracking-id"]
    (mo,) = await gateway.postbacks(tracking_id, ["N401"])
    body = mo.json
    assert mo.signed_by(secret)
    assert (body["origin"], body["from"], body["to"]) == ("MMS_MO", caller.to, caller.sender)
    assert (body["keyword"], body["message-subject"]) == ("INFO", "info about my order")
    assert body["copy-to"] == [{"number": "15550100002"}]
    files = [c["file"] for c in body["content"]]
    assert [f.rsplit("/", 1)[1] for f in files] == ["1.txt", "2.jpg"]
    expected = [("Where is it? ☕".encode(), "text/plain"), (photo, "image/jpeg")]
    for url, (data, content_type) in zip(files, expected, strict=True):
        path = httpx.URL(url).path
        assert len(path.split("/")[2]) >= 40  # the unguessable token
        response = await gateway.http.get(path)
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-type"].startswith(content_type)
        assert response.headers["content-length"] == str(len(data))
    guessed = await gateway.http.get(path.replace(path.split("/")[2], "x" * 43))
    assert guessed.status_code == 404


async def test_handset_may_only_send_to_the_accounts_numbers(gateway: Gateway) -> None:
    caller, _ = await gateway.account()
    refused = await gateway.http.post(
        f"/v1/sandbox/handsets/{caller.to}/send",
        json={"to": "19995550123", "text": "hi"},
        headers={"x-api-key": caller.api_key},
    )
    assert refused.status_code == 400 and "not a number of this account" in refused.json()["error-info"]
    anonymous = await gateway.http.post(f"/v1/sandbox/handsets/{caller.to}/send", json={"to": caller.sender})
    assert anonymous.status_code == 401


async def test_failing_receiver_gets_the_same_postback_until_it_succeeds(gateway: Gateway) -> None:
    caller, secret = await gateway.account("/flaky")
    gateway.receiver.answers["/flaky"] = [500, 503, 200]
    await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.UNREACHABLE))
    tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}])
    await gateway.receiver.wait_for(lambda r: len([p for p in r if p.path == "/flaky"]) >= 3)
    attempts = gateway.receiver.on("/flaky")
    assert len({a.json["event-id"] for a in attempts}) == 1
    assert [a.json["code"] for a in attempts] == ["N101"] * 3
    assert all(a.signed_by(secret) for a in attempts)
    assert len({a.body for a in attempts}) == 1  # the same bytes every time

    async def delivered() -> tuple[str, str, str, int] | None:
        (postback,) = await gateway.store.messages.list_postbacks(tracking_id)
        return postback if postback[2] == "delivered" else None

    assert (await eventually(delivered, what="the postback to be recorded delivered"))[3] == 3


async def test_hanging_receiver_does_not_delay_other_accounts(gateway: Gateway) -> None:
    stuck, _ = await gateway.account("/stuck")
    gateway.receiver.answers["/stuck"] = [HANG]
    for handset in (stuck.to, "15550100002"):
        await gateway.store.sandbox.set_handset(Handset(handset, Behaviour.UNREACHABLE))
    per_account = gateway.settings.postback_per_account
    for _ in range(per_account + 4):
        await gateway.send(stuck, slide=[{"message-text": "hello"}])
    await gateway.receiver.wait_for(lambda r: len([p for p in r if p.path == "/stuck"]) >= per_account // 2)
    started = min(p.at for p in gateway.receiver.on("/stuck"))

    other, _ = await gateway.account("/fine", sender="28445")
    tracking_id = await gateway.send(other, slide=[{"message-text": "hello"}])
    (sent,) = await gateway.postbacks(tracking_id, ["N101"])
    assert sent.at - started < gateway.settings.postback_timeout, "the other account waited for the stuck one"
    # until then the stuck account held no more than its share (later, timed-out postbacks are retried)
    assert len([p for p in gateway.receiver.on("/stuck") if p.at <= sent.at]) <= per_account


async def test_postbacks_never_go_to_addresses_the_guard_refuses(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Without loopback allowed, a receiver on `localhost` is refused at resolution, every attempt."""
    settings = gateway_settings(tmp_path, backend, request, postback_allow_networks="", postback_retries=1)
    receiver = await Receiver().start()
    try:
        caller = await provision(store)
        await store.accounts.update_account(caller.account_id, postback_url=f"http://localhost:{receiver.port}/pb")
        await store.sandbox.set_handset(Handset(caller.to, Behaviour.UNREACHABLE))
        app = create_app(settings, store)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http,
            running_worker(settings, store),
        ):
            body = caller.body(slide=[{"message-text": "hello"}])
            answer = await http.post(API, json=body, headers={"x-api-key": caller.api_key})
            tracking_id = answer.json()["tracking-id"]

            async def given_up() -> tuple[str, str, str, int] | None:
                found = await store.messages.list_postbacks(tracking_id)
                return found[0] if found and found[0][2] == "failed" else None

            postback = await eventually(given_up, what="the postback to be given up")
        assert postback[1:] == ("N101", "failed", 2)
        assert receiver.received == []
    finally:
        await receiver.close()
