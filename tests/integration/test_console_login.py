"""The console's way in under attack: wrong passwords slow the next tries down but the right one is always
accepted, after at most ``LOGIN_DELAY``; failures count per client address (the real one: X-Forwarded-For
only from a trusted proxy) and per account; an expired session is no session.

The gateway app runs in process over a real store; each browser is an HTTP client whose socket peer is set
(httpx's ASGI transport), so addresses behind and before a proxy can be told apart.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from mmsgate.app import Gateway, create_app
from mmsgate.config import load_settings
from mmsgate.core.model import utcnow
from mmsgate.store import Store
from mmsgate.web.console.auth import (
    CONSOLE_USER,
    FREE_ACCOUNT_FAILURES,
    FREE_FAILURES,
    LOGIN_DELAY,
    LoginThrottle,
    client_address,
    set_password,
    token_hash,
)
from tests.integration.test_console import PASSWORD, log_in
from tests.waiting import eventually

PROXY = "10.1.2.3"
"""A reverse proxy in front of the gateway (in the trusted network of these tests)."""


def console_app(store: Store, tmp_path: Path, trusted_proxies: str = "") -> Gateway:
    settings = load_settings(data_dir=tmp_path / "data", auth_cache_seconds=0.0, trusted_proxies=trusted_proxies)
    return create_app(settings, store)


@pytest.fixture
async def password(store: Store) -> None:
    await set_password(store.console, PASSWORD)


@pytest.fixture
async def browsers() -> AsyncIterator[list[httpx.AsyncClient]]:
    """Clients made with :func:`browser`, closed at the end."""
    made: list[httpx.AsyncClient] = []
    yield made
    for http in made:
        await http.aclose()


def browser(
    made: list[httpx.AsyncClient], app: Gateway, peer: str, forwarded_for: str | None = None
) -> httpx.AsyncClient:
    """A browser whose connections come from ``peer`` (with an X-Forwarded-For header, as a proxy adds)."""
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    http = httpx.AsyncClient(transport=transport, base_url="http://gateway.test", headers=headers)
    made.append(http)
    return http


async def timed(attempt: asyncio.Future[httpx.Response] | asyncio.Task[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await attempt
    return response, time.monotonic() - started


@pytest.mark.usefixtures("password")
async def test_the_right_password_is_accepted_after_wrong_ones_within_the_short_delay(
    store: Store, tmp_path: Path, browsers: list[httpx.AsyncClient]
) -> None:
    app = console_app(store, tmp_path)
    throttle: LoginThrottle = app.state.console.sessions.throttle
    http = browser(browsers, app, "192.0.2.10")
    # the free failures are answered at once; from then on a wrong password's answer waits 1, 2, 4 ... s
    for n in range(FREE_FAILURES + 1):
        wrong, took = await timed(asyncio.ensure_future(log_in(http, "not it")))
        assert wrong.status_code == 401 and "Wrong password" in wrong.text
        held = 0.0 if n + 1 < FREE_FAILURES else 2.0 ** (n + 1 - FREE_FAILURES)
        assert held <= took < held + 1.0, (n, took)
    # another wrong try, held for 4 s; while it is, the address backs off, and the right password comes
    sent = time.monotonic()
    still_wrong = asyncio.create_task(log_in(http, "still not it"))

    async def backing_off() -> float | None:
        wait = throttle.wait("192.0.2.10", CONSOLE_USER)
        return wait if wait > 3.0 else None

    await eventually(backing_off, within=10, what="the fifth failure's back-off")
    right, took = await timed(asyncio.ensure_future(log_in(browser(browsers, app, "192.0.2.10"))))
    assert right.status_code == 303, right.text
    assert right.headers["location"] == "/console/messages"
    assert LOGIN_DELAY * 0.9 <= took <= LOGIN_DELAY + 0.9, took  # the short delay, not the 4 s back-off
    wrong = await still_wrong
    assert wrong.status_code == 401 and time.monotonic() - sent >= 4.0
    # a success forgets the address's failures
    assert throttle.wait("192.0.2.10", CONSOLE_USER) == 0.0


def test_the_back_off_counts_per_address_and_per_account() -> None:
    throttle = LoginThrottle()
    for n in range(FREE_FAILURES + 3):
        held = throttle.failed("192.0.2.1", CONSOLE_USER, now=100.0)
        expected = 0.0 if n + 1 < FREE_FAILURES else 2.0 ** (n + 1 - FREE_FAILURES)
        assert held == expected == throttle.wait("192.0.2.1", CONSOLE_USER, now=100.0)
        assert throttle.delay("192.0.2.1", CONSOLE_USER, now=100.0) == min(LOGIN_DELAY, expected)
    assert throttle.wait("192.0.2.2", "someone else", now=100.0) == 0.0  # per address
    # failures from many addresses, each under its own limit, slow the account down everywhere
    for n in range(FREE_ACCOUNT_FAILURES):
        throttle.failed(f"198.51.100.{n}", "operator", now=200.0)
    assert throttle.wait("198.51.100.200", "operator", now=200.0) > 0
    assert throttle.delay("198.51.100.200", "operator", now=200.0) == LOGIN_DELAY
    throttle.succeeded("198.51.100.200", "operator")
    assert throttle.wait("198.51.100.200", "operator", now=200.0) == 0.0


@pytest.mark.usefixtures("password")
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    store: Store, tmp_path: Path, browsers: list[httpx.AsyncClient]
) -> None:
    app = console_app(store, tmp_path, trusted_proxies="10.0.0.0/8, 127.0.0.1/32")
    throttle: LoginThrottle = app.state.console.sessions.throttle
    nobody = "-"  # an account with no failures, so that wait() shows the address's own back-off

    async def backing_off(address: str) -> bool | None:
        return True if throttle.wait(address, nobody) > 0 else None

    async def fail_until_backing_off(http: httpx.AsyncClient, address: str) -> asyncio.Task[httpx.Response]:
        """FREE_FAILURES wrong tries, the last one still held (its address backs off meanwhile)."""
        for _ in range(FREE_FAILURES - 1):
            assert (await log_in(http, "guess")).status_code == 401
        last = asyncio.create_task(log_in(http, "guess"))
        await eventually(lambda: backing_off(address), within=10, what=f"{address} to back off")
        return last

    # through the trusted proxy: the address before it is the client, whatever the client wrote before that
    attacker = browser(browsers, app, PROXY, forwarded_for="1.1.1.1, 203.0.113.7")
    held = await fail_until_backing_off(attacker, "203.0.113.7")
    assert throttle.wait(PROXY, nobody) == 0.0 and throttle.wait("1.1.1.1", nobody) == 0.0
    # so the administrator behind the same proxy is not slowed down meanwhile
    admin, took = await timed(asyncio.ensure_future(log_in(browser(browsers, app, PROXY, "198.51.100.20"))))
    assert admin.status_code == 303 and took < LOGIN_DELAY * 0.5
    assert (await held).status_code == 401

    # from a peer that is not a trusted proxy, X-Forwarded-For is the client's own claim: ignored
    direct = browser(browsers, app, "192.0.2.99", forwarded_for="203.0.113.50")
    held = await fail_until_backing_off(direct, "192.0.2.99")
    assert throttle.wait("203.0.113.50", nobody) == 0.0
    assert (await held).status_code == 401


def test_the_client_address_behind_proxies() -> None:
    from starlette.requests import Request

    from mmsgate.common.guard import parse_networks

    trusted = parse_networks("10.0.0.0/8")

    def address(peer: str, *forwarded: str) -> str:
        headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
        return client_address(Request({"type": "http", "client": (peer, 1), "headers": headers}), trusted)

    assert address("10.0.0.1") == "10.0.0.1"  # a trusted peer without the header: the peer
    assert address("10.0.0.1", "203.0.113.1") == "203.0.113.1"
    assert address("10.0.0.1", "spoofed, 203.0.113.1, 10.0.0.9") == "203.0.113.1"  # a chain of proxies
    assert address("10.0.0.1", "198.51.100.1", "203.0.113.1") == "203.0.113.1"  # two headers: one list
    assert address("10.0.0.1", "10.0.0.5, 10.0.0.9") == "10.0.0.5"  # all trusted: the first one
    assert address("10.0.0.1", "2001:DB8::1") == "2001:db8::1"
    assert address("192.0.2.1", "203.0.113.1") == "192.0.2.1"  # not a trusted peer
    assert client_address(Request({"type": "http", "client": ("10.0.0.1", 1), "headers": []}), ()) == "10.0.0.1"


def test_a_trusted_proxy_setting_must_be_networks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a network in CIDR form"):
        load_settings(data_dir=tmp_path, trusted_proxies="10.0.0.0/8, proxy.example")


async def test_an_expired_session_is_refused(store: Store, tmp_path: Path, browsers: list[httpx.AsyncClient]) -> None:
    app = console_app(store, tmp_path)
    expired, live = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    # the expired one last: making a session deletes the expired ones before it
    await store.console.create_console_session(token_hash(live), utcnow() + timedelta(hours=1))
    await store.console.create_console_session(token_hash(expired), utcnow() - timedelta(seconds=1))
    for token, allowed in ((live, True), (expired, False)):
        http = browser(browsers, app, "192.0.2.10")
        http.cookies.set("mmsgate_console", token, domain="gateway.test", path="/console")
        page = await http.get("/console/messages")
        if allowed:
            assert page.status_code == 200
        else:
            assert page.status_code == 303
            assert page.headers["location"].startswith("/console/login?next=")
            assert (await http.get("/console/media/some-tracking-id/1")).status_code == 401
