"""MM7 benchmark: SubmitReq build + send rate of the MM7 connector, and the VASP endpoint's DeliverReq rate.

Two measurements, one after the other:

1. ``submit``: the MM7 carrier connector (``Mm7Carrier``, built directly: a temporary blob store, no send
   limiter) against the independent MMSC test peer (tests/peers/mmsc-sim.js, started through tests/mmsc.py,
   HTTP Basic on, no VASP URL so it posts no reports). The message: one slide, a ~30 KB 640×480 JPEG and a
   text, its SMIL from ``compose.smil_for``, the JPEG's bytes inline in ``MmsPart.data`` (no blob read). For
   each concurrency (default 1, 8 and 32 callers in flight): a fresh connector and peer, a warm-up, then N
   submits (default 2,000), each with its own TransactionID. Figures: submits/s, ``submit()`` latency p50/p99,
   the CPU time per submit of this process (``time.process_time``: the connector, its aiohttp client and the
   bench's callers) and of the peer (utime + stime from /proc/PID/stat). Every submit must come back with a
   MessageID, and the peer must have found no problem in any SubmitReq. Also: ``build_submit_req`` calls per
   second for that message (no I/O), and the body's size.
2. ``deliver``: a real ``mmsgate serve`` process (SQLite in a temporary ``MMSGATE_DATA_DIR``, API + workers),
   set up with the CLI before it starts: an MM7 connection ``carrier`` with inbound credentials, an account
   owning 28444 whose postbacks go to a receiver in this process (aiohttp, counts N401s). DeliverReq bodies
   (an MO from a handset to 28444: SMIL, a text and a small JPEG; each with its own TransactionID) are built
   beforehand with ``build_deliver_req`` and POSTed with HTTP Basic by an aiohttp client, K at a time
   (default 32). After a warm-up whose N401s must all arrive: N requests (default 3,000). Figures: requests/s
   (N / time to the last answer; every answer must be HTTP 200 with a DeliverRsp of status 1000 echoing the
   TransactionID), answer latency p50/p99, and end to end: N401 postbacks received / (last N401's arrival −
   first request sent), with the CPU time per MO of the gateway's processes and of this process over that
   window.

The tables are printed and appended to docs/benchmarks.md. Exit status: 0 when every run completed, 1
otherwise, 2 without node or the npm packages of tests/peers.

Run: ``.venv/bin/python bench/mm7.py [--only submit,deliver] [--submits 2000] [--concurrency 1,8,32]
[--requests 3000] [--deliver-concurrency 32] [--no-record]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

from mmsgate.carriers.mm7.build import build_submit_req  # noqa: E402
from mmsgate.carriers.mm7.connection import Mm7Carrier, is_short_code  # noqa: E402
from mmsgate.carriers.mm7.records import Address, Mm7Part  # noqa: E402
from mmsgate.carriers.mm7.settings import Mm7Connection  # noqa: E402
from mmsgate.carriers.mm7.status import DEFAULT_VERSION  # noqa: E402
from mmsgate.core.compose import smil_for  # noqa: E402
from mmsgate.core.mms import TEXT_CONTENT_TYPE, Mms, MmsPart  # noqa: E402
from mmsgate.store.blobs import BlobStore  # noqa: E402
from tests.mm7_mmsc import build_deliver_req  # noqa: E402
from tests.mmsc import PACKAGES, PEERS, Mmsc  # noqa: E402

RESULTS = REPO / "docs" / "benchmarks.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PARTS = ("submit", "deliver")

MMSC_USERNAME = "bench-vasp"
MMSC_PASSWORD = "bench-secret"
VASP_ID = "bench-vasp"
VAS_ID = "bench-service"
SHORT_CODE = "28444"
HANDSET = "15550100002"
SUBSCRIBER = "15550100001"
CONNECTION = "carrier"
INBOUND_USER, INBOUND_PASSWORD = "in", "pw"
TEXT = "Your order 4711 has shipped and arrives Thursday. Here is a photo of the parcel as it left the depot."
MO_SMIL = (
    '<smil><head><layout><root-layout width="320" height="480"/>'
    '<region id="Image" left="0" top="0" width="320" height="320" fit="meet"/>'
    '<region id="Text" left="0" top="320" width="320" height="160" fit="scroll"/></layout></head>'
    '<body><par dur="5000ms"><img src="cid:image1" region="Image"/><text src="cid:text1" region="Text"/></par>'
    "</body></smil>"
)
LISTENING = re.compile(r"listening on (http://\S+)")
PROBLEM_LINE = re.compile(r"^(WARNING|ERROR|CRITICAL)\b|Traceback")
RSP_NAME = re.compile(rb"<(?:[\w.-]+:)?DeliverRsp\b")
RSP_STATUS = re.compile(rb"<(?:[\w.-]+:)?StatusCode>\s*(\d+)\s*<")
RSP_TX = re.compile(rb"<(?:[\w.-]+:)?TransactionID\b[^>]*>([^<]*)<")


class BenchError(Exception):
    """A run could not be set up or measured; the message says why."""


# ---------------------------------------------------------------------------------------------
# media and CPU


def make_jpeg(width: int, height: int, quality: int, noise: float) -> bytes:
    """A photo-like JPEG: colour gradients, some blurred noise (a photo's texture), a few shapes."""
    from PIL import Image, ImageDraw, ImageFilter

    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    img = Image.merge("RGB", (horizontal, vertical, Image.new("L", (width, height), 140)))
    if noise > 0:
        grain = Image.frombytes("RGB", (width, height), random.Random(7).randbytes(width * height * 3))
        img = Image.blend(img, grain.filter(ImageFilter.GaussianBlur(1.2)), noise)
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 8, height // 8, width // 2, height * 2 // 3), fill=(230, 190, 60))
    draw.rectangle((width * 3 // 5, height // 2, width * 9 // 10, height * 9 // 10), fill=(40, 90, 160))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (index 0 is field 3, the state)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def pid_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of one process."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / CLK_TCK


def session_cpu(sid: int) -> float:
    """CPU seconds of the live processes of a session (a server and any children it started)."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None and int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


# ---------------------------------------------------------------------------------------------
# 1. SubmitReq against the MMSC peer


class QuietMmsc(Mmsc):
    """The MMSC peer, its ``submit`` events counted instead of parsed and kept: one JSON line of ~1.5 KB per
    submit would otherwise be charged to this process's CPU per submit."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.submits = 0
        self.problems: list[str] = []
        self.expected = 0
        self.all_logged = asyncio.Event()
        """Set once ``expected`` submits were logged."""

    async def _read_events(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if b'"event":"submit"' in line:
                self.submits += 1
                if b'"ok":true' not in line or b'"status":1000' not in line:
                    self.problems.append(line.decode(errors="replace")[:400])
                if self.submits >= self.expected:
                    self.all_logged.set()
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line.decode(errors="replace")}
            self.events.append(event)
            self._changed.set()
        self._changed.set()


@dataclass
class SubmitRow:
    concurrency: int
    submits: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    own_cpu: float = 0.0
    peer_cpu: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.submits / self.seconds if self.seconds else 0.0

    @property
    def complete(self) -> bool:
        return not self.failures and len(self.latencies_ms) == self.submits


def bench_mms(jpeg: bytes) -> Mms:
    """The message of every submit: one slide, the photo and the text under it."""
    text = TEXT.encode()
    image = MmsPart("image1", "slide1.jpg", "image/jpeg", len(jpeg), data=jpeg, slide=1)
    words = MmsPart("text1", "slide1.txt", TEXT_CONTENT_TYPE, len(text), data=text, slide=1)
    return Mms(
        tracking_id="bench-0",
        account_id="bench-account",
        service_id="bench-service",
        to=SUBSCRIBER,
        sender=SHORT_CODE,
        from_mask=None,
        subject="Your parcel",
        expires_at=datetime.now(UTC) + timedelta(days=1),
        smil=smil_for([(image, words, None, 5000)]),
        parts=(image, words),
    )


def build_once(mms: Mms) -> tuple[bytes, str]:
    """What ``Mm7Carrier.submit`` builds for ``mms`` (the same arguments)."""
    return build_submit_req(
        transaction_id=mms.tracking_id,
        version=DEFAULT_VERSION,
        vasp_id=VASP_ID,
        vas_id=VAS_ID,
        sender=mms.sender,
        sender_is_short_code=is_short_code(mms.sender),
        recipient=mms.to,
        subject=mms.subject,
        expiry=mms.expires_at,
        smil=mms.smil,
        parts=[(p, p.data or b"") for p in mms.parts],
    )


def build_rate(mms: Mms, number: int = 500, repeat: int = 5) -> float:
    """``build_submit_req`` calls per second for ``mms`` (the best of ``repeat`` runs of ``number`` calls)."""
    best = min(timeit.repeat(lambda: build_once(mms), number=number, repeat=repeat))
    return number / best


async def submit_all(carrier: Mm7Carrier, mms: Mms, prefix: str, count: int, callers: int, row: SubmitRow) -> None:
    """Submit ``count`` copies of ``mms`` (each its own tracking id) from ``callers`` concurrent callers; notes
    the latencies of the successes in ``row`` (replacing what it held) and the failures."""
    latencies: list[float] = []
    indexes = iter(range(count))

    async def caller() -> None:
        for index in indexes:
            one = msgspec.structs.replace(mms, tracking_id=f"{prefix}-{index}")
            began = time.perf_counter()
            try:
                result = await carrier.submit(one)
            except Exception as exc:
                row.failures.append(repr(exc))
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            if not result.carrier_message_id.startswith("MMSC-"):
                row.failures.append(f"unexpected MessageID {result.carrier_message_id!r}")

    await asyncio.gather(*(caller() for _ in range(callers)))
    row.latencies_ms = latencies


async def run_submits(concurrency: int, mms: Mms, args: argparse.Namespace, work: Path) -> SubmitRow:
    row = SubmitRow(concurrency, args.submits)
    peer = QuietMmsc({"MMSC_USERNAME": MMSC_USERNAME, "MMSC_PASSWORD": MMSC_PASSWORD})
    carrier: Mm7Carrier | None = None
    try:
        await peer.start()
        settings = Mm7Connection(
            url=f"http://127.0.0.1:{peer.port}/mm7",
            vasp_id=VASP_ID,
            vas_id=VAS_ID,
            username=MMSC_USERNAME,
            password=MMSC_PASSWORD,
        )
        blobs = work / f"blobs-c{concurrency}"
        blobs.mkdir()
        carrier = Mm7Carrier(f"bench-c{concurrency}", settings, BlobStore(blobs))
        assert peer.proc is not None
        peer.expected = args.warmup + args.submits
        warm = SubmitRow(concurrency, args.warmup)
        await submit_all(carrier, mms, f"warm-c{concurrency}", args.warmup, concurrency, warm)
        if warm.failures:
            raise BenchError(f"{len(warm.failures)} warm-up submits failed, first: {warm.failures[0][:300]}")
        own_before, peer_before = time.process_time(), pid_cpu(peer.proc.pid)
        started = time.perf_counter()
        await submit_all(carrier, mms, f"bench-c{concurrency}", args.submits, concurrency, row)
        row.seconds = time.perf_counter() - started
        row.own_cpu = time.process_time() - own_before
        row.peer_cpu = pid_cpu(peer.proc.pid) - peer_before
        # the peer logs each submit once answered: let its last lines come
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(peer.all_logged.wait(), 10)
        if peer.submits != args.warmup + args.submits:
            row.failures.append(f"the peer logged {peer.submits} submits of {args.warmup + args.submits}")
        if peer.problems:
            row.failures.append(f"the peer found problems in {len(peer.problems)} SubmitReq: {peer.problems[0]}")
    finally:
        if carrier is not None:
            await carrier.aclose()
        await peer.stop()
    return row


# ---------------------------------------------------------------------------------------------
# 2. DeliverReq into a real `mmsgate serve`


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


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without any MMSGATE_* setting of the caller's shell, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


async def stop_process(proc: asyncio.subprocess.Process, grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds (and any member left); reap the leader."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def run_cli(args: Sequence[str], data: Path) -> dict[str, Any]:
    """``mmsgate ARGS --data-dir DATA --json``; its JSON answer."""
    argv = [sys.executable, "-m", "mmsgate", *args, "--data-dir", str(data), "--json"]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=data.parent,
        env=child_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await stop_process(proc, grace=1.0)
    if proc.returncode != 0:
        raise BenchError(f"mmsgate {shlex.join(args)} failed ({proc.returncode}):\n{out.decode()}{err.decode()}")
    answer: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return answer


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def log_problems(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if PROBLEM_LINE.search(line)]


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


async def wait_listening(proc: asyncio.subprocess.Process, log: Path, within: float = 60.0) -> str:
    """The base URL from the server's ``listening on`` line."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        match = LISTENING.search(read_log(log))
        if match:
            return match.group(1).rstrip("/")
        if proc.returncode is not None:
            raise BenchError(f"mmsgate serve exited with {proc.returncode} before listening:\n{_tail(log)}")
        await asyncio.sleep(0.05)
    raise BenchError(f"mmsgate serve did not print 'listening on' within {within:.0f} s:\n{_tail(log)}")


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


async def run_deliver(args: argparse.Namespace, jpeg: bytes, work: Path) -> DeliverRow:
    row = DeliverRow(args.requests, args.deliver_concurrency)
    data = work / "gateway" / "data"
    data.mkdir(parents=True)
    receiver = await Receiver().start()
    server: asyncio.subprocess.Process | None = None
    log = data.parent / "serve.log"
    try:
        # set up with the CLI before the server starts
        await run_cli(
            [
                "mm7",
                "add",
                CONNECTION,
                "--url",
                "http://127.0.0.1:9/unused",
                "--vasp-id",
                "a",
                "--vas-id",
                "b",
                "--inbound-username",
                INBOUND_USER,
                "--inbound-password",
                INBOUND_PASSWORD,
            ],
            data,
        )
        account = await run_cli(["account", "create", "bench-mo"], data)
        account_id = str(account["account_id"])
        await run_cli(["account", "set", account_id, "--postback-url", receiver.url], data)
        await run_cli(["number", "add", account_id, SHORT_CODE], data)

        env = child_env(
            {
                "MMSGATE_DATA_DIR": str(data),
                "MMSGATE_POSTBACK_ALLOW_NETWORKS": "127.0.0.0/8",
                "MMSGATE_WORKER_CONCURRENCY": str(args.worker_concurrency),
                "MMSGATE_DEMO": "false",
                "MMSGATE_LOG_LEVEL": "WARNING",
            }
        )
        with log.open("ab") as out:
            server = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mmsgate",
                "serve",
                "--port",
                "0",
                cwd=data.parent,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = await wait_listening(server, log)
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
                    f"{len(receiver.arrivals)} of {len(warm)} warm-up N401s within {args.timeout:g} s:\n{_tail(log)}"
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
        if server is not None:
            await stop_process(server)
        await receiver.stop()
        row.problems = log_problems(log)
    return row


# ---------------------------------------------------------------------------------------------
# report


def submit_table(rows: Sequence[SubmitRow]) -> str:
    lines = [
        "| callers in flight | submits | submits/s | submit p50 / p99 | CPU per submit: bench (connector) / MMSC peer "
        "| complete |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        p50, p99 = percentile(row.latencies_ms, 50), percentile(row.latencies_ms, 99)
        own, peer = row.own_cpu / row.submits * 1e6, row.peer_cpu / row.submits * 1e6
        done = "yes" if row.complete else f"NO: {(row.failures or ['submits missing'])[0][:120]}"
        lines.append(
            f"| {row.concurrency} | {row.submits:,} | {row.rate:,.0f} | {p50:.2f} / {p99:.2f} ms "
            f"| {own:,.0f} / {peer:,.0f} µs | {done} |"
        )
    return "\n".join(lines)


def deliver_table(row: DeliverRow) -> str:
    p50, p99 = percentile(row.latencies_ms, 50), percentile(row.latencies_ms, 99)
    gateway = row.gateway_cpu / row.n401 * 1e3 if row.n401 else 0.0
    bench = row.bench_cpu / row.n401 * 1e3 if row.n401 else 0.0
    if row.complete:
        done = "yes"
    elif row.failures:
        done = f"NO: {len(row.failures)} failed, first: {row.failures[0][:120]}"
    else:
        done = f"NO: {row.n401} N401s, {row.duplicates} duplicates"
    return "\n".join(
        [
            "| DeliverReq | in flight | requests/s | answer p50 / p99 | N401 received | last N401 after "
            "| MO/s end to end | CPU per MO: gateway / bench | complete |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            f"| {row.requests:,} | {row.concurrency} | {row.rate:,.0f} | {p50:.2f} / {p99:.2f} ms "
            f"| {row.n401:,}/{row.requests:,} | {row.last_n401:.2f} s | {row.e2e_rate:,.0f} "
            f"| {gateway:.2f} / {bench:.2f} ms | {done} |",
        ]
    )


def python_note() -> str:
    best = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000
    where = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    return f"Python {sys.version.split()[0]} ({where}), `sum(range(1000))` in {best * 1e6:.1f} µs"


@dataclass
class Results:
    submit_rows: list[SubmitRow] = field(default_factory=list)
    build_per_second: float = 0.0
    submit_body_bytes: int = 0
    jpeg_bytes: int = 0
    deliver: DeliverRow | None = None
    mo_jpeg_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return (
            not self.errors
            and all(r.complete for r in self.submit_rows)
            and (self.deliver is None or self.deliver.complete)
        )


def report(results: Results, args: argparse.Namespace) -> list[str]:
    """The tables and their notes, as markdown lines."""
    out: list[str] = []
    if results.submit_rows or results.build_per_second:
        out += [
            f"SubmitReq ({results.submit_body_bytes / 1024:.1f} KB body: SMIL, text, a {results.jpeg_bytes / 1024:.0f} "
            f"KB 640×480 JPEG in base64) to the MMSC peer; `build_submit_req` alone: "
            f"{results.build_per_second:,.0f} calls/s ({1e6 / results.build_per_second:.0f} µs each)."
            if results.build_per_second
            else "SubmitReq to the MMSC peer.",
            "",
        ]
        if results.submit_rows:
            out += [submit_table(results.submit_rows), ""]
    if results.deliver is not None:
        out += [
            f"DeliverReq ({results.deliver.body_bytes / 1024:.1f} KB body: SMIL, text, a "
            f"{results.mo_jpeg_bytes / 1024:.0f} KB 320×240 JPEG in base64) into `mmsgate serve` (SQLite, API + "
            f"workers, MMSGATE_WORKER_CONCURRENCY={args.worker_concurrency}):",
            "",
            deliver_table(results.deliver),
            "",
        ]
    notes = []
    if results.submit_rows:
        notes.append(
            f"Submit: `Mm7Carrier.submit` built directly (no limiter, JPEG bytes inline in `MmsPart.data`), one "
            f"fresh connector and MMSC peer (tests/peers/mmsc-sim.js, HTTP Basic, no reports) per row; "
            f"{args.warmup} warm-up submits, then {args.submits:,}, each with its own TransactionID; every one "
            f"answered SubmitRsp 1000 with a MessageID and checked by the peer. submits/s: submits / time to the "
            f"last answer; latency: `submit()` call to return; CPU: `time.process_time` of this process (connector, "
            f"aiohttp, callers) and utime + stime of the peer, per submit."
        )
        busiest = max(results.submit_rows, key=lambda r: r.concurrency)
        own_us, peer_us = busiest.own_cpu / busiest.submits * 1e6, busiest.peer_cpu / busiest.submits * 1e6
        if own_us > 0 and peer_us > 0:
            notes.append(
                f"Bound: with {busiest.concurrency} in flight the peer (node: one JavaScript thread, plus GC helper "
                f"threads) spends {peer_us:,.0f} µs of CPU per submit, about {1e6 / peer_us:,.0f} submits/s per core; "
                f"the connector's {own_us:,.0f} µs per submit would allow ~{1e6 / own_us:,.0f}/s on one core. The "
                f"rate here is bound by the {'peer' if peer_us > own_us else 'connector'}."
            )
    if results.deliver is not None:
        notes.append(
            f"Deliver: CLI-made MM7 connection with inbound credentials and an account owning {SHORT_CODE} (postbacks "
            f"to an aiohttp receiver in the bench process); pre-built DeliverReq POSTed with HTTP Basic by an aiohttp "
            f"client, {args.deliver_concurrency} in flight; {args.deliver_warmup} warm-up requests (all N401s in) "
            f"first. requests/s: requests / time to the last answer (each HTTP 200, DeliverRsp 1000, TransactionID "
            f"echoed); end to end: N401s / (last N401 arrival − first request); CPU per MO over that window: the "
            f"gateway's processes (/proc), and this process (client + receiver)."
        )
        if results.deliver.problems:
            notes.append(
                f"Gateway log: {len(results.deliver.problems)} warning/error lines, first: "
                f"`{results.deliver.problems[0][:200]}`"
            )
    notes += [f"Did not complete: {error}" for error in results.errors]
    out += [f"- {note}" for note in notes]
    return out


def append_results(command: str, results: Results, args: argparse.Namespace, node_version: str) -> None:
    section = [
        "",
        "## MM7 connector and VASP endpoint (`bench/mm7.py`)",
        "",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC. Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores, shared by the bench (uvloop), the MMSC peer (node "
        f"{node_version.lstrip('v')}) and `mmsgate serve`; {python_note()}.",
        "",
        *report(results, args),
    ]
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(section).rstrip() + "\n")


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="MM7 benchmark: SubmitReq build + send rate, VASP DeliverReq rate (see the module docstring)."
    )
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)} (default all)")
    parser.add_argument("--submits", type=int, default=2000, help="submits per concurrency (default 2000)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated callers in flight (default 1,8,32)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up submits per concurrency (default 200)")
    parser.add_argument("--requests", type=int, default=3000, help="DeliverReq measured (default 3000)")
    parser.add_argument("--deliver-concurrency", type=int, default=32, help="DeliverReq in flight (default 32)")
    parser.add_argument("--deliver-warmup", type=int, default=200, help="warm-up DeliverReq (default 200)")
    parser.add_argument(
        "--worker-concurrency", type=int, default=64, help="MMSGATE_WORKER_CONCURRENCY of the gateway (default 64)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the N401s (default 120)")
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if not args.parts or any(p not in PARTS for p in args.parts):
        parser.error(f"--only takes a comma-separated subset of {','.join(PARTS)}")
    try:
        args.concurrency_list = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers")
    if not args.concurrency_list or min(args.concurrency_list) < 1:
        parser.error("--concurrency: each must be positive")
    if min(args.submits, args.requests, args.deliver_concurrency, args.worker_concurrency) < 1:
        parser.error("--submits, --requests, --deliver-concurrency and --worker-concurrency must be positive")
    if args.warmup < 0 or args.deliver_warmup < 1:
        parser.error("--warmup must not be negative, --deliver-warmup must be positive")
    return args


async def run(args: argparse.Namespace, work: Path, results: Results) -> None:
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)  # finally blocks stop what started
    if "submit" in args.parts:
        jpeg = make_jpeg(640, 480, 85, 0.22)
        mms = bench_mms(jpeg)
        results.jpeg_bytes = len(jpeg)
        results.submit_body_bytes = len(build_once(mms)[0])
        results.build_per_second = build_rate(mms)
        print(
            f"== build_submit_req: {results.build_per_second:,.0f} calls/s for a "
            f"{results.submit_body_bytes / 1024:.1f} KB SubmitReq",
            flush=True,
        )
        for concurrency in args.concurrency_list:
            print(f"== submit: {args.submits:,} SubmitReq, {concurrency} in flight", flush=True)
            try:
                row = await run_submits(concurrency, mms, args, work)
            except (BenchError, AssertionError, OSError) as exc:
                results.errors.append(f"submit, {concurrency} in flight: {exc}")
                print(f"   did not complete: {exc}", flush=True)
                continue
            results.submit_rows.append(row)
            print(
                f"   {row.rate:,.0f} submits/s, p50 {percentile(row.latencies_ms, 50):.2f} ms, "
                f"p99 {percentile(row.latencies_ms, 99):.2f} ms{'' if row.complete else ', INCOMPLETE'}",
                flush=True,
            )
    if "deliver" in args.parts:
        print(
            f"== deliver: {args.requests:,} DeliverReq into mmsgate serve, {args.deliver_concurrency} in flight",
            flush=True,
        )
        mo_jpeg = make_jpeg(320, 240, 80, 0.0)
        results.mo_jpeg_bytes = len(mo_jpeg)
        try:
            results.deliver = await run_deliver(args, mo_jpeg, work)
        except (BenchError, OSError) as exc:
            results.errors.append(f"deliver: {exc}")
            print(f"   did not complete: {exc}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    node = shutil.which("node")
    missing = [p for p in PACKAGES if not (PEERS / "node_modules" / p).is_dir()]
    if "submit" in args.parts and (node is None or missing):
        print(f"needs node and the npm packages of {PEERS} (npm ci there)", file=sys.stderr)
        return 2
    node_version = (
        subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        if node is not None
        else "none"
    )
    python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    command = shlex.join([python, "bench/mm7.py", *(sys.argv[1:] if argv is None else argv)])
    results = Results()
    work = Path(tempfile.mkdtemp(prefix="mmsgate-bench-mm7-"))
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - platforms without uvloop
            asyncio.run(run(args, work, results))
        else:
            uvloop.run(run(args, work, results))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; every process started is stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n".join(report(results, args)))
    if not args.no_record:
        append_results(command, results, args, node_version)
        print(f"\nappended to {RESULTS.relative_to(REPO)}")
    return 0 if results.complete else 1


if __name__ == "__main__":
    sys.exit(main())
