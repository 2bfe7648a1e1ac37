"""The HTTP server's own guard: how long a request may take to arrive, how many connections a process holds,
and which framings of a body it reads.

uvicorn bounds only the idle time between keep-alive requests; a client that sends its headers or body a
byte a second holds a connection (and its memory) for as long as it likes, and a few hundred such clients
take every connection a process has. :class:`GuardedProtocol` is uvicorn's httptools protocol with:

- a **header deadline**: a request's headers must be complete within ``header_seconds`` of the connection
  opening or of the request's first byte (an idle keep-alive connection is uvicorn's, closed after 5 s);
- a **body deadline**: the body must be complete within ``body_seconds`` of the end of its headers;
- a **connection cap** per process: a connection beyond ``max_connections`` is answered 503 (Retry-After 1)
  at once, without its request being read, and closed;
- **one framing of a body**: a ``Transfer-Encoding`` other than exactly ``chunked`` is answered 501 and
  the connection closed (the parser itself refuses Content-Length with Transfer-Encoding, a repeated
  Transfer-Encoding or Content-Length: 400), so a proxy in front cannot read a body differently.

A request past a deadline that has had no answer yet is answered 408 and its connection closed; one that
was answered (the app may answer before reading the whole body) just has its connection closed. Time
during which the server itself does not read (uvicorn pauses reading while the app has not taken what was
read, or while a pipelined request waits its turn) does not count against the client.

The subclass reaches into uvicorn's protocol (its parser callbacks, ``cycle``, ``flow``); uvicorn is pinned
in ``pyproject.toml`` and ``tests/integration/test_http_guard.py`` exercises every path against it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from mmsgate.config import Settings

LINGER_SECONDS = 2.0
"""How long a refused connection (over the cap) is kept to read what the client sends, so that closing it
does not reset the connection before the client has read the 503."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_seconds: float = 10.0
    body_seconds: float = 30.0
    max_connections: int = 1000

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        return cls(settings.http_header_timeout, settings.http_body_timeout, settings.http_max_connections)


class GuardedConfig(uvicorn.Config):
    """uvicorn's configuration with the limits and the guarded protocol. It travels (pickled) to each
    process of ``api --processes N``, so the limits need no other way there."""

    def __init__(self, app: Any, limits: HttpLimits, **options: Any) -> None:
        super().__init__(app, http=GuardedProtocol, ws="none", **options)
        self.limits = limits


class _Refused(Exception):
    """A request this server will not read; raised in a parser callback, which stops the parser."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, a connection cap and strict framing (module docstring)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits = config.limits if isinstance(config, GuardedConfig) else HttpLimits()
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_body = False
        self._request_begun = False
        self._refusal: _Refused | None = None
        self._over_cap = False

    # the connection ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._turn_away()
            return
        self._arm(self.limits.header_seconds, body=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._over_cap:  # read and dropped until the client closes or the linger ends
            return
        super().data_received(data)

    def _turn_away(self) -> None:
        self._over_cap = True
        _warn_over_cap(self)
        self._write(503, "the server has too many connections: retry shortly", (b"retry-after", b"1"))
        if self.transport.can_write_eof():  # the client reads the answer, then its end; it closes, or we do
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    # the parser's callbacks --------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        if self._deadline is None:  # a new connection's deadline runs from its opening
            self._arm(self.limits.header_seconds, body=False)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"transfer-encoding" and (
            value.strip().lower() != b"chunked" or any(n == b"transfer-encoding" for n, _ in self.headers)
        ):
            self._refusal = _Refused(501, "only Transfer-Encoding: chunked (once) is supported")
            raise self._refusal
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.limits.body_seconds, body=True)

    def on_message_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn for a request the parser refused, ours (Transfer-Encoding) included."""
        self._disarm()
        refusal, self._refusal = self._refusal, None
        status, reason = (refusal.status, refusal.reason) if refusal else (400, msg)
        self._write(status, reason)
        self.transport.close()

    def _write(self, status: int, text: str, *headers: tuple[bytes, bytes]) -> None:
        """A whole plain-text answer that closes the connection, written without the app."""
        body = text.encode("ascii") + b"\n"
        head = [STATUS_LINE[status]]
        head += [name + b": " + value + b"\r\n" for name, value in [*self.server_state.default_headers, *headers]]
        head.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body))
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)

    # the deadlines ------------------------------------------------------------------------------------

    def _arm(self, seconds: float, *, body: bool) -> None:
        self._disarm()
        self._reading_body = body
        self._deadline = self.loop.call_later(seconds, self._expired, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the server is not reading: not the client's delay
            self._deadline = self.loop.call_later(seconds, self._expired, seconds)
            return
        cycle = self.cycle
        if self._reading_body:
            if cycle is not None and not cycle.response_started:
                cycle.disconnected = True  # the app's receive() now says the client is gone
                cycle.message_event.set()
                self._write(408, "the request body took too long")
            self.transport.close()
        elif cycle is not None and not cycle.response_complete:
            # a pipelined request is late while the previous one is answered: close after that answer
            cycle.keep_alive = False
            self.flow.pause_reading()
        else:
            if self._request_begun:
                self._write(408, "the request headers took too long")
            self.transport.close()


_last_warning = 0.0


def _warn_over_cap(protocol: GuardedProtocol) -> None:
    """At most one warning a minute while connections are turned away."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 60.0:
        _last_warning = now
        protocol.logger.warning(
            "connection cap reached (%d open): new connections are answered 503", protocol.limits.max_connections
        )
