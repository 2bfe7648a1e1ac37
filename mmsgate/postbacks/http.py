"""The HTTP client postbacks go out through: pyreqwest (Python bindings of Rust's reqwest).

At thousands of small POSTs a second the client's cost is a large share of a message's: pyreqwest spends
a fraction of aiohttp's event-loop CPU per POST (httpx: far more), its sockets and HTTP handled on its own
thread outside the GIL (figures in docs/benchmarks.md).

reqwest resolves names itself, so the address guard cannot sit in its resolver as it could in aiohttp's.
Instead each receiving host gets its own client whose name is pinned (``resolve``) to the address the
guard resolved and checked: the connection goes to exactly that address, and TLS still verifies the
certificate for the name. A pin lasts ``pin_seconds``; then the name is resolved and checked again, and
a changed address gets a new client (the old one is closed once no request on it can still run).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError, RequestTimeoutError

from mmsgate.common.guard import AddressGuard

_DEFAULT_PORTS = {"http": 80, "https": 443}


class NotSent(Exception):
    """The POST could not be made or got no answer; the message says why."""


@dataclass(slots=True)
class _Pinned:
    client: Client
    address: str
    until: float


class PostbackClient:
    """POSTs postbacks: one keep-alive client per receiving (scheme, host, port), pinned to the address
    the guard allowed."""

    def __init__(
        self,
        guard: AddressGuard,
        *,
        timeout: float,
        pin_seconds: float = 60.0,
        max_answer_bytes: int = 64 * 1024,
    ) -> None:
        self.guard = guard
        self.timeout = timeout
        self.pin_seconds = pin_seconds
        self.max_answer_bytes = max_answer_bytes
        """Of an answer's body, at most this much is read (and dropped); the rest closes the connection."""
        self._pinned: dict[tuple[str, str, int], _Pinned] = {}
        self._pinning: dict[tuple[str, str, int], asyncio.Task[_Pinned]] = {}
        self._retired: set[asyncio.Task[None]] = set()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url``; the answer's HTTP status. Raises :class:`NotSent` when no answer came,
        and the guard's ``BlockedAddress`` / ``UnresolvedHost`` for an address not to post to."""
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise NotSent(f"not an http(s) URL: {url!r}")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise NotSent(f"not a usable URL: {url!r} ({exc})") from exc
        client = await self._client((parts.scheme, parts.hostname, port))
        request = client.post(url).headers(dict(headers)).body_bytes(body).build_streamed()
        try:
            async with request as response:
                status = response.status
                await response.body_reader.read(self.max_answer_bytes)
        except RequestTimeoutError as exc:
            raise NotSent(f"no answer within {self.timeout:g} s") from exc
        except PyreqwestError as exc:
            raise NotSent(describe(exc)) from exc
        return status

    async def _client(self, key: tuple[str, str, int]) -> Client:
        pinned = self._pinned.get(key)
        if pinned is not None and pinned.until > time.monotonic():
            return pinned.client
        pinning = self._pinning.get(key)
        if pinning is None:  # one resolution per host at a time; others wait for it
            pinning = self._pinning[key] = asyncio.ensure_future(self._pin(key))
            pinning.add_done_callback(lambda _: self._pinning.pop(key, None))
        return (await asyncio.shield(pinning)).client

    async def _pin(self, key: tuple[str, str, int]) -> _Pinned:
        _, host, port = key
        address = str(await self.guard.resolve(host, port))
        until = time.monotonic() + self.pin_seconds
        old = self._pinned.get(key)
        if old is not None and old.address == address:
            old.until = until
            return old
        builder = (
            ClientBuilder()
            .follow_redirects(False)
            .timeout(timedelta(seconds=self.timeout))
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
        )
        if address != host.strip("[]"):
            builder = builder.resolve(host, address, port)
        pinned = self._pinned[key] = _Pinned(builder.build(), address, until)
        if old is not None:
            self._retire(old.client)
        return pinned

    def _retire(self, client: Client) -> None:
        """Close ``client`` once every request it may be running has timed out."""

        async def later() -> None:
            await asyncio.sleep(self.timeout + 1)
            await client.close()

        task = asyncio.create_task(later(), name="postback-client-retire")
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def aclose(self) -> None:
        for task in list(self._retired) + list(self._pinning.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pinned, self._pinned = list(self._pinned.values()), {}
        for entry in pinned:
            await entry.client.close()


def describe(exc: PyreqwestError) -> str:
    """``exc``'s message with its innermost cause: "connection error: Connection refused (os error 111)"."""
    causes = getattr(exc, "details", {}).get("causes") or []
    innermost = causes[-1]["message"] if causes else ""
    return f"{exc.message}: {innermost}" if innermost else exc.message
