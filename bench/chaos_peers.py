"""The helper processes of bench/chaos.py, each on its own event loop (uvloop when installed).

``receiver``: a postback receiver that fails on purpose. A raw asyncio HTTP/1.1 server (keep-alive, requests
framed by Content-Length): of the POSTs, a share ``--fail`` is answered ``500``, a share ``--hold`` is held
open without an answer for ``--hold-seconds`` (past the sender's timeout) and then closed, and the rest get
``200 ok``. Each is kept with its arrival time and what it got; ``GET /records?from=I`` answers the records
from index I, one per line: ``<arrival> <200|500|held> <body>`` (a raw newline in a body becomes a space).

``load``: the load generator of a gateway whose API processes die under it. K keep-alive connections, spread
over the API ports, send the ``sendmms`` bodies of a file (one JSON body a line) at R a second, each once in
order. A connection found closed before a request is written is opened again (on the next port when its own
refuses), without counting; an answer lost after the request was written is ``unanswered`` (the gateway may
or may not have taken it: the bench looks its client reference up); an answer that asks for a retry (an HTTP
``5xx``, or the failure ``E503`` "not accepted; please retry") is tried again every ``RETRY_PAUSE`` s up to
``MAX_TRIES`` times, as a client would; any other failure is ``refused``. Writes a
JSON file: ``{"started": t, "ended": t, "records": [[sent, answered, tracking_id, outcome, tries, detail],
...]}`` with ``outcome`` one of ``accepted``, ``refused``, ``unanswered``.

    python bench/chaos_peers.py receiver [--seed S] [--fail 0.1] [--hold 0.02] [--hold-seconds 4]
    python bench/chaos_peers.py load --ports P1,P2 --bodies FILE --api-key KEY --connections K --rate R --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, cast

from pipeline_load import HEAD_END, Client, _content_length, _run

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nfail"
MAX_TRIES = 40
RETRY_PAUSE = 0.5
ANSWER_TIMEOUT = 30.0


# ---------------------------------------------------------------------------------------------
# the failing postback receiver


class FailingReceiver(asyncio.Protocol):
    """One connection of the postback receiver; ``decide`` says what each POST gets."""

    def __init__(self, records: list[bytes], rng: random.Random, args: argparse.Namespace) -> None:
        self.records = records
        self.rng = rng
        self.args = args
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(HEAD_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = _content_length(head)
            if length is None:
                self.transport.write(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self.transport.close()
                return
            total = end + len(HEAD_END) + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + len(HEAD_END) : total])
            del self.buffer[:total]
            self._handle(head, body)

    def _handle(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        if head.startswith(b"POST "):
            draw = self.rng.random()
            outcome = b"held" if draw < self.args.hold else b"500" if draw < self.args.hold + self.args.fail else b"200"
            self.records.append(b"%.6f %s %s" % (time.time(), outcome, body.replace(b"\n", b" ")))
            if outcome == b"held":  # no answer: the sender times out; this connection takes nothing more
                transport, self.transport = self.transport, None
                asyncio.get_running_loop().call_later(self.args.hold_seconds, transport.close)
                return
            self.transport.write(OK if outcome == b"200" else FAIL)
        elif head.startswith(b"GET /records"):
            line = head.split(b"\r\n", 1)[0]
            start = int(line.split(b"from=", 1)[1].split(b" ", 1)[0]) if b"from=" in line else 0
            out = b"\n".join(self.records[start:])
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(out)
            self.transport.write(head + out)
        else:
            self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


async def receive(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    records: list[bytes] = []
    rng = random.Random(args.seed)
    server = await loop.create_server(lambda: FailingReceiver(records, rng, args), args.host, args.port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"postback receiver listening on http://{args.host}:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


# ---------------------------------------------------------------------------------------------
# the load generator


def request_bytes(port: int, api_key: str, body: bytes) -> bytes:
    head = (
        f"POST /ep/v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"x-api-key: {api_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def outcome_of(head: bytes, body: bytes) -> tuple[str, str, str]:
    """(outcome, tracking id, detail) of an answer; outcome ``retry`` for a 5xx."""
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    detail = f"{status_line} {body[:300].decode(errors='replace')}"
    if head.startswith(b"HTTP/1.1 200") and b'"status":"success"' in body:
        with contextlib.suppress(ValueError, KeyError):
            return "accepted", str(json.loads(body)["tracking-id"]), ""
    code = status_line.split(" ", 2)[1] if status_line.count(" ") >= 1 else "0"
    retry = code.startswith("5") or b'"error-code":"E503"' in body  # the store failed: "please retry"
    return ("retry" if retry else "refused"), "", detail


class Connection:
    """One connection slot of the load: opened again, on the next port if its own refuses, when found closed."""

    def __init__(self, ports: list[int], first: int) -> None:
        self.ports = ports
        self.turn = first
        self.client: Client | None = None
        self.port = ports[first % len(ports)]

    async def ready(self) -> Client:
        loop = asyncio.get_running_loop()
        while self.client is None or self.client.transport is None:
            self.port = self.ports[self.turn % len(self.ports)]
            try:
                _, self.client = await loop.create_connection(Client, "127.0.0.1", self.port)
            except OSError:
                self.client = None
                self.turn += 1
                await asyncio.sleep(0.05)
        return self.client

    def drop(self) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()
        self.client = None


async def load(args: argparse.Namespace, bodies: list[bytes], result: dict[str, Any]) -> None:
    ports = [int(p) for p in args.ports.split(",")]
    count = len(bodies)
    records: list[list[Any]] = [[0.0, 0.0, "", "unsent", 0, ""] for _ in range(count)]
    next_index = 0
    started = time.time() + 0.05

    async def send(conn: Connection, index: int) -> None:
        tries, detail, first = 0, "", 0.0
        while tries < MAX_TRIES:
            client = await conn.ready()
            tries += 1
            sent = time.time()
            first = first or sent
            try:
                head, body = await asyncio.wait_for(
                    client.request(request_bytes(conn.port, args.api_key, bodies[index])), ANSWER_TIMEOUT
                )
            except (ConnectionError, OSError, TimeoutError) as exc:
                conn.drop()
                records[index] = [first, time.time(), "", "unanswered", tries, f"{type(exc).__name__}: {exc}"]
                return
            outcome, tracking_id, detail = outcome_of(head, body)
            if outcome != "retry":
                records[index] = [first, time.time(), tracking_id, outcome, tries, detail]
                return
            await asyncio.sleep(RETRY_PAUSE)
        records[index] = [first, time.time(), "", "refused", tries, detail]

    async def run(slot: int) -> None:
        nonlocal next_index
        conn = Connection(ports, slot)
        while next_index < count:
            index = next_index
            next_index += 1
            delay = started + index / args.rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(conn, index)
        conn.drop()

    await asyncio.gather(*(run(slot) for slot in range(max(1, min(args.connections, count)))))
    result.update(started=started, ended=time.time(), records=records)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Helper processes of bench/chaos.py (see the module docstring).")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("receiver", help="the postback receiver that fails a share of requests")
    rec.add_argument("--host", default="127.0.0.1")
    rec.add_argument("--port", type=int, default=0)
    rec.add_argument("--seed", type=int, default=1)
    rec.add_argument("--fail", type=float, default=0.10, help="share of POSTs answered 500")
    rec.add_argument("--hold", type=float, default=0.02, help="share of POSTs held open without an answer")
    rec.add_argument("--hold-seconds", type=float, default=4.0, help="how long a held POST stays open")
    gen = sub.add_parser("load", help="the load generator")
    gen.add_argument("--ports", required=True, help="comma-separated API ports")
    gen.add_argument("--bodies", type=Path, required=True, help="file of sendmms bodies, one JSON body a line")
    gen.add_argument("--api-key", required=True)
    gen.add_argument("--connections", type=int, default=16)
    gen.add_argument("--rate", type=float, required=True, help="requests per second")
    gen.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "receiver":
            _run(receive(args))
        else:
            bodies = [line.encode() for line in args.bodies.read_text().splitlines() if line.strip()]
            result: dict[str, Any] = {}
            _run(load(args, bodies, result))
            args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
