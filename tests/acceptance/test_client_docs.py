"""docs/client.md: the receiver example, served for real, does what the page says it does."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn

from mmsgate.postbacks import SIGNATURE_HEADER, sign
from mmsgate.postbacks.receive import InboundEvent, MessageEvent

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
MARK = "<!-- example: receiver -->"
SECRET = "pbs_docs-example-secret"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

N102: dict[str, Any] = {
    "origin": "MMS_MT",
    "code": "N102",
    "sent-as": "MMS",
    "status": "Delivered",
    "status-details": "Message Delivered",
    "tracking-id": "01a211ea-0aa6-7658-8cac-1e26a82b324e",
    "client-reference": "order-123",
    "to": "15550100001",
    "from": "28444",
    "operator-id": "99999",
    "timestamp": "2026-06-07T12:27:34Z",
    "event-id": "evt_01a211ea0abe7f12b2fbfbeaaf7d8638",
}
N401: dict[str, Any] = {
    "origin": "MMS_MO",
    "code": "N401",
    "from": "15550100002",
    "to": "28444",
    "keyword": "INFO",
    "tracking-id": "01a211ea-364c-7746-8f1e-1d8cec9de725",
    "operator-id": "99999",
    "timestamp": "2026-06-07T12:30:00Z",
    "message-subject": "info please",
    "content": [
        {"file": "https://mms.example.com/mo/U0hCoM_9cXPZg1EuxEqMJKxFrIK5Z1Z8LCV5mGfFlYs/1.txt"},
        {"file": "https://mms.example.com/mo/U0hCoM_9cXPZg1EuxEqMJKxFrIK5Z1Z8LCV5mGfFlYs/2.png"},
    ],
    "copy-to": [{"number": "15550100003"}],
    "event-id": "evt_01a211ea3651727b82de97eb6eb817ea",
}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.S | re.M)


def receiver_source() -> str:
    """The fenced block on the line after the marker."""
    _, mark, after = DOC.read_text(encoding="utf-8").partition(MARK)
    assert mark, f"{DOC} has no {MARK}"
    found = re.match(r"\n```python\n(.*?)^```$", after, re.S | re.M)
    assert found, f"the line after {MARK} must open a ```python block"
    return found.group(1)


def load_receiver(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example as a fresh module, with the secret set the way the page says (the environment)."""
    monkeypatch.setenv("MMSGATE_POSTBACK_SECRET", SECRET)
    module = ModuleType("docs_receiver_example")
    exec(compile(receiver_source(), f"{DOC}:receiver", "exec"), module.__dict__)
    assert module.SECRET == SECRET
    assert module.received == []
    return module


class ReadyServer(uvicorn.Server):
    """A uvicorn server that says when it listens (uvicorn itself only sets a flag)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[ModuleType, str]]:
    """The example served on a loopback port the kernel picks; (its module, its postback URL)."""
    module = load_receiver(monkeypatch)
    config = uvicorn.Config(module.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False)
    server = ReadyServer(config)
    serving = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({serving, ready}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    try:
        assert server.started, f"the example did not start serving within {START_TIMEOUT} s"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield module, f"http://127.0.0.1:{port}/postbacks"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, STOP_TIMEOUT)


async def post(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
        return await http.post(url, content=body, headers=headers)


async def test_a_signed_delivery_report_is_recorded_as_a_final_message_event(
    receiver: tuple[ModuleType, str],
) -> None:
    module, url = receiver
    body = encode(N102)
    answer = await post(url, body, sign(SECRET, body))
    assert answer.status_code == 200, answer.text
    [event] = module.received
    assert isinstance(event, MessageEvent)
    assert event.final
    assert (event.code, event.tracking_id, event.client_reference, event.operator_id) == (
        "N102",
        N102["tracking-id"],
        "order-123",
        "99999",
    )


@pytest.mark.parametrize("signature", ["another secret", "no header", "stale", "another body"])
async def test_a_badly_signed_postback_is_401_and_not_recorded(
    receiver: tuple[ModuleType, str], signature: str
) -> None:
    module, url = receiver
    body = encode(N102)
    header = {
        "another secret": sign("pbs_someone-else", body),
        "no header": None,
        "stale": sign(SECRET, body, timestamp=1_700_000_000),
        "another body": sign(SECRET, encode({**N102, "code": "E102"})),
    }[signature]
    answer = await post(url, body, header)
    assert answer.status_code == 401
    assert answer.text.startswith("signature")
    assert module.received == []


async def test_a_signed_inbound_mms_is_recorded_with_its_files(receiver: tuple[ModuleType, str]) -> None:
    module, url = receiver
    body = encode(N401)
    answer = await post(url, body, sign(SECRET, body))
    assert answer.status_code == 200, answer.text
    [event] = module.received
    assert isinstance(event, InboundEvent)
    assert event.files == tuple(part["file"] for part in N401["content"])
    assert (event.sender, event.to, event.keyword, event.copy_to) == ("15550100002", "28444", "INFO", ("15550100003",))


async def test_a_retried_postback_is_answered_200_and_recorded_once(receiver: tuple[ModuleType, str]) -> None:
    module, url = receiver
    body = encode(N102)
    for moment in (1, 0):  # the retry is the same bytes with a newer signature
        answer = await post(url, body, sign(SECRET, body, timestamp=int(time.time()) - moment))
        assert answer.status_code == 200
    assert len(module.received) == 1


async def test_a_signed_body_that_is_not_a_postback_is_refused_so_it_is_sent_again(
    receiver: tuple[ModuleType, str],
) -> None:
    module, url = receiver
    body = encode({k: v for k, v in N102.items() if k != "tracking-id"})
    answer = await post(url, body, sign(SECRET, body))
    assert answer.status_code == 400
    assert "tracking-id" in answer.text
    assert module.received == []


def test_every_python_example_on_the_page_compiles_and_imports_what_exists() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 3
    for block in blocks:
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmsgate"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"docs import {alias.name} from {node.module}, which lacks it"


def test_the_documented_keywords_of_the_client_exist() -> None:
    client = importlib.import_module("mmsgate.client")
    documented = {
        "send_mms": {
            "service_id",
            "to",
            "sender",
            "slides",
            "subject",
            "fallback_sms_text",
            "client_reference",
            "mms_expiry",
        },
        "save_mms": {"name", "slides", "subject", "fallback_sms_text", "client_reference"},
        "send_saved_mms": {"mms_id", "service_id", "to", "sender", "custom_slides"},
        "message": {"tracking_id"},
    }
    for cls in (client.AsyncClient, client.Client):
        assert {"api_key", "base_url"} <= set(inspect.signature(cls).parameters)
        for method, names in documented.items():
            assert names <= set(inspect.signature(getattr(cls, method)).parameters), (cls.__name__, method)
    for name in ("of_text", "image", "audio", "video", "contact", "calendar", "pdf"):
        assert callable(getattr(client.Slide, name))
    failure = client.ApiFailure("E110", "to is not a valid number", 0)
    assert (failure.code, failure.info, failure.status) == ("E110", "to is not a valid number", 0)
    assert client.TransportFailure("no answer", may_have_been_accepted=True).may_have_been_accepted
