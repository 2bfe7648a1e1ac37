"""A postback receiver for the tests: a real HTTP/1.1 server on a loopback port the kernel picks.

Each path can be told how to answer (a status, a run of failures then success, or hang without
answering); every request is recorded with its headers, raw body and arrival time, and tests wait on
what arrived with :meth:`Receiver.wait_for` (a condition with a timeout, never a sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import h11

from mmsgate.postbacks import SIGNATURE_HEADER, verify

HANG = -1
"""An answer "status" meaning: read the request, never answer."""


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def signed_by(self, secret: str) -> bool:
        return verify(secret, self.headers.get(SIGNATURE_HEADER.lower()), self.body)


@dataclass
class Receiver:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    """Per path, the statuses to answer in turn (the last one repeats); default 200."""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _server: asyncio.Server | None = None
    _hanging: list[asyncio.StreamWriter] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

    def url(self, path: str = "/postbacks") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, predicate: Callable[[list[Received]], bool], within: float = 30.0) -> list[Received]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.received)), within)
            return list(self.received)

    def _answer(self, path: str, seen: int) -> int:
        plan = self.answers.get(path)
        if not plan:
            return 200
        return plan[min(seen, len(plan) - 1)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request: h11.Request | None = None
                body = b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await reader.read(65536)
                        conn.receive_data(data)
                        if not data and conn.their_state is not h11.DONE:
                            return
                        continue
                    if isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += bytes(event.data)
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        return
                assert request is not None
                path = request.target.decode()
                headers = {k.decode().lower(): v.decode() for k, v in request.headers}
                seen = self._seen.get(path, 0)
                self._seen[path] = seen + 1
                status = self._answer(path, seen)
                async with self._changed:
                    self.received.append(Received(path, headers, body, time.time()))
                    self._changed.notify_all()
                if status == HANG:
                    self._hanging.append(writer)
                    await reader.read()  # until the client gives up
                    return
                payload = b'{"ok":true}'
                for out in (
                    h11.Response(
                        status_code=status,
                        headers=[("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
                    ),
                    h11.Data(data=payload),
                    h11.EndOfMessage(),
                ):
                    writer.write(conn.send(out) or b"")
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError):
            return
        finally:
            writer.close()

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)  # 0: the kernel picks
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for writer in self._hanging:
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = await Receiver().start()
    try:
        yield receiver
    finally:
        await receiver.close()
