"""DNS rebinding: the address the guard checked is the address connected to, for media and for postbacks.

A name first resolves to an allowed address, then to a forbidden one (as a hostile DNS server with a zero
TTL would answer). Two real servers listen on the same port, one on each address: a fetch or postback that
resolved the name again on connecting would reach the forbidden one. No DNS server can be run here, so
the guard's lookups are answered by :class:`Rebinding` in place of ``socket.getaddrinfo``. An HTTP client
that resolved the name itself would get the forbidden address either way: from :class:`Rebinding` on a
second lookup, or from the system (reqwest's resolver, in Rust), for which ``localhost`` is 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from mmsgate.common.guard import AddressGuard, BlockedAddress, parse_networks
from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.fetch import Fetcher
from mmsgate.postbacks.http import PostbackClient
from tests import media_samples as samples
from tests.integration.media_origin import Origin, file_reply
from tests.receiver import Receiver

NAME = "localhost"
ALLOWED, FORBIDDEN = "127.0.0.2", "127.0.0.1"
GUARD = AddressGuard(parse_networks(f"{ALLOWED}/32"))
S = TypeVar("S", Origin, Receiver)


class Rebinding:
    """Answers lookups of :data:`NAME` with the allowed address the first time, the forbidden one after;
    other names as the system does."""

    def __init__(self) -> None:
        self.lookups = 0
        self._system = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != NAME:
            return self._system(host, port, *args, **kwargs)
        self.lookups += 1
        address = ALLOWED if self.lookups == 1 else FORBIDDEN
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Rebinding:
    answers = Rebinding()
    monkeypatch.setattr(socket, "getaddrinfo", answers.getaddrinfo)
    return answers


async def same_port(make: Callable[[str, int], S], start: Callable[[S], Awaitable[S]]) -> tuple[S, S]:
    """A server on the allowed address and one on the forbidden address, on one port (tried again when
    another program holds the port on the forbidden address)."""
    for _ in range(20):
        allowed = await start(make(ALLOWED, 0))
        try:
            return allowed, await start(make(FORBIDDEN, allowed.port))
        except OSError:
            await allowed.close()
    raise AssertionError("no port free on both addresses")


@contextlib.asynccontextmanager
async def origins() -> AsyncIterator[tuple[Origin, Origin]]:
    allowed, forbidden = await same_port(Origin, Origin.start)
    try:
        yield allowed, forbidden
    finally:
        await allowed.close()
        await forbidden.close()


@contextlib.asynccontextmanager
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    allowed, forbidden = await same_port(lambda host, port: Receiver(host, port), Receiver.start)
    try:
        yield allowed, forbidden
    finally:
        await allowed.close()
        await forbidden.close()


async def test_a_media_fetch_connects_to_the_address_the_guard_checked(rebinding: Rebinding) -> None:
    photo = samples.jpeg(64, 48)
    async with origins() as (allowed, forbidden):
        for origin in (allowed, forbidden):
            origin.route("/a.jpg", file_reply(photo, "image/jpeg"))
        fetcher = Fetcher(GUARD)
        try:
            fetched = await fetcher.fetch(f"http://{NAME}:{allowed.port}/a.jpg", MediaKind.IMAGE)
            assert forbidden.requests == []
            assert fetched.body == photo
            assert rebinding.lookups == 1  # resolved once, by the guard; the connection used that answer
            assert allowed.requests[0].headers["host"] == f"{NAME}:{allowed.port}"

            # fetched again, the name is resolved and checked again: now it is refused before connecting
            with pytest.raises(MediaError) as refused:
                await fetcher.fetch(f"http://{NAME}:{allowed.port}/b.jpg", MediaKind.IMAGE)
            assert refused.value.code == "E351" and "non-public" in refused.value.detail
        finally:
            await fetcher.aclose()
        assert forbidden.requests == []
        assert len(allowed.requests) == 1


async def test_a_postback_goes_to_the_pinned_address_and_is_checked_again_when_the_pin_ends(
    rebinding: Rebinding,
) -> None:
    async with receivers() as (allowed, forbidden):
        url = f"http://{NAME}:{allowed.port}/postbacks"
        pinned = PostbackClient(GUARD, timeout=5.0, pin_seconds=3600.0)
        try:
            assert await pinned.post(url, b'{"n":1}', {"Content-Type": "application/json"}) == 200
            assert await pinned.post(url, b'{"n":2}', {"Content-Type": "application/json"}) == 200
        finally:
            await pinned.aclose()
        assert forbidden.received == []
        assert rebinding.lookups == 1  # the second postback kept the pin, without resolving again
        assert [r.body for r in allowed.received] == [b'{"n":1}', b'{"n":2}']
        assert allowed.received[0].headers["host"] == f"{NAME}:{allowed.port}"

        unpinned = PostbackClient(GUARD, timeout=5.0, pin_seconds=0.0)
        try:
            with pytest.raises(BlockedAddress, match="non-public"):
                await unpinned.post(url, b'{"n":3}', {"Content-Type": "application/json"})
        finally:
            await unpinned.aclose()
        assert rebinding.lookups == 2
        assert forbidden.received == []
        assert len(allowed.received) == 2
