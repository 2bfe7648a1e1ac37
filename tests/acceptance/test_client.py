"""`mmsgate.client` against a real `mmsgate serve`: sends that travel, failures with the contract's codes,
requests refused before sending, and transport failures that say whether the server may have the request."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from mmsgate.client import Accepted, ApiFailure, AsyncClient, Client, ClientError, Slide, TransportFailure
from tests.acceptance.conftest import Gateway, mmsgate_env
from tests.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

ACCEPTED = "MMS request accepted and queued for processing and delivery."


@dataclass(frozen=True, slots=True)
class Demo:
    """A running gateway and the demo account it created on its first start."""

    url: str
    api_key: str
    service_id: str
    sender: str
    to: str

    def send(self, **changes: Any) -> dict[str, Any]:
        """Arguments of a valid ``send_mms`` to the sandbox handset that delivers, with ``changes``."""
        return {
            "service_id": self.service_id,
            "to": self.to,
            "sender": self.sender,
            "fallback_sms_text": "You have a new message",
            "slides": [Slide.of_text("Hello from the client")],
            **changes,
        }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    """One `mmsgate serve` for the whole module (its demo account is shared; every test sends its own messages)."""
    cwd = tmp_path_factory.mktemp("client")
    gateway = Gateway(["serve", "--port", "0", "--data-dir", "data"], cwd, mmsgate_env())
    try:
        await gateway.start()
        credentials = json.loads((cwd / "data" / "demo.json").read_text())
        yield Demo(
            gateway.url, credentials["api_key"], credentials["service_id"], credentials["from"], credentials["to"]
        )
    finally:
        await gateway.kill()


class Counting(httpx.AsyncBaseTransport):
    """httpx's own transport, counting the requests handed to it (connection attempts included)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def reached_state(client: AsyncClient, view: str, ident: str, state: str) -> dict[str, Any]:
    """Poll a status view until it shows ``state``; fail at once if it ends in another final state."""
    look = client.message if view == "message" else client.template

    async def probe() -> dict[str, Any] | None:
        shown = await look(ident)
        assert shown["state"] not in {"failed", "rejected", "expired"} - {state}, shown
        return shown if shown["state"] == state else None

    return await eventually(probe, what=f"{view} {ident} to be {state}")


async def test_send_mms_is_accepted_then_delivered(demo: Demo) -> None:
    expiry = datetime.now(UTC) + timedelta(days=1)
    async with AsyncClient(demo.api_key, demo.url) as client:
        accepted = await client.send_mms(
            **demo.send(
                subject="Greetings", client_reference="order-17", mms_expiry=expiry, disable_fallback_sms_link=True
            )
        )
        assert accepted.tracking_id
        assert (accepted.to, accepted.status_details, accepted.mms_id) == (demo.to, ACCEPTED, None)

        view = await reached_state(client, "message", accepted.tracking_id, "delivered")
    assert [e["code"] for e in view["events"] if e["code"]] == ["N101", "N102"]
    assert view["service-id"] == demo.service_id and view["from"] == demo.sender
    assert view["message-subject"] == "Greetings" and view["client-reference"] == "order-17"
    assert view["disable-fallback-sms-link"] is True
    assert view["mms-expiry-timestamp"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert view["slide"] == [{"message-text": "Hello from the client"}]


async def test_saved_template_is_sent_once_ready(demo: Demo) -> None:
    async with AsyncClient(demo.api_key, demo.url) as client:
        saved = await client.save_mms(
            name="welcome",
            slides=[Slide.of_text("Welcome, friend"), Slide.of_text("See you soon")],
            subject="Welcome",
            fallback_sms_text="Welcome!",
        )
        assert saved.mms_id and saved.tracking_id and saved.to is None

        template = await reached_state(client, "template", saved.mms_id, "ready")
        assert template["name"] == "welcome" and template["message-subject"] == "Welcome"

        sent = await client.send_saved_mms(
            mms_id=saved.mms_id,
            service_id=demo.service_id,
            to=demo.to,
            sender=demo.sender,
            custom_slides={1: "Welcome, Ada"},
        )
        assert (sent.mms_id, sent.to, sent.status_details) == (saved.mms_id, demo.to, ACCEPTED)

        view = await reached_state(client, "message", sent.tracking_id, "delivered")
    assert view["mms-id"] == saved.mms_id and view["message-subject"] == "Welcome"
    assert view["slide"] == [{"message-text": "Welcome, Ada"}, {"message-text": "See you soon"}]


async def test_a_wrong_api_key_is_e104(demo: Demo) -> None:
    async with AsyncClient("mmsk_not-a-key", demo.url) as client:
        with pytest.raises(ApiFailure) as sent:
            await client.send_mms(**demo.send())
        with pytest.raises(ApiFailure) as looked:
            await client.message("no-such-message")
    # the API endpoint answers every call with HTTP 200 (contract section 1); the status views use 401
    assert (sent.value.code, sent.value.status) == ("E104", 200)
    assert (looked.value.code, looked.value.status) == ("E104", 401)
    assert sent.value.info


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"to": "12345"}, "E110", id="to-not-a-mobile-number"),
        pytest.param({"slides": [Slide.of_text(f"slide {n}") for n in range(1, 10)]}, "E225", id="nine-slides"),
        pytest.param({"subject": "s" * 81}, "E314", id="subject-too-long"),
        pytest.param({"fallback_sms_text": None}, "E622", id="fallback-text-missing"),
        pytest.param(
            {
                "slides": [
                    Slide.video("https://media.example.com/a.mp4").with_media(
                        "image", "https://media.example.com/a.jpg"
                    )
                ]
            },
            "E227",
            id="video-with-image",
        ),
        pytest.param({"mms_expiry": datetime.now(UTC) + timedelta(days=4)}, "E100", id="expiry-too-far"),
    ],
)
async def test_rules_needing_no_account_are_refused_before_sending(
    demo: Demo, changes: dict[str, Any], code: str
) -> None:
    transport = Counting()
    async with AsyncClient(demo.api_key, demo.url, transport=transport) as client:
        with pytest.raises(ApiFailure) as refused:
            await client.send_mms(**demo.send(**changes))
    assert (refused.value.code, refused.value.status) == (code, 0)
    assert refused.value.info
    assert transport.requests == [], "the server got nothing"


async def test_rules_needing_the_account_are_the_servers(demo: Demo) -> None:
    transport = Counting()
    async with AsyncClient(demo.api_key, demo.url, transport=transport) as client:
        with pytest.raises(ApiFailure) as unknown_service:
            await client.send_mms(**demo.send(service_id="999999"))
        with pytest.raises(ApiFailure) as unknown_template:
            await client.send_saved_mms(
                mms_id="no-such-template", service_id=demo.service_id, to=demo.to, sender=demo.sender
            )
        with pytest.raises(ApiFailure) as unknown_message:
            await client.message("no-such-message")
    assert (unknown_service.value.code, unknown_service.value.status) == ("E627", 200)
    assert (unknown_template.value.code, unknown_template.value.status) == ("E241", 200)
    assert "no-such-template" in unknown_template.value.info
    assert unknown_message.value.status == 404
    assert len(transport.requests) == 3


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_gateway_not_listening_is_tried_again_then_reported_not_sent(demo: Demo) -> None:
    transport = Counting()
    url = f"http://127.0.0.1:{closed_port()}"
    async with AsyncClient(demo.api_key, url, connect_retries=2, transport=transport) as client:
        with pytest.raises(TransportFailure) as failed:
            await client.send_mms(**demo.send())
    assert failed.value.may_have_been_accepted is False
    assert len(transport.requests) == 3, "one attempt and two more"


async def test_a_request_that_may_have_arrived_is_never_sent_again(demo: Demo) -> None:
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")  # the request arrived: answer nothing
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncClient(demo.api_key, f"http://127.0.0.1:{port}", connect_retries=2) as client:
            with pytest.raises(TransportFailure) as failed:
                await client.send_mms(**demo.send())
    finally:
        server.close()
        await server.wait_closed()
    assert failed.value.may_have_been_accepted is True
    assert connections == 1


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        pytest.param(httpx.Response(200, text="<html>welcome</html>"), "not a JSON object", id="html"),
        pytest.param(httpx.Response(502, text="Bad Gateway"), "HTTP 502", id="proxy-error"),
        pytest.param(httpx.Response(200, json={"status": "success"}), "unexpected answer", id="no-tracking-id"),
    ],
)
async def test_an_answer_that_is_not_the_apis_is_a_client_error(demo: Demo, answer: httpx.Response, shown: str) -> None:
    async with AsyncClient(
        demo.api_key, "http://gateway.invalid", transport=httpx.MockTransport(lambda _: answer)
    ) as client:
        with pytest.raises(ClientError) as failed:
            await client.send_mms(**demo.send())
    assert type(failed.value) is ClientError
    assert shown in str(failed.value)


async def test_the_blocking_client_gives_the_same_results(demo: Demo) -> None:
    def blocking() -> tuple[Accepted, ApiFailure]:
        with Client(demo.api_key, demo.url) as client:
            accepted = client.send_mms(**demo.send())
            with pytest.raises(ApiFailure) as failed:
                client.send_mms(**demo.send(service_id="999999"))
            return accepted, failed.value

    blocking_accepted, blocking_failure = await asyncio.to_thread(blocking)
    async with AsyncClient(demo.api_key, demo.url) as client:
        accepted = await client.send_mms(**demo.send())
        with pytest.raises(ApiFailure) as failed:
            await client.send_mms(**demo.send(service_id="999999"))
        view = await client.message(blocking_accepted.tracking_id)
    assert blocking_accepted.tracking_id and blocking_accepted.tracking_id != accepted.tracking_id
    assert (blocking_accepted.to, blocking_accepted.status_details) == (accepted.to, accepted.status_details)
    failure = failed.value
    assert (blocking_failure.code, blocking_failure.info, blocking_failure.status) == (
        failure.code,
        failure.info,
        failure.status,
    )
    assert view["tracking-id"] == blocking_accepted.tracking_id

    in_loop = Client(demo.api_key, demo.url)
    with pytest.raises(RuntimeError, match="AsyncClient"):
        in_loop.message(accepted.tracking_id)
    await asyncio.to_thread(in_loop.close)


async def test_slides_are_written_with_the_contracts_keys() -> None:
    both = Slide.image("https://media.example.com/a.jpg", text="Look").with_media(
        "audio", "https://media.example.com/a.mp3"
    )
    assert both.to_wire() == {
        "message-text": "Look",
        "image": {"url": "https://media.example.com/a.jpg"},
        "audio": {"url": "https://media.example.com/a.mp3"},
    }
    assert Slide.pdf("https://media.example.com/a.pdf").to_wire() == {"pdf": {"url": "https://media.example.com/a.pdf"}}
    with pytest.raises(ValueError, match="unknown media kind"):
        Slide.of_text("x").with_media("gif", "https://media.example.com/a.gif")
    with pytest.raises(ValueError, match="at most once"):
        both.with_media("image", "https://media.example.com/b.jpg")
