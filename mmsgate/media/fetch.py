"""GET a slide's media under the public API's rules (contract section 3).

A response must carry Content-Length and must not be chunked; its body may not pass the Content-Length
or the kind's size cap; non-2xx fails; at most 5 redirects, each checked again; connect, read and total
timeouts. Every address is checked by the :class:`~mmsgate.media.guard.AddressGuard` and the connection
goes to the checked address.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from mmsgate.common.guard import AddressGuard, BlockedAddress, UnresolvedHost
from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.cache import CachedHeader, MediaCache
from mmsgate.media.kinds import RULES

MAX_REDIRECTS = 5
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a URL served: the bytes and the declared type (parameters dropped, lower case)."""

    url: str
    body: bytes
    content_type: str | None
    from_cache: bool = False


@dataclass(slots=True)
class _Progress:
    """How far a fetch got, for the reason its deadline gives."""

    url: str
    declared: int | None = None
    """The Content-Length of the response being read; None before its headers came."""
    received: int = 0

    def said(self) -> str:
        if self.declared is None:
            return f"no response headers from {self.url}"
        return f"{self.received} of {self.declared} bytes of {self.url} had arrived"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    caps: dict[MediaKind, int] | None = None

    def cap(self, kind: MediaKind) -> int:
        return (self.caps or DEFAULT_CAPS)[kind]


DEFAULT_CAPS: dict[MediaKind, int] = {
    MediaKind.IMAGE: 25 * 1024 * 1024,
    MediaKind.AUDIO: 25 * 1024 * 1024,
    MediaKind.VIDEO: 50 * 1024 * 1024,
    MediaKind.CONTACT: 1024 * 1024,
    MediaKind.CALENDAR: 1024 * 1024,
    MediaKind.PDF: 10 * 1024 * 1024,
}


def _media_type(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


class _UnusableLocation(Exception):
    """A redirect's Location is no URL the gateway can use; refused like the same URL given directly."""

    def __init__(self, location: str, reason: Exception) -> None:
        super().__init__(f"redirects to {location!r}, which is not a usable URL: {reason}")


async def _check_location(response: httpx.Response) -> None:
    """Read a redirect's Location before the HTTP client does. The client parses it while it hands the
    response back and turns a URL it cannot parse (``http://0177.0.0.1/``, an octal loopback) into a
    protocol error, which is retryable like a broken connection; here it fails at once, as the same URL
    given directly does."""
    if response.has_redirect_location:
        location = response.headers["location"]
        try:
            response.request.url.join(location)
        except (httpx.InvalidURL, ValueError) as exc:
            raise _UnusableLocation(location, exc) from None


def _bytes_past_content_length(response: httpx.Response) -> bool:
    """Whether the server sent more than Content-Length bytes.

    The HTTP client stops at Content-Length and keeps what follows as the connection's unread data; no
    public API shows it, so this looks at the HTTP/1.1 connection state of the pinned httpx/httpcore/h11.
    Where that state cannot be reached (another transport or version) the check answers False."""
    stream: object = response.stream
    for name in ("_stream", "_httpcore_stream", "_stream", "_connection", "_h11_state"):
        stream = getattr(stream, name, None)
        if stream is None:
            return False
    trailing = getattr(stream, "trailing_data", None)
    return isinstance(trailing, tuple) and bool(trailing[0])


class Fetcher:
    """Fetches media with one pooled HTTP client; optionally through a :class:`MediaCache`."""

    def __init__(
        self,
        guard: AddressGuard,
        limits: FetchLimits | None = None,
        cache: MediaCache | None = None,
        *,
        fresh_seconds: float = 300.0,
        local: Callable[[str, MediaKind], Awaitable[Fetched | None]] | None = None,
    ) -> None:
        self.guard = guard
        self.local = local
        """Reads a URL of the gateway's own (a console upload) without HTTP; None: not one of those."""
        self.limits = limits or FetchLimits()
        self.cache = cache
        self.fresh_seconds = fresh_seconds
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(
                connect=self.limits.connect_timeout,
                read=self.limits.read_timeout,
                write=self.limits.read_timeout,
                pool=self.limits.connect_timeout,
            ),
            headers={"User-Agent": "mmsgate/0.1 (+media fetch)", "Accept-Encoding": "identity"},
            trust_env=False,
            event_hooks={"response": [_check_location]},
        )
        self.requests = 0
        """Requests sent to origins (for tests and metrics)."""
        self._fetching: dict[tuple[str, MediaKind, bool], asyncio.Task[Fetched]] = {}

    async def aclose(self) -> None:
        for task in self._fetching.values():
            task.cancel()
        await asyncio.gather(*self._fetching.values(), return_exceptions=True)
        await self._client.aclose()

    async def fetch(self, url: str, kind: MediaKind, *, use_cache: bool = True) -> Fetched:
        """The URL's content, or :class:`MediaError` with the kind's code for why it cannot be had."""
        rules = RULES[kind]
        if self.local is not None:
            found = await self.local(url, kind)
            if found is not None:
                if len(found.body) > self.limits.cap(kind):
                    raise MediaError(
                        rules.too_big,
                        f"{url}: {len(found.body)} bytes; the limit for {kind.value} is {self.limits.cap(kind)}",
                    )
                return found
        if use_cache and self.cache is not None:
            recent = self.cache.recent(url)
            if recent is not None and time.time() - recent.header.fetched_at < self.fresh_seconds:
                return Fetched(url, recent.body, recent.header.content_type, from_cache=True)
        # the messages of a campaign name the same picture, and start together: one fetch serves them all
        # (the first of them may be cancelled; the others still get the answer)
        key = (url, kind, use_cache)
        task = self._fetching.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(url, kind, use_cache), name=f"fetch {url}")
            self._fetching[key] = task
            task.add_done_callback(functools.partial(self._fetched, key))
        return await asyncio.shield(task)

    def _fetched(self, key: tuple[str, MediaKind, bool], task: asyncio.Task[Fetched]) -> None:
        if self._fetching.get(key) is task:
            del self._fetching[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waits for any more is not reported as lost

    async def _fetch(self, url: str, kind: MediaKind, use_cache: bool) -> Fetched:
        rules = RULES[kind]
        cached = None
        if use_cache and self.cache is not None:
            cached = await asyncio.to_thread(self.cache.get, url)
            if cached is not None and time.time() - cached.header.fetched_at < self.fresh_seconds:
                return Fetched(url, cached.body, cached.header.content_type, from_cache=True)
        validators: dict[str, str] = {}
        if cached is not None:
            if cached.header.etag:
                validators["If-None-Match"] = cached.header.etag
            if cached.header.last_modified:
                validators["If-Modified-Since"] = cached.header.last_modified
        progress = _Progress(url)
        try:
            async with asyncio.timeout(self.limits.total_timeout):
                result = await self._get(url, kind, validators, progress)
        except TimeoutError:
            deadline = self.limits.total_timeout
            raise MediaError(
                rules.fetch_failed,
                f"{url}: no complete answer within {deadline:g} s (the deadline for a URL's headers and body "
                f"together; {progress.said()})",
                retryable=True,
            ) from None
        if result is None:  # 304: the cached copy is current
            assert cached is not None
            if self.cache is not None:
                await asyncio.to_thread(self.cache.touch, url, time.time())
            return Fetched(url, cached.body, cached.header.content_type, from_cache=True)
        fetched, etag, last_modified = result
        if self.cache is not None:
            header = CachedHeader(url, fetched.content_type, etag, last_modified, time.time(), len(fetched.body))
            await asyncio.to_thread(self.cache.put, header, fetched.body)
        return fetched

    async def _get(
        self, url: str, kind: MediaKind, validators: dict[str, str], progress: _Progress
    ) -> tuple[Fetched, str | None, str | None] | None:
        rules = RULES[kind]
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            progress.url = current
            request = await self._request(current, kind, validators)
            self.requests += 1
            try:
                response = await self._client.send(request, stream=True)
            except _UnusableLocation as exc:
                raise MediaError(rules.fetch_failed, f"{current}: {exc}") from exc
            except httpx.TimeoutException as exc:
                raise MediaError(
                    rules.fetch_failed, f"{current}: timed out ({type(exc).__name__})", retryable=True
                ) from exc
            except httpx.HTTPError as exc:
                raise MediaError(rules.fetch_failed, f"{current}: {type(exc).__name__}: {exc}", retryable=True) from exc
            try:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    if not location:
                        raise MediaError(rules.fetch_failed, f"{current}: redirect without a Location")
                    try:
                        current = str(httpx.URL(current).join(location))
                    except (httpx.InvalidURL, ValueError) as exc:
                        raise MediaError(rules.fetch_failed, f"{current}: {_UnusableLocation(location, exc)}") from exc
                    continue
                if response.status_code == 304 and validators:
                    return None
                return await self._read(current, kind, response, progress)
            finally:
                await response.aclose()
        raise MediaError(rules.fetch_failed, f"{url}: more than {MAX_REDIRECTS} redirects")

    async def _request(self, url: str, kind: MediaKind, validators: dict[str, str]) -> httpx.Request:
        rules = RULES[kind]
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise MediaError(rules.fetch_failed, f"{url!r} is not a usable URL: {exc}") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise MediaError(rules.fetch_failed, f"{url}: only http and https URLs can be fetched")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            address = await self.guard.resolve(parsed.host, port)
        except BlockedAddress as exc:
            raise MediaError(rules.fetch_failed, f"{url}: {exc}") from exc
        except UnresolvedHost as exc:
            raise MediaError(rules.fetch_failed, f"{url}: {exc}", retryable=True) from exc
        host_header = parsed.netloc.decode("ascii").rsplit("@", 1)[-1]
        pinned = parsed.copy_with(host=str(address))
        extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
        return self._client.build_request(
            "GET", pinned, headers={"Host": host_header, **validators}, extensions=extensions
        )

    async def _read(
        self, url: str, kind: MediaKind, response: httpx.Response, progress: _Progress
    ) -> tuple[Fetched, str | None, str | None]:
        rules = RULES[kind]
        if not 200 <= response.status_code < 300:
            raise MediaError(
                rules.fetch_failed,
                f"{url}: the server answered HTTP {response.status_code}",
                retryable=response.status_code in _RETRYABLE_STATUS,
            )
        if "chunked" in response.headers.get("transfer-encoding", "").lower():
            raise MediaError(
                rules.fetch_failed, f"{url}: chunked transfer encoding is not accepted; send Content-Length"
            )
        declared = response.headers.get("content-length", "")
        if not declared.strip().isdigit():
            raise MediaError(rules.fetch_failed, f"{url}: the response has no Content-Length")
        length = int(declared)
        cap = self.limits.cap(kind)
        if length > cap:
            raise MediaError(rules.too_big, f"{url}: {length} bytes; the limit for {kind.value} is {cap}")
        if length == 0:
            raise MediaError(rules.bad_content, f"{url}: the file is empty")
        body = bytearray()
        progress.declared = length
        try:
            async for chunk in response.aiter_raw():
                body += chunk
                progress.received = len(body)
                if len(body) > length:
                    raise MediaError(rules.fetch_failed, f"{url}: the body is longer than its Content-Length")
        except httpx.TimeoutException as exc:
            raise MediaError(
                rules.fetch_failed,
                f"{url}: timed out while reading: nothing for {self.limits.read_timeout:g} s after "
                f"{len(body)} of {length} bytes",
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise MediaError(rules.fetch_failed, f"{url}: {type(exc).__name__}: {exc}", retryable=True) from exc
        if len(body) < length:
            raise MediaError(rules.fetch_failed, f"{url}: {len(body)} of {length} bytes arrived", retryable=True)
        if _bytes_past_content_length(response):
            raise MediaError(rules.fetch_failed, f"{url}: the body is longer than its Content-Length ({length})")
        fetched = Fetched(url, bytes(body), _media_type(response.headers.get("content-type")))
        return fetched, response.headers.get("etag"), response.headers.get("last-modified")
