"""The ``deliver`` part of bench/mm7.py: DeliverReq into a real ``mmsgate serve`` and the N401s it posts back.

The gateway (SQLite in a temporary data folder, API + workers) is set up with the CLI before it starts: an MM7
connection ``carrier`` with inbound credentials, and an account owning the short code whose postbacks go to
``Receiver``, an aiohttp server in the bench process. Imported by bench/mm7.py, which puts the repository on
``sys.path`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from support.cpu import session_cpu
from support.gateway import BENCH_NUMBER, child_env, mmsgate_argv, run_cli, wait_listening
from support.processes import BenchError, Processes, log_problems, tail

from mmsgate.carriers.mm7.records import Address, Mm7Part
from mmsgate.carriers.mm7.status import DEFAULT_VERSION
from mmsgate.core.mms import TEXT_CONTENT_TYPE
from tests.mm7_mmsc import build_deliver_req

SHORT_CODE = BENCH_NUMBER
HANDSET = "15550100002"
CONNECTION = "carrier"
INBOUND_USER, INBOUND_PASSWORD = "in", "pw"
MO_SMIL = (
    '<smil><head><layout><root-layout width="320" height="480"/>'
    '<region id="Image" left="0" top="0" width="320" height="320" fit="meet"/>'
    '<region id="Text" left="0" top="320" width="320" height="160" fit="scroll"/></layout></head>'
    '<body><par dur="5000ms"><img src="cid:image1" region="Image"/><text src="cid:text1" region="Text"/></par>'
    "</body></smil>"
)
RSP_NAME = re.compile(rb"<(?:[\w.-]+:)?DeliverRsp\b")
RSP_STATUS = re.compile(rb"<(?:[\w.-]+:)?StatusCode>\s*(\d+)\s*<")
RSP_TX = re.compile(rb"<(?:[\w.-]+:)?TransactionID\b[^>]*>([^<]*)<")


class Receiver:
    """The account's postback URL: an aiohttp server in this process that counts the N401 postbacks."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.tracking_ids: set[str] = set()
        self.duplicates = 0
        self.other: list[str] = []
        self.expected = 0
        self.done = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/postbacks", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/postbacks"
        return self

    async def handle(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        try:
            data = json.loads(await request.read())
            code, tracking_id = str(data["code"]), str(data["tracking-id"])
        except (ValueError, KeyError, TypeError) as exc:
            self.other.append(f"unreadable postback: {exc}")
            return web.Response(text="ok")
        if code != "N401" or data.get("to") != SHORT_CODE or data.get("from") != HANDSET:
            self.other.append(f"{code} from {data.get('from')} to {data.get('to')}")
        elif tracking_id in self.tracking_ids:
            self.duplicates += 1
        else:
            self.tracking_ids.add(tracking_id)
            self.arrivals.append(at)
            if len(self.arrivals) >= self.expected:
                self.done.set()
        return web.Response(text="ok")

    def expect(self, count: int) -> None:
        """Wait (``done``) for ``count`` N401s in all, counting those already here."""
        self.expected = count
        if len(self.arrivals) >= count:
            self.done.set()
        else:
            self.done.clear()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def cli(args: Sequence[str], data: Path) -> dict[str, Any]:
    """``mmsgate ARGS --data-dir DATA --json``, its JSON answer; in a thread, so that the loop keeps serving."""
    return await asyncio.to_thread(run_cli, [*args, "--data-dir", str(data), "--json"], data.parent)


@dataclass
class DeliverRow:
    requests: int
    concurrency: int
    body_bytes: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    n401: int = 0
    last_n401: float = 0.0
    gateway_cpu: float = 0.0
    bench_cpu: float = 0.0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def e2e_rate(self) -> float:
        return self.n401 / self.last_n401 if self.last_n401 else 0.0

    @property
    def complete(self) -> bool:
        return (
            not self.failures
            and len(self.latencies_ms) == self.requests
            and self.n401 == self.requests
            and not self.duplicates
        )


def deliver_bodies(count: int, prefix: str, jpeg: bytes) -> tuple[list[tuple[str, bytes, str]], int]:
    """``count`` DeliverReq (TransactionID, body, Content-Type), each with its own TransactionID and text;
    and the size of the first body."""
    bodies = []
    now = datetime.now(UTC)
    for index in range(count):
        tx = f"{prefix}-{index}"
        text = f"Photo {index} from the game, see you at 8".encode()
        body, content_type = build_deliver_req(
            transaction_id=tx,
            version=DEFAULT_VERSION,
            sender=HANDSET,
            recipients=[Address(SHORT_CODE, "ShortCode")],
            relay_server_id="mmsc-bench",
            timestamp=now,
            subject="Photo",
            smil=MO_SMIL,
            parts=[
                Mm7Part(TEXT_CONTENT_TYPE, text, "text1", "text1.txt"),
                Mm7Part("image/jpeg", jpeg, "image1", "image1.jpg"),
            ],
        )
        bodies.append((tx, body, content_type))
    return bodies, len(bodies[0][1]) if bodies else 0


def check_answer(status: int, data: bytes, tx: str) -> str | None:
    """What is wrong with an answer to a DeliverReq, or None."""
    if status != 200:
        return f"HTTP {status}: {data[:200]!r}"
    if not RSP_NAME.search(data):
        return f"no DeliverRsp: {data[:200]!r}"
    code = RSP_STATUS.search(data)
    if code is None or code.group(1) != b"1000":
        return f"status {code.group(1).decode() if code else 'missing'}: {data[:300]!r}"
    echoed = RSP_TX.search(data)
    if echoed is None or echoed.group(1).decode() != tx:
        return f"TransactionID {echoed.group(1).decode() if echoed else 'missing'} for {tx}"
    return None


async def post_all(
    session: aiohttp.ClientSession, url: str, bodies: Sequence[tuple[str, bytes, str]], callers: int
) -> tuple[list[float], list[str]]:
    """POST every body from ``callers`` concurrent callers: the latencies of the good answers (ms), the faults."""
    latencies: list[float] = []
    failures: list[str] = []
    items = iter(bodies)

    async def caller() -> None:
        for tx, body, content_type in items:
            headers = {"Content-Type": content_type, "SOAPAction": '""'}
            began = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as answer:
                    status, data = answer.status, await answer.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(f"{tx}: {exc!r}")
                continue
            took = (time.perf_counter() - began) * 1000
            wrong = check_answer(status, data, tx)
            if wrong is None:
                latencies.append(took)
            else:
                failures.append(f"{tx}: {wrong}")

    await asyncio.gather(*(caller() for _ in range(callers)))
    return latencies, failures


async def set_up(data: Path, postback_url: str) -> None:
    """With the CLI, before the gateway starts: the MM7 connection with inbound credentials, and an account
    owning the short code whose postbacks go to ``postback_url``."""
    outbound = ["--url", "http://127.0.0.1:9/unused", "--vasp-id", "a", "--vas-id", "b"]
    inbound = ["--inbound-username", INBOUND_USER, "--inbound-password", INBOUND_PASSWORD]
    await cli(["mm7", "add", CONNECTION, *outbound, *inbound], data)
    account = await cli(["account", "create", "bench-mo"], data)
    account_id = str(account["account_id"])
    await cli(["account", "set", account_id, "--postback-url", postback_url], data)
    await cli(["number", "add", account_id, SHORT_CODE], data)


def gateway_env(data: Path, args: argparse.Namespace) -> dict[str, str]:
    """``mmsgate serve``'s settings: its data folder (no demo account), postbacks to loopback allowed."""
    return child_env(
        {
            "MMSGATE_DATA_DIR": str(data),
            "MMSGATE_POSTBACK_ALLOW_NETWORKS": "127.0.0.0/8",
            "MMSGATE_WORKER_CONCURRENCY": str(args.worker_concurrency),
            "MMSGATE_DEMO": "false",
            "MMSGATE_LOG_LEVEL": "WARNING",
        }
    )


async def run_deliver(args: argparse.Namespace, jpeg: bytes, work: Path) -> DeliverRow:
    row = DeliverRow(args.requests, args.deliver_concurrency)
    data = work / "gateway" / "data"
    data.mkdir(parents=True)
    receiver = await Receiver().start()
    procs = Processes()
    log = data.parent / "serve.log"
    try:
        await set_up(data, receiver.url)
        env = gateway_env(data, args)
        server = procs.start(mmsgate_argv("serve", "--port", "0"), log=log, cwd=data.parent, env=env)
        base = await asyncio.to_thread(wait_listening, server, log, who="mmsgate serve")
        url = f"{base}/mm7/{CONNECTION}"
        print(f"   mmsgate serve at {base} (pid {server.pid}); the VASP endpoint is {url}", flush=True)

        warm, _ = deliver_bodies(args.deliver_warmup, "warm-mo", jpeg)
        bodies, row.body_bytes = deliver_bodies(args.requests, "bench-mo", jpeg)
        basic = base64.b64encode(f"{INBOUND_USER}:{INBOUND_PASSWORD}".encode()).decode()
        connector = aiohttp.TCPConnector(limit=args.deliver_concurrency)
        timeout = aiohttp.ClientTimeout(total=60)
        headers = {"Authorization": f"Basic {basic}"}
        async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
            # warm-up: the first request pays the scrypt check of the inbound password (then cached a minute)
            receiver.expect(len(warm))
            _, failures = await post_all(session, url, warm, args.deliver_concurrency)
            if failures:
                raise BenchError(f"{len(failures)} warm-up DeliverReq failed, first: {failures[0][:300]}")
            try:
                await asyncio.wait_for(receiver.done.wait(), args.timeout)
            except TimeoutError:
                raise BenchError(
                    f"{len(receiver.arrivals)} of {len(warm)} warm-up N401s within {args.timeout:g} s:\n{tail(log)}"
                ) from None
            print(f"   warm-up: {len(warm)} DeliverReq answered, every N401 received", flush=True)

            already = len(receiver.arrivals)
            receiver.expect(already + len(bodies))
            gateway_before, own_before = session_cpu(server.pid), time.process_time()
            started = time.perf_counter()
            row.latencies_ms, row.failures = await post_all(session, url, bodies, args.deliver_concurrency)
            row.seconds = time.perf_counter() - started
            print(
                f"   {len(row.latencies_ms)}/{len(bodies)} DeliverReq answered 200 / 1000 at {row.rate:,.0f}/s; "
                f"{len(receiver.arrivals) - already} N401s so far",
                flush=True,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.done.wait(), args.timeout)
            row.gateway_cpu = session_cpu(server.pid) - gateway_before
            row.bench_cpu = time.process_time() - own_before
            arrived = receiver.arrivals[already:]
            row.n401 = len(arrived)
            row.last_n401 = (max(arrived) - started) if arrived else 0.0
            row.duplicates = receiver.duplicates
            await asyncio.sleep(0.5)  # a late duplicate would show now
            row.duplicates = receiver.duplicates
            if receiver.other:
                row.failures.append(f"{len(receiver.other)} other postbacks, first: {receiver.other[0]}")
            print(
                f"   {row.n401}/{len(bodies)} N401 received, the last {row.last_n401:.2f} s after the first "
                f"request: {row.e2e_rate:,.0f} MO/s end to end",
                flush=True,
            )
    finally:
        await asyncio.to_thread(procs.stop_all, 10.0)
        await receiver.stop()
        row.problems = log_problems(log)
    return row
