"""The HTTP server's guard against slow and lying clients, over real sockets: header and body deadlines,
the connection cap, one framing of a body, one API key.

The gateway app (over a real SQLite store) is served by the gateway's own server configuration
(``tests.serving.served`` with ``mmsgate.http_server``'s protocol); the slow clients are raw sockets that
send a byte a second, as the attack does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mmsgate.app import create_app
from mmsgate.config import load_settings
from mmsgate.http_server import HttpLimits
from mmsgate.store import Store
from mmsgate.store.sqlite import SqliteStore
from tests.conftest import Caller, provision
from tests.serving import served
from tests.waiting import eventually

DEADLINE = 2.0
MARGIN = 1.5
"""How much later than its deadline a connection may be closed (the loop is shared with 300 clients)."""


@dataclass
class Served:
    url: str
    host: str
    port: int
    store: Store
    caller: Caller


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A SQLite store: the guard is the server's, the same over either backend."""
    the_store = SqliteStore(tmp_path / "store.sqlite3")
    await the_store.migrate()
    await the_store.open()
    yield the_store
    await the_store.close()


async def serve(store: Store, tmp_path: Path, limits: HttpLimits) -> AsyncIterator[Served]:
    caller = await provision(store)
    app = create_app(load_settings(data_dir=tmp_path / "data", auth_cache_seconds=0.0), store)
    async with served(app, limits) as url:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        yield Served(url, parts.hostname, parts.port, store, caller)


@pytest.fixture
async def gateway(store: Store, tmp_path: Path) -> AsyncIterator[Served]:
    """The gateway with 2 s deadlines."""
    async for it in serve(store, tmp_path, HttpLimits(header_seconds=DEADLINE, body_seconds=DEADLINE)):
        yield it


@dataclass
class Outcome:
    answer: bytes
    """Everything the server sent."""
    open_for: float | None
    """Seconds from connecting to the server's close; None if it was still open when the client gave up."""


async def drip(gw: Served, head: bytes, body: bytes = b"", *, give_up: float = DEADLINE + 6) -> Outcome:
    """Send ``head`` at once, then ``body`` a byte a second (with an empty body: ``head`` a byte a second),
    until the server closes the connection or ``give_up`` seconds have passed."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    opened = time.monotonic()
    slow = body or head
    if body:
        writer.write(head)
    received = bytearray()

    async def read() -> None:
        while chunk := await reader.read(65536):
            received.extend(chunk)

    reading = asyncio.create_task(read())
    try:
        for byte in slow:
            writer.write(bytes([byte]))
            done, _ = await asyncio.wait({reading}, timeout=1.0)  # the client's pace: a byte a second
            if done or time.monotonic() - opened > give_up:
                break
        await asyncio.wait({reading}, timeout=max(0.0, give_up - (time.monotonic() - opened)))
    except ConnectionError:
        pass
    closed = reading.done()
    if closed:
        try:
            reading.result()
        except ConnectionError:
            pass
    else:
        reading.cancel()
    writer.close()
    return Outcome(bytes(received), time.monotonic() - opened if closed else None)


async def stored(store: Store) -> int:
    """How many messages the store holds."""
    rows = await store.db.read("SELECT COUNT(*) FROM messages", ())
    return int(rows[0][0])


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def api_request(gw: Served, body: bytes, *extra: str, framing: str | None = None) -> bytes:
    """A raw POST /ep/v2/ (Content-Length framing unless ``framing`` names other headers)."""
    lines = ["POST /ep/v2/ HTTP/1.1", "Host: gateway.test", f"x-api-key: {gw.caller.api_key}"]
    lines += ["Content-Type: application/json", framing or f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_300_slow_header_connections_are_closed_at_the_deadline_while_others_are_answered(
    gateway: Served,
) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: gateway.test\r\nX-Padding: " + b"a" * 64 + b"\r\n\r\n"
    drippers = [asyncio.create_task(drip(gateway, request)) for _ in range(300)]
    answered: list[float] = []
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        while not all(d.done() for d in drippers):
            reply = await http.post(
                "/ep/v2/", json=gateway.caller.body(), headers={"x-api-key": gateway.caller.api_key}
            )
            assert reply.status_code == 200 and reply.json()["status"] == "success", reply.text
            answered.append(time.monotonic())
    outcomes = [d.result() for d in drippers]
    still_open = [o for o in outcomes if o.open_for is None]
    assert not still_open, f"{len(still_open)} of 300 slow connections were still open after {DEADLINE + 6} s"
    times = sorted(o.open_for for o in outcomes if o.open_for is not None)
    assert times[0] >= DEADLINE * 0.9 and times[-1] <= DEADLINE + MARGIN, (times[0], times[-1])
    assert all(status_of(o.answer) == 408 for o in outcomes)  # a request had begun: it is told why
    # valid requests were answered on other connections all the while
    assert len(answered) >= 10
    assert await stored(gateway.store) == len(answered)


async def test_a_keep_alive_connection_gets_the_header_deadline_for_each_request(gateway: Served) -> None:
    first = b"GET /health HTTP/1.1\r\nHost: gateway.test\r\n\r\n"
    outcome = await drip(gateway, first, b"GET /health HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
    assert outcome.open_for is not None and outcome.open_for <= DEADLINE + MARGIN
    answers = outcome.answer.split(b"HTTP/1.1 ")[1:]
    assert [int(a[:3]) for a in answers] == [200, 408]


async def test_an_idle_connection_is_closed_at_the_header_deadline_without_an_answer(gateway: Served) -> None:
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    opened = time.monotonic()
    assert await asyncio.wait_for(reader.read(), DEADLINE + MARGIN) == b""
    assert time.monotonic() - opened >= DEADLINE * 0.9
    writer.close()


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_slow_body_is_cut_at_the_body_deadline(gateway: Served, framing: str) -> None:
    body = json.dumps(gateway.caller.body()).encode()
    if framing == "chunked":
        head = api_request(gateway, body, framing="Transfer-Encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        head = api_request(gateway, body)
    outcome = await drip(gateway, head, body)
    assert outcome.open_for is not None and DEADLINE * 0.9 <= outcome.open_for <= DEADLINE + MARGIN
    assert status_of(outcome.answer) == 408
    assert await stored(gateway.store) == 0  # nothing half-read was accepted


async def test_a_body_sent_in_pieces_within_the_deadline_is_accepted(gateway: Served) -> None:
    body = json.dumps(gateway.caller.body()).encode()
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(api_request(gateway, body))
    for piece in (body[:10], body[10:20], body[20:]):
        writer.write(piece)
        await asyncio.sleep(DEADLINE / 4)  # the client's pace: all of it well within the deadline
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert status_of(head) == 200, head
    writer.close()
    assert await stored(gateway.store) == 1


@pytest.mark.parametrize(
    ("framing", "status"),
    [  # 501: a coding other than chunked; 400: what the parser refuses itself (chunked twice, with a length)
        ("Transfer-Encoding: gzip, chunked", 501),
        ("Transfer-Encoding: chunked, chunked", 400),
        ("Transfer-Encoding: identity", 501),
        ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 501),
        ("Transfer-Encoding: chunked\r\nContent-Length: {length}", 400),
        ("Transfer-Encoding: gzip, chunked\r\nContent-Length: {length}", 501),
        ("Content-Length: {length}\r\nTransfer-Encoding: chunked", 400),
    ],
)
async def test_a_transfer_encoding_other_than_chunked_is_refused(gateway: Served, framing: str, status: int) -> None:
    data = json.dumps(gateway.caller.body()).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    writer.write(api_request(gateway, data, framing=framing.format(length=len(chunked))) + chunked)
    answer = await asyncio.wait_for(reader.read(), 10)  # everything until the server closes
    writer.close()
    assert status_of(answer) == status, answer
    assert answer.count(b"HTTP/1.1 ") == 1
    assert await stored(gateway.store) == 0


async def test_plain_chunked_is_read(gateway: Served) -> None:
    data = json.dumps(gateway.caller.body()).encode()
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (data[:7], data[7:])) + b"0\r\n\r\n"
    writer.write(api_request(gateway, data, framing="Transfer-Encoding: Chunked") + chunks)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    assert status_of(head) == 200
    assert await stored(gateway.store) == 1


async def test_two_api_keys_are_refused_e104(gateway: Served) -> None:
    key = gateway.caller.api_key
    twice = [("x-api-key", key), ("x-api-key", key)]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        once = await http.post("/ep/v2/", json=gateway.caller.body(), headers={"x-api-key": key})
        assert once.json()["status"] == "success"
        tracking_id = once.json()["tracking-id"]
        for headers in (twice, [("x-api-key", key), ("x-api-key", "mmsk_other")]):
            api = await http.post("/ep/v2/", json=gateway.caller.body(), headers=headers)
            assert api.status_code == 200
            assert api.json()["status"] == "failure" and api.json()["error-code"] == "E104"
            assert "more than once" in api.json()["error-info"]
            status = await http.get(f"/v1/messages/{tracking_id}", headers=headers)
            assert status.status_code == 401 and status.json()["error-code"] == "E104"
            sandbox = await http.get("/v1/sandbox/handsets/15550100001", headers=headers)
            assert sandbox.status_code == 401 and "more than once" in sandbox.json()["error-info"]
        assert (await http.get(f"/v1/messages/{tracking_id}", headers={"x-api-key": key})).status_code == 200
    assert await stored(gateway.store) == 1


async def test_connections_beyond_the_cap_are_answered_503_and_closed(store: Store, tmp_path: Path) -> None:
    async for gw in serve(store, tmp_path, HttpLimits(header_seconds=30, max_connections=5)):
        idle = [await asyncio.open_connection(gw.host, gw.port) for _ in range(5)]
        reader, writer = await asyncio.open_connection(gw.host, gw.port)
        answer = await asyncio.wait_for(reader.read(), 10)  # answered and closed without sending anything
        assert status_of(answer) == 503 and b"\r\nretry-after: 1\r\n" in answer
        writer.close()
        for _, held in idle[:2]:
            held.close()

        async def answered(url: str = gw.url) -> httpx.Response | None:
            try:
                async with httpx.AsyncClient(base_url=url, timeout=5) as http:
                    reply = await http.get("/health")
            except httpx.TransportError:
                return None
            return reply if reply.status_code == 200 else None

        await eventually(answered, within=10, what="a connection under the cap to be answered")
        for _, held in idle[2:]:
            held.close()
