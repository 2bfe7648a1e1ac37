"""The helper processes of bench/pipeline.py, each on its own event loop (uvloop when installed).

``receiver``: the postback receiver. A raw asyncio HTTP/1.1 server (keep-alive, requests framed by
Content-Length) that answers every POST ``200 ok`` and keeps each body with its arrival time
(``time.time()``). ``GET /records?from=I`` answers the records from index I, one per line:
``<arrival> <body>`` (bodies are compact JSON; a raw newline in one is replaced by a space).

``load``: the load generator. K keep-alive connections write one precomputed raw HTTP request (a file
of bytes) and read each answer by Content-Length; N requests as fast as the connections allow, or
paced at R requests per second. Writes a JSON file: ``{"started": t, "records": [[sent, answered,
tracking_id, error], ...]}`` (``tracking_id`` is "" and ``error`` the answer when it is not a success).

    python bench/pipeline_load.py receiver [--host 127.0.0.1] [--port 0]
    python bench/pipeline_load.py load --port P --request FILE --count N --connections K [--rate R] --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, cast

HEAD_END = b"\r\n\r\n"
CONTENT_LENGTH = b"\r\ncontent-length:"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


def _content_length(head: bytes) -> int | None:
    """The Content-Length of a request or response head (0 when absent); None for a chunked body."""
    lower = head.lower()
    start = lower.find(CONTENT_LENGTH)
    if start < 0:
        return None if b"\r\ntransfer-encoding:" in lower else 0
    start += len(CONTENT_LENGTH)
    end = lower.find(b"\r\n", start)
    return int(lower[start : end if end >= 0 else len(lower)].strip())


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(coro)
    else:
        uvloop.run(coro)


# ---------------------------------------------------------------------------------------------
# the postback receiver


class Receiver(asyncio.Protocol):
    """One connection of the postback receiver."""

    def __init__(self, records: list[bytes]) -> None:
        self.records = records
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = _content_length(head)
            if length is None:
                self._answer(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", True)
                return
            total = end + len(HEAD_END) + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + len(HEAD_END) : total])
            del self.buffer[:total]
            self._handle(head, body)

    def _handle(self, head: bytes, body: bytes) -> None:
        close = b"\r\nconnection: close" in head.lower()
        if head.startswith(b"POST "):
            self.records.append(b"%.6f " % time.time() + body.replace(b"\n", b" "))
            self._answer(OK, close)
        elif head.startswith(b"GET /records"):
            line = head.split(b"\r\n", 1)[0]
            start = int(line.split(b"from=", 1)[1].split(b" ", 1)[0]) if b"from=" in line else 0
            out = b"\n".join(self.records[start:])
            self._answer(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(out) + out, close
            )
        else:
            self._answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", close)

    def _answer(self, data: bytes, close: bool) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if close:
            self.transport.close()
            self.transport = None


async def receive(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    records: list[bytes] = []
    server = await loop.create_server(lambda: Receiver(records), host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"postback receiver listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


# ---------------------------------------------------------------------------------------------
# the load generator


class Client(asyncio.Protocol):
    """One keep-alive connection to the gateway; one request in flight at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[bytes, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"the gateway closed the connection ({exc})"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(HEAD_END)
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        length = _content_length(head)
        if length is None:
            raise ValueError("chunked answers are not expected from the gateway")
        total = end + len(HEAD_END) + length
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + len(HEAD_END) : total])
        del self.buffer[:total]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((head, body))

    async def request(self, data: bytes) -> tuple[bytes, bytes]:
        if self.transport is None:
            raise ConnectionError("the connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def _outcome(head: bytes, body: bytes) -> tuple[str, str]:
    """(tracking id, "") for a success, ("", what was answered) otherwise."""
    if head.startswith(b"HTTP/1.1 200") and b'"status":"success"' in body:
        try:
            return str(json.loads(body)["tracking-id"]), ""
        except (ValueError, KeyError):
            pass
    return "", (head.split(b"\r\n", 1)[0] + b" " + body[:300]).decode(errors="replace")


async def load(
    host: str, port: int, request: bytes, count: int, connections: int, rate: float, result: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    for _ in range(max(1, min(connections, count))):
        _, client = await loop.create_connection(Client, host, port)
        clients.append(client)
    records: list[list[Any]] = [[0.0, 0.0, "", "not sent"] for _ in range(count)]
    next_index = 0
    started = time.time() + (0.05 if rate > 0 else 0.0)

    async def run(client: Client) -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            if rate > 0:
                delay = started + index / rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent = time.time()
            try:
                head, body = await client.request(request)
            except (ConnectionError, OSError) as exc:
                records[index] = [sent, time.time(), "", f"{type(exc).__name__}: {exc}"]
                return
            tracking_id, error = _outcome(head, body)
            records[index] = [sent, time.time(), tracking_id, error]

    await asyncio.gather(*(run(c) for c in clients))
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    first = min((r[0] for r in records if r[0] > 0), default=started)
    result.update(started=first, records=records)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Helper processes of bench/pipeline.py (see the module docstring).")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("receiver", help="the postback receiver")
    rec.add_argument("--host", default="127.0.0.1")
    rec.add_argument("--port", type=int, default=0)
    gen = sub.add_parser("load", help="the load generator")
    gen.add_argument("--host", default="127.0.0.1")
    gen.add_argument("--port", type=int, required=True)
    gen.add_argument("--request", type=Path, required=True, help="file with the raw HTTP request")
    gen.add_argument("--count", type=int, required=True)
    gen.add_argument("--connections", type=int, default=64)
    gen.add_argument("--rate", type=float, default=0.0, help="requests per second; 0: as fast as possible")
    gen.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "receiver":
            _run(receive(args.host, args.port))
        else:
            request = args.request.read_bytes()
            result: dict[str, Any] = {}
            _run(load(args.host, args.port, request, args.count, args.connections, args.rate, result))
            args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
