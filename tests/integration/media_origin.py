"""A media origin for the media tests: a real HTTP/1.1 server on a loopback port chosen by the kernel.

It speaks raw HTTP over ``asyncio.start_server`` so that each reply's headers and bytes are exactly what
the test says: chunked bodies, no Content-Length, bodies longer or shorter than it, slow drips, stalls,
redirects, conditional answers. Every request is recorded (path, headers) and so is what each reply
actually sent, so tests can assert what the gateway asked for and how much it let the origin send.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

DEFAULT_HOLD = 15.0
"""Longest a held connection stays open waiting for the client to go away."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    at: float


@dataclass(slots=True)
class Reply:
    """What to answer. ``headers`` are sent exactly as given (plus ``Connection: close``)."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    send: int | None = None
    """Send only this many bytes of ``body`` (None: all of it)."""
    chunked: bool = False
    """Send ``body`` with chunked transfer encoding, in chunks of ``chunk`` bytes."""
    chunk: int = 4096
    drip: float | None = None
    """Seconds between single bytes of the body (a slow origin)."""
    hold: bool = False
    """After sending, keep the connection open until the client closes it."""


@dataclass(slots=True)
class Sent:
    """What the origin sent for one request."""

    path: str
    body_bytes: int = 0
    client_closed: bool = False
    done: bool = False


Handler = Callable[[Request], Awaitable[Reply]]


def file_reply(body: bytes, content_type: str | None, **extra: str) -> Reply:
    """A well-formed 200 with Content-Length (and Content-Type when given)."""
    headers = [("Content-Length", str(len(body)))]
    if content_type is not None:
        headers.insert(0, ("Content-Type", content_type))
    headers.extend((name.replace("_", "-"), value) for name, value in extra.items())
    return Reply(200, headers, body)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, [("Location", location), ("Content-Length", "0")])


def status_reply(status: int, body: bytes = b"") -> Reply:
    return Reply(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body)


class Origin:
    """One HTTP server; ``routes`` maps a path to a fixed :class:`Reply` or a handler making one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        """0 until started: a free port the kernel picks."""
        self.routes: dict[str, Reply | Handler] = {}
        self.requests: list[Request] = []
        self.sent: list[Sent] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Origin:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, reply: Reply | Handler) -> str:
        """Serve ``reply`` at ``path``; returns the full URL."""
        self.routes[path] = reply
        return self.url(path)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # serving ------------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            route = self.routes.get(request.path.split("?", 1)[0])
            if route is None:
                reply = status_reply(404, b"no such file")
            elif isinstance(route, Reply):
                reply = route
            else:
                reply = await route(request)
            sent = Sent(request.path)
            self.sent.append(sent)
            await self._write(reader, writer, reply, sent)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        return Request(method, target, headers, time.monotonic())

    @staticmethod
    async def _write(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Reply, sent: Sent) -> None:
        reason = HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else "Status"
        head = [f"HTTP/1.1 {reply.status} {reason}"]
        head += [f"{name}: {value}" for name, value in reply.headers]
        if reply.chunked:
            head.append("Transfer-Encoding: chunked")
        head.append("Connection: close")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        body = reply.body if reply.send is None else reply.body[: reply.send]
        if reply.chunked:
            for start in range(0, len(body), reply.chunk):
                piece = body[start : start + reply.chunk]
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                await writer.drain()
                sent.body_bytes += len(piece)
            writer.write(b"0\r\n\r\n")
        elif reply.drip is not None:
            for i in range(len(body)):
                writer.write(body[i : i + 1])
                await writer.drain()
                sent.body_bytes += 1
                # a slow origin, not a test waiting for something: the pause is the behaviour under test
                await asyncio.sleep(reply.drip)
        else:
            writer.write(body)
            await writer.drain()
            sent.body_bytes += len(body)
        if reply.hold:
            try:
                async with asyncio.timeout(DEFAULT_HOLD):
                    while await reader.read(65536):
                        pass
                sent.client_closed = True
            except ConnectionError:  # closed with unread data: a reset rather than an orderly close
                sent.client_closed = True
            except TimeoutError:
                pass
        sent.done = True


async def wait_for(condition: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.02)
