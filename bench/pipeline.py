"""Pipeline benchmark: messages per second end to end (accept → submit → N101 postback received).

Measured in one run, one setup after the other (each started on free ports, warmed up, measured, stopped):

* ``sqlite`` ``mmsgate serve`` on SQLite, 1 process (API + workers; the demo account);
* ``pg1``    ``mmsgate api`` + 1 ``mmsgate worker`` on PostgreSQL (a fresh database, an account made
             with the CLI);
* ``pg2``    ``mmsgate api`` + 2 ``mmsgate worker`` processes on PostgreSQL (likewise).

Every message is a 1-slide ``sendmms`` (text + a 320×240 JPEG). The JPEG comes from a media origin in this
process (127.0.0.0/8 is allowed with ``MMSGATE_MEDIA_ALLOW_NETWORKS``); every message uses the same URL, so
after the warm-up the gateway's media cache serves it. The carrier is the sandbox, whose recipient
delivers at once (an N102 follows each N101). Postbacks go to a receiver in its own process
(bench/pipeline_load.py ``receiver``: raw asyncio HTTP/1.1, keep-alive) that notes each one's arrival time;
the load comes from a generator in its own process (bench/pipeline_load.py ``load``: K keep-alive
connections writing a precomputed raw request).

Phases per setup, after a warm-up (whose postbacks must all arrive):

1. ``paced``: R msg/s for S seconds (default 100 msg/s for 10 s, well below saturation): accept→submit
   p50/p99, from the store (the message's ``created_at`` to the sandbox submission's ``received_at``), and
   accept→N101 p50/p99 (``created_at`` to the postback's arrival at the receiver);
2. on PostgreSQL, ``ANALYZE``: a live database has statistics (autovacuum analyzes a table that grew),
   this one is seconds old;
3. ``saturated``: N messages (default 3000) as fast as the connections allow: the accept rate (N / time
   to the last API answer) and the end-to-end rate (N / (arrival of the last N101 − first request sent)).

Target (the project's issue): ≥ 2,000 msg/s end to end, and p50 accept→submit ≤ 50 ms when paced. The
table is printed and appended to docs/benchmarks.md. Exit status: 0 when every setup run passes, else 1.

Run: ``.venv/bin/python bench/pipeline.py [--only sqlite,pg1,pg2] [--messages 3000] [--rate 100]
[--paced-seconds 10] [--connections 64] [--no-record]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, LiteralString

from accept import (
    BENCH_NUMBER,
    BENCH_TO,
    DEFAULT_PG_ADMIN,
    OTHER_LOAD_WARNING,
    REPO,
    RESULTS,
    BenchError,
    CpuSnapshot,
    Credentials,
    Processes,
    _python_note,
    _serves_database,
    _tail,
    child_env,
    create_database,
    drop_database,
    mmsgate_argv,
    run_cli,
    wait_healthy,
    wait_listening,
    wait_quiet,
)

BENCH_DIR = Path(__file__).resolve().parent
LOAD_SCRIPT = BENCH_DIR / "pipeline_load.py"
SETUPS = ("sqlite", "pg1", "pg2")
LABELS = {
    "sqlite": "SQLite: `mmsgate serve` (1 process, API + workers)",
    "pg1": "PostgreSQL: `mmsgate api` + 1 worker process",
    "pg2": "PostgreSQL: `mmsgate api` + 2 worker processes",
}
TARGET_RATE = 2000.0
TARGET_P50_MS = 50.0
SENT, DELIVERED = "N101", "N102"
WORKER_RUNNING = re.compile(r"mmsgate worker \S+ running")
PROBLEM_LINE = re.compile(r"^(WARNING|ERROR|CRITICAL)\b|Traceback")
ANY_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b(sbx|evt)[-_][0-9a-f]+\b")


# ---------------------------------------------------------------------------------------------
# the media origin (a thread of this process)


def make_jpeg(width: int = 320, height: int = 240) -> bytes:
    """A small photo-like JPEG: colour gradients with a few shapes."""
    from PIL import Image, ImageDraw

    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    img = Image.merge("RGB", (horizontal, vertical, Image.new("L", (width, height), 140)))
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 30, 170, 160), fill=(230, 190, 60))
    draw.rectangle((190, 120, 300, 220), fill=(40, 90, 160))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


class MediaOrigin:
    """Serves one JPEG at ``/photo.jpg`` (HTTP/1.1, Content-Length) and counts the requests."""

    def __init__(self) -> None:
        self.body = make_jpeg()
        self.requests = 0
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                origin.requests += 1
                if self.path.split("?", 1)[0] != "/photo.jpg":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(origin.body)))
                self.end_headers()
                self.wfile.write(origin.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/photo.jpg"
        self.thread = threading.Thread(target=self.server.serve_forever, name="media-origin", daemon=True)

    def __enter__(self) -> MediaOrigin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# the postback receiver (its own process)


class Postbacks:
    """What the receiver process got: the first arrival of each (tracking id, code), and counts."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.base = base
        self.proc = proc
        self.log = log
        self.seen = 0
        self.arrivals: dict[tuple[str, str], float] = {}
        self.duplicates = 0
        self.codes: Counter[str] = Counter()

    def poll(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"the postback receiver exited with {self.proc.returncode}:\n{_tail(self.log)}")
        with urllib.request.urlopen(f"{self.base}/records?from={self.seen}", timeout=10) as answer:
            text = answer.read()
        for line in text.split(b"\n") if text else []:
            self.seen += 1
            stamp, _, body = line.partition(b" ")
            try:
                data = json.loads(body)
                key = (str(data["tracking-id"]), str(data["code"]))
            except (ValueError, KeyError, TypeError):
                key = ("", "unreadable")
            self.codes[key[1]] += 1
            if key in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[key] = float(stamp)

    def wait(
        self,
        tracking_ids: Sequence[str],
        code: str,
        timeout: float,
        gateway: Gateway,
        on_progress: Callable[[], None] | None = None,
    ) -> dict[str, float]:
        """Arrival times of ``code`` for ``tracking_ids``; waits until all arrived or ``timeout`` passed.
        ``on_progress`` is called after every poll that found one of them."""
        deadline = time.monotonic() + timeout
        missing = set(tracking_ids)
        arrived: dict[str, float] = {}
        while True:
            self.poll()
            before = len(missing)
            for tid in list(missing):
                at = self.arrivals.get((tid, code))
                if at is not None:
                    arrived[tid] = at
                    missing.discard(tid)
            if on_progress is not None and len(missing) < before:
                on_progress()
            if not missing or time.monotonic() >= deadline:
                return arrived
            gateway.check_alive()
            time.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# the gateway under test


@dataclass
class Gateway:
    base: str
    creds: Credentials
    account_id: str
    database_url: str  # sqlite:///PATH or postgresql://...
    database: str  # the PostgreSQL database's name, or ""
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def check_alive(self) -> None:
        for name, proc, log in self.procs:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode}:\n{_tail(log)}")

    def media_pools(self) -> str:
        """The live media-pool processes (multiprocessing spawn children) of each gateway process."""
        sessions = {proc.pid: name for name, proc, _ in self.procs}
        alive: Counter[str] = Counter()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                fields = stat[stat.rfind(")") + 2 :].split()
                sid = int(fields[3])
                if sid in sessions and fields[0] != "Z":
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                    if b"multiprocessing.spawn" in cmdline:
                        alive[sessions[sid]] += 1
        return ", ".join(f"{name} {alive[name]}" for name in sessions.values())

    def problems(self) -> list[str]:
        """Warning, error and traceback lines the gateway's processes logged."""
        found: list[str] = []
        for name, _, log in self.procs:
            with contextlib.suppress(OSError):
                for line in log.read_text(errors="replace").splitlines():
                    if PROBLEM_LINE.search(line):
                        found.append(f"{name}: {line.strip()}")
        return found


def gateway_env(args: argparse.Namespace) -> dict[str, str]:
    return child_env(
        {
            "MMSGATE_MEDIA_ALLOW_NETWORKS": "127.0.0.0/8",
            "MMSGATE_POSTBACK_ALLOW_NETWORKS": "127.0.0.0/8",
            "MMSGATE_WORKER_CONCURRENCY": str(args.worker_concurrency),
            "MMSGATE_LOG_LEVEL": "WARNING",
            **dict(item.split("=", 1) for item in args.env),
        }
    )


def wait_line(proc: subprocess.Popen[bytes], log: Path, pattern: re.Pattern[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if pattern.search(log.read_text(errors="replace")):
                return
        if proc.poll() is not None:
            raise BenchError(f"process exited with {proc.returncode} before saying it runs:\n{_tail(log)}")
        time.sleep(0.05)
    raise BenchError(f"no line matching {pattern.pattern!r} within {timeout:.0f} s:\n{_tail(log)}")


@contextlib.contextmanager
def start_gateway(
    name: str, procs: Processes, work: Path, args: argparse.Namespace, postback_url: str
) -> Iterator[Gateway]:
    """Start one setup's processes, with the account's postbacks going to ``postback_url``; stop them
    (and drop the setup's database) on leaving."""
    home = work / name
    home.mkdir()
    data = home / "data"
    env = gateway_env(args)
    database = ""
    gateway: Gateway | None = None
    started: list[subprocess.Popen[bytes]] = []
    try:
        if name == "sqlite":
            log = home / "serve.log"
            proc = procs.start(
                mmsgate_argv("serve", "--data-dir", str(data), "--port", "0"), log=log, cwd=home, env=env
            )
            started.append(proc)
            base = wait_listening(proc, log)
            demo = json.loads((data / "demo.json").read_text())
            creds = Credentials(demo["api_key"], demo["service_id"], demo["from"], demo["to"])
            run_cli(
                [
                    "account",
                    "set",
                    demo["account_id"],
                    "--postback-url",
                    postback_url,
                    "--data-dir",
                    str(data),
                    "--json",
                ],
                home,
            )
            url = f"sqlite:///{(data / 'mmsgate.sqlite3').resolve()}"
            gateway = Gateway(base, creds, demo["account_id"], url, "", [("serve", proc, log)])
        elif name in ("pg1", "pg2"):
            database = f"mmsgate_bench_{secrets.token_hex(4)}_{name}"
            url = create_database(args.pg_admin, database)
            account_id, creds = provision(url, data, home, postback_url)
            log = home / "api.log"
            argv = mmsgate_argv("api", "--port", "0", "--database", url, "--data-dir", str(data))
            proc = procs.start(argv, log=log, cwd=home, env=env)
            started.append(proc)
            base = wait_listening(proc, log)
            gateway = Gateway(base, creds, account_id, url, database, [("api", proc, log)])
            for number in range(1, (1 if name == "pg1" else 2) + 1):
                wlog = home / f"worker{number}.log"
                argv = mmsgate_argv("worker", "--database", url, "--data-dir", str(data))
                worker = procs.start(argv, log=wlog, cwd=home, env=env)
                started.append(worker)
                gateway.procs.append((f"worker {number}", worker, wlog))
                wait_line(worker, wlog, WORKER_RUNNING)
        else:
            raise BenchError(f"unknown setup {name!r}")
        wait_healthy(gateway.base, gateway.procs[0][1], gateway.procs[0][2])
        yield gateway
    finally:
        for proc in reversed(started):
            procs.stop(proc)
        if database:
            drop_database(args.pg_admin, database)


def provision(url: str, data: Path, home: Path, postback_url: str) -> tuple[str, Credentials]:
    """An account (postbacks to ``postback_url``), a campaign and the sender number, made with the CLI."""
    db = ["--database", url, "--data-dir", str(data), "--json"]
    account = run_cli(["account", "create", "bench", *db], home)
    account_id = str(account["account_id"])
    run_cli(["account", "set", account_id, "--postback-url", postback_url, *db], home)
    campaign = run_cli(["campaign", "create", account_id, *db], home)
    run_cli(["number", "add", account_id, BENCH_NUMBER, "--campaign", campaign["service_id"], *db], home)
    return account_id, Credentials(account["api_key"], campaign["service_id"], BENCH_NUMBER, BENCH_TO)


# ---------------------------------------------------------------------------------------------
# the store, read with plain SQL (a benchmark may; the queries work on SQLite and PostgreSQL)

TIMINGS_SQL: LiteralString = (
    "SELECT m.tracking_id, m.created_at, s.received_at FROM messages m "
    "LEFT JOIN sandbox_submissions s ON s.submission_id = m.tracking_id"
)
CENSUS_SQL: dict[str, LiteralString] = {
    "messages": "SELECT state, COUNT(*) FROM messages GROUP BY state ORDER BY state",
    "jobs": "SELECT kind || ' ' || state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY 1",
    "postbacks": "SELECT code || ' ' || state, COUNT(*) FROM postbacks GROUP BY code, state ORDER BY 1",
}
ERRORS_SQL: LiteralString = (
    "SELECT 'job: ' || last_error FROM jobs WHERE last_error IS NOT NULL "
    "UNION ALL SELECT 'postback: ' || last_error FROM postbacks WHERE last_error IS NOT NULL"
)


def query(database_url: str, sql: LiteralString) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(database_url) as pg:
        return pg.execute(sql).fetchall()


def analyze(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as pg:
        pg.execute("ANALYZE")


def census(gateway: Gateway) -> str:
    """Messages by state, jobs and postbacks by kind and state, and the distinct errors recorded."""
    parts = []
    for table, sql in CENSUS_SQL.items():
        rows = query(gateway.database_url, sql)
        parts.append(f"{table}: " + (", ".join(f"{k} {n}" for k, n in rows) or "none"))
    errors = Counter(ANY_ID.sub("…", str(r[0])) for r in query(gateway.database_url, ERRORS_SQL))
    if errors:
        parts.append("errors: " + "; ".join(f"{n} × {e[:200]}" for e, n in errors.most_common(3)))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# the load (its own process)


def sendmms_request(base: str, creds: Credentials, image_url: str) -> bytes:
    """The raw HTTP/1.1 request of a 1-slide sendmms (text + image), with its headers."""
    now = datetime.now(UTC)
    body = json.dumps(
        {
            "action": "sendmms",
            "service-id": creds.service_id,
            "to": creds.to,
            "from": creds.sender,
            "message-subject": "Your order has shipped",
            "fallback-sms-text": "Your order has shipped: see the photo of your parcel at the link below.",
            "fallback-sms-link-expiration": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "client-reference": "bench-pipeline",
            "slide": [
                {
                    "image": {"url": image_url},
                    "message-text": "Hi Sam, your parcel is on its way: here it is at our depot this morning.",
                }
            ],
        },
        separators=(",", ":"),
    ).encode()
    host = base.removeprefix("http://")
    head = (
        f"POST /ep/v2/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"x-api-key: {creds.api_key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Load:
    """What the load generator saw: per request (sent, answered, tracking id, error)."""

    started: float
    records: list[tuple[float, float, str, str]]

    @property
    def tracking_ids(self) -> list[str]:
        return [r[2] for r in self.records if r[2]]

    @property
    def failures(self) -> list[str]:
        return [r[3] for r in self.records if not r[2]]

    @property
    def last_answer(self) -> float:
        return max(r[1] for r in self.records)

    def answer_ms(self) -> list[float]:
        return [(r[1] - r[0]) * 1000 for r in self.records if r[2]]


def run_load(
    procs: Processes,
    gateway: Gateway,
    request: Path,
    *,
    count: int,
    connections: int,
    rate: float = 0.0,
    pids: list[int] | None = None,
) -> Load:
    out = request.with_name(f"load-{secrets.token_hex(3)}.json")
    log = out.with_suffix(".log")
    port = gateway.base.rsplit(":", 1)[1]
    argv = [sys.executable, str(LOAD_SCRIPT), "load", "--port", port, "--request", str(request)]
    argv += ["--count", str(count), "--connections", str(connections), "--rate", f"{rate:g}", "--out", str(out)]
    proc = procs.start(argv, log=log, cwd=request.parent, env=child_env())
    if pids is not None:
        pids.append(proc.pid)
    limit = (count / rate if rate > 0 else 0.0) + 300.0
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator did not finish within {limit:.0f} s:\n{_tail(log)}") from exc
    finally:
        procs.stop(proc, grace=2)
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"the load generator exited with {proc.returncode}:\n{_tail(log)}")
    data = json.loads(out.read_text())
    return Load(float(data["started"]), [(float(a), float(b), str(c), str(d)) for a, b, c, d in data["records"]])


# ---------------------------------------------------------------------------------------------
# measuring


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Row:
    setup: str
    label: str
    error: str = ""
    # saturated
    messages: int = 0
    accepted: int = 0
    accept_rate: float = 0.0
    n101: int = 0
    e2e_rate: float = 0.0
    last_n101_s: float = 0.0  # from the first request sent
    saturated_to_n101_ms: tuple[float, float] = (float("nan"), float("nan"))
    cores: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # gateway, PostgreSQL, bench, other
    cpu_ms: tuple[float, float] = (0.0, 0.0)  # CPU time per message (N101 received): gateway, PostgreSQL
    process_cores: dict[str, float] = field(default_factory=dict)  # the gateway's, per process (with its pool)
    # paced
    paced_messages: int = 0
    paced_accepted: int = 0
    paced_n101: int = 0
    paced_rate: float = 0.0
    to_submit_ms: tuple[float, float] = (float("nan"), float("nan"))
    to_n101_ms: tuple[float, float] = (float("nan"), float("nan"))
    answer_ms: tuple[float, float] = (float("nan"), float("nan"))
    # both
    failures: list[str] = field(default_factory=list)
    origin_fetches: int = 0
    census: str = ""
    stalled: list[str] = field(default_factory=list)  # phases whose N101 did not all arrive, and what was seen
    problems: list[str] = field(default_factory=list)
    busy_before: float = 0.0


def pair(values: Sequence[float]) -> tuple[float, float]:
    return percentile(values, 50), percentile(values, 99)


def cores_used(
    before: CpuSnapshot,
    after: CpuSnapshot,
    gateway: Gateway,
    bench_pids: Sequence[int],
    reaped_cpu: float,
    per_process: dict[str, float] | None = None,
) -> tuple[float, float, float, float]:
    """Cores used by the gateway's processes (with their media pools), PostgreSQL for its database, the
    bench (this process, the receiver, and the load generator, reaped before the end, whose CPU seconds
    are ``reaped_cpu``) and everything else on the machine. ``per_process`` gets the gateway's by process
    name."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = max(after.at - before.at, 1e-6)
    sessions = {proc.pid: name for name, proc, _ in gateway.procs}
    gateway_cores = postgres = 0.0
    bench = reaped_cpu / seconds
    for pid, (comm, sid, ticks) in after.processes.items():
        used = max(ticks - (before.processes.get(pid) or ("", 0, 0))[2], 0) / tick / seconds
        if sid in sessions:
            gateway_cores += used
            if per_process is not None:
                per_process[sessions[sid]] = per_process.get(sessions[sid], 0.0) + used
        elif pid in bench_pids or sid in bench_pids:
            bench += used
        elif _serves_database(comm, gateway.database):
            postgres += used
    machine = (after.machine - before.machine) / tick / seconds
    return gateway_cores, postgres, bench, max(0.0, machine - gateway_cores - postgres - bench)


def measure(
    name: str,
    procs: Processes,
    work: Path,
    args: argparse.Namespace,
    origin: MediaOrigin,
    postbacks: Postbacks,
) -> Row:
    row = Row(setup=name, label=LABELS[name])
    if args.busy_limit > 0:
        row.busy_before = wait_quiet(args.busy_limit)
    fetches_before = origin.requests
    try:
        with start_gateway(name, procs, work, args, postbacks.base) as gateway:
            request = work / name / "sendmms.http"
            request.write_bytes(sendmms_request(gateway.base, gateway.creds, origin.url))
            try:
                run_phases(row, gateway, procs, request, args, postbacks)
            finally:
                with contextlib.suppress(Exception):
                    row.census = census(gateway)
                row.problems = gateway.problems()
                row.origin_fetches = origin.requests - fetches_before
    except BenchError as exc:
        row.error = str(exc)
    return row


def note_stall(row: Row, phase: str, gateway: Gateway, arrived: int, expected: int, args: argparse.Namespace) -> None:
    """Say what the gateway looked like when a phase's N101 postbacks did not all arrive in time."""
    if arrived >= expected:
        return
    text = (
        f"{phase}: {arrived} of {expected} N101 postbacks within {args.timeout:g} s; live media-pool processes "
        f"per gateway process: {gateway.media_pools()}; store: {census(gateway)}"
    )
    row.stalled.append(text)
    print(f"   {text}", flush=True)


def drain(postbacks: Postbacks, tids: Sequence[str], phase: str, gateway: Gateway, args: argparse.Namespace) -> None:
    """Wait for a phase's N102 postbacks too, so that the next phase starts on an idle gateway."""
    delivered = postbacks.wait(tids, DELIVERED, args.timeout, gateway)
    if len(delivered) < len(tids):
        print(f"   {phase}: only {len(delivered)} of {len(tids)} N102 postbacks within {args.timeout:g} s", flush=True)


def run_phases(
    row: Row, gateway: Gateway, procs: Processes, request: Path, args: argparse.Namespace, postbacks: Postbacks
) -> None:
    # warm-up: the first fetch fills the media cache; the media pool's processes start
    if args.warmup > 0:
        warm = run_load(procs, gateway, request, count=args.warmup, connections=min(args.connections, args.warmup))
        row.failures += warm.failures
        if not warm.tracking_ids:
            raise BenchError(f"no warm-up message was accepted; first answer: {warm.failures[0][:300]}")
        sent = postbacks.wait(warm.tracking_ids, SENT, args.timeout, gateway)
        if len(sent) < len(warm.tracking_ids):
            note_stall(row, "warm-up", gateway, len(sent), len(warm.tracking_ids), args)
            raise BenchError(f"the warm-up's N101 postbacks did not all arrive ({len(sent)}/{len(warm.tracking_ids)})")
        drain(postbacks, warm.tracking_ids, "warm-up", gateway, args)
        print(f"   warm-up: {len(warm.tracking_ids)} messages, all N101 postbacks received", flush=True)

    # paced
    count = round(args.rate * args.paced_seconds)
    if count > 0:
        paced = run_load(procs, gateway, request, count=count, connections=args.connections, rate=args.rate)
        row.failures += paced.failures
        tids = paced.tracking_ids
        row.paced_messages, row.paced_accepted = count, len(tids)
        row.paced_rate = len(tids) / max(paced.last_answer - paced.started, 1e-6)
        sent = postbacks.wait(tids, SENT, args.timeout, gateway)
        row.paced_n101 = len(sent)
        note_stall(row, "paced", gateway, len(sent), len(tids), args)
        wanted = set(tids)
        timings = {str(t): (float(c), s) for t, c, s in query(gateway.database_url, TIMINGS_SQL) if t in wanted}
        row.to_submit_ms = pair([(s - c) * 1000 for c, s in timings.values() if s is not None])
        row.to_n101_ms = pair([(at - timings[t][0]) * 1000 for t, at in sent.items() if t in timings])
        row.answer_ms = pair(paced.answer_ms())
        drain(postbacks, tids, "paced", gateway, args)
        print(
            f"   paced: {len(tids)}/{count} accepted at {row.paced_rate:.0f} msg/s, {len(sent)} N101; "
            f"accept→submit p50 {row.to_submit_ms[0]:.1f} ms p99 {row.to_submit_ms[1]:.1f} ms; "
            f"accept→N101 p50 {row.to_n101_ms[0]:.1f} ms p99 {row.to_n101_ms[1]:.1f} ms; "
            f"API answer p50 {row.answer_ms[0]:.1f} ms p99 {row.answer_ms[1]:.1f} ms",
            flush=True,
        )

    if gateway.database:
        # a live database has statistics (autovacuum analyzes a table that grew within a minute or so);
        # this one is seconds old: without them, plans made while its tables were nearly empty would stay
        analyze(gateway.database_url)

    # saturated
    bench_pids = [os.getpid(), postbacks.proc.pid]
    before = CpuSnapshot.take()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = run_load(procs, gateway, request, count=args.messages, connections=args.connections, pids=bench_pids)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator's CPU: it is gone by the end
    load_cpu = (usage.ru_utime - reaped.ru_utime) + (usage.ru_stime - reaped.ru_stime)
    row.failures += load.failures
    tids = load.tracking_ids
    row.messages, row.accepted = args.messages, len(tids)
    row.accept_rate = len(tids) / max(load.last_answer - load.started, 1e-6)
    print(f"   saturated: {len(tids)}/{args.messages} accepted at {row.accept_rate:,.0f} msg/s", flush=True)
    after = [CpuSnapshot.take()]  # the CPU window ends when the last N101 (so far) arrived

    def progress() -> None:
        after[0] = CpuSnapshot.take()

    sent = postbacks.wait(tids, SENT, args.timeout, gateway, on_progress=progress)
    row.cores = cores_used(before, after[0], gateway, bench_pids, load_cpu, row.process_cores)
    row.n101 = len(sent)
    if sent:
        spent = (after[0].at - before.at) * 1000 / len(sent)
        row.cpu_ms = (row.cores[0] * spent, row.cores[1] * spent)
    note_stall(row, "saturated", gateway, len(sent), len(tids), args)
    if sent:
        last = max(sent.values())
        row.last_n101_s = last - load.started
        row.e2e_rate = len(sent) / max(last - load.started, 1e-6)
        created = {str(t): float(c) for t, c, _ in query(gateway.database_url, TIMINGS_SQL)}
        row.saturated_to_n101_ms = pair([(at - created[t]) * 1000 for t, at in sent.items() if t in created])
    print(
        f"   saturated: {len(sent)}/{len(tids)} N101 received, the last {row.last_n101_s:.2f} s after the first "
        f"request: {row.e2e_rate:,.0f} msg/s end to end; CPU cores (gateway / PostgreSQL / bench / other): "
        f"{' / '.join(f'{c:.2f}' for c in row.cores)} (gateway: {process_cores(row)}); CPU per message: gateway "
        f"{row.cpu_ms[0]:.2f} ms, PostgreSQL {row.cpu_ms[1]:.2f} ms",
        flush=True,
    )


# ---------------------------------------------------------------------------------------------
# report


def process_cores(row: Row) -> str:
    return ", ".join(f"{name} {cores:.2f}" for name, cores in row.process_cores.items())


def verdict(row: Row) -> str:
    if not row.messages and not row.paced_accepted:
        return "FAIL (did not run)"
    reasons = []
    if row.error:
        reasons.append("incomplete")
    if row.failures:
        reasons.append(f"{len(row.failures)} API failures")
    if row.n101 < row.accepted or row.paced_n101 < row.paced_accepted:
        reasons.append("N101 missing")
    if not row.messages:
        reasons.append("no saturated phase")
    elif row.e2e_rate < TARGET_RATE:
        reasons.append(f"< {TARGET_RATE:,.0f} msg/s")
    if not row.paced_accepted:
        reasons.append("no paced phase")
    elif not row.to_submit_ms[0] <= TARGET_P50_MS:
        reasons.append(f"paced p50 > {TARGET_P50_MS:g} ms")
    return "FAIL: " + ", ".join(reasons) if reasons else "PASS"


def _ms(values: tuple[float, float]) -> str:
    p50, p99 = values
    if p50 != p50:  # nan
        return "–"
    return f"{p50:,.0f} / {p99:,.0f} ms" if p50 >= 100 else f"{p50:.1f} / {p99:.1f} ms"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| setup | accept msg/s | end-to-end msg/s (saturated) | N101 received | paced accept→submit p50 / p99 "
        "| paced accept→N101 p50 / p99 | CPU per message: gateway / PostgreSQL "
        "| CPU cores: gateway / PostgreSQL / bench / other | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        if not row.messages and not row.paced_accepted:
            lines.append(f"| {row.label} | – | – | – | – | – | – | – | {verdict(row)} |")
            continue
        accept, e2e, cpu, cores, received = "–", "–", "–", "–", []
        if row.messages:
            accept, e2e = f"{row.accept_rate:,.0f}", f"{row.e2e_rate:,.0f}"
            cpu = f"{row.cpu_ms[0]:.2f} / {row.cpu_ms[1]:.2f} ms"
            cores = " / ".join(f"{c:.2f}" for c in row.cores)
            received.append(f"{row.n101}/{row.accepted}")
        if row.paced_accepted:
            received.append(f"{row.paced_n101}/{row.paced_accepted} paced")
        lines.append(
            f"| {row.label} | {accept} | {e2e} | {' + '.join(received)} | {_ms(row.to_submit_ms)} "
            f"| {_ms(row.to_n101_ms)} | {cpu} | {cores} | {verdict(row)} |"
        )
    return "\n".join(lines)


def notes(rows: Sequence[Row], args: argparse.Namespace, origin: MediaOrigin) -> list[str]:
    paced = f"paced {args.rate:g} msg/s for {args.paced_seconds:g} s" if args.rate > 0 else "no paced phase"
    out = [
        f"Each message: 1 slide, text + a {len(origin.body) // 1024} KB 320×240 JPEG from an origin in the bench "
        f"process (same URL every time: the gateway's media cache serves it after the first fetch); sandbox "
        f"carrier, the recipient delivers at once (an N102 follows each N101); MMSGATE_WORKER_CONCURRENCY="
        f"{args.worker_concurrency}. Load: {args.connections} keep-alive connections; warm-up {args.warmup} "
        f"messages, then {paced}, then {args.messages} messages saturated. End to end = N101 received / "
        f"(last N101 arrival − first request sent); CPU over that window (*CPU per message*: CPU time "
        f"/ N101 received, less disturbed by other load than msg/s; *bench*: load generator, postback receiver, "
        f"media origin; *other*: everything else on the machine)."
    ]
    for row in rows:
        if row.error:
            first = row.error.strip().splitlines()[0] if row.error.strip() else "error"
            out.append(f"{row.setup} did not complete: {first}")
        measured = []
        if row.messages:
            measured.append(
                f"last N101 {row.last_n101_s:.1f} s after the first request, accept→N101 p50 / p99 when saturated "
                f"{_ms(row.saturated_to_n101_ms)}, gateway cores by process {process_cores(row)}"
            )
        if row.paced_accepted:
            measured.append(f"paced: {row.paced_rate:.0f} msg/s, API answer p50 / p99 {_ms(row.answer_ms)}")
        if measured:
            out.append(f"{row.setup}: {'; '.join(measured)}; origin fetched {row.origin_fetches}×.")
        if row.paced_rate and row.e2e_rate and row.e2e_rate < args.rate:
            out.append(
                f"{row.setup}: the paced rate ({args.rate:g} msg/s) is above the end-to-end capacity "
                f"({row.e2e_rate:,.0f} msg/s): the paced latencies are those of a saturated gateway."
            )
        out += [f"{row.setup}: {text}" for text in row.stalled]
        if row.failures:
            out.append(f"{row.setup}: {len(row.failures)} API failures, first: `{row.failures[0][:200]}`")
        if row.problems:
            out.append(
                f"{row.setup}: {len(row.problems)} warning/error lines in the gateway's logs, first: "
                f"`{row.problems[0][:200]}`"
            )
        if row.busy_before > OTHER_LOAD_WARNING or row.cores[3] > OTHER_LOAD_WARNING:
            out.append(
                f"{row.setup}: other load on the machine ({row.busy_before:.2f} cores before the setup, "
                f"{row.cores[3]:.2f} during the saturated phase): its figures are disturbed."
            )
    return out


def append_results(command: str, rows: Sequence[Row], args: argparse.Namespace, origin: MediaOrigin) -> None:
    section = [
        "",
        "## Pipeline (accept → submit → N101 postback)",
        "",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC. Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores, shared by the gateway, PostgreSQL, the load generator and the postback "
        f"receiver; {_python_note()}. Target: ≥ {TARGET_RATE:,.0f} msg/s end to end (saturated), p50 "
        f"accept→submit ≤ {TARGET_P50_MS:g} ms (paced, {args.rate:g} msg/s).",
        "",
        table(rows),
        "",
    ]
    section += [f"- {note}" for note in notes(rows, args, origin)]
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(section).rstrip() + "\n")


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Pipeline benchmark: accept → submit → N101 postback, end to end (see the module docstring)."
    )
    parser.add_argument(
        "--only", default=",".join(SETUPS), help=f"comma-separated setups to run, of {','.join(SETUPS)} (default all)"
    )
    parser.add_argument("--messages", type=int, default=3000, help="messages of the saturated phase (default 3000)")
    parser.add_argument("--rate", type=float, default=100.0, help="msg/s of the paced phase (default 100)")
    parser.add_argument("--paced-seconds", type=float, default=10.0, help="seconds of the paced phase (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections of the load (default 64)")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up messages per setup (default 100)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for a phase's N101 postbacks (default 120)"
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=64, help="MMSGATE_WORKER_CONCURRENCY of the gateway (default 64)"
    )
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help=f"admin database URL (default {DEFAULT_PG_ADMIN})")
    parser.add_argument(
        "--busy-limit",
        type=float,
        default=0.25,
        help="before each setup, wait (up to 2 min) until other programs use fewer cores than this (0: do not wait)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="MMSGATE_NAME=VALUE",
        help="a setting of the gateway's processes (repeatable), to try a setting's effect",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SETUPS]
    if unknown or not chosen:
        parser.error(f"--only takes a comma-separated subset of {','.join(SETUPS)}; unknown: {','.join(unknown)}")
    if args.messages < 1 or args.connections < 1 or args.rate < 0 or args.warmup < 0:
        parser.error("--messages and --connections must be positive, --rate and --warmup not negative")
    args.setups = [s for s in SETUPS if s in chosen]
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def start_receiver(procs: Processes, work: Path) -> Postbacks:
    log = work / "receiver.log"
    proc = procs.start([sys.executable, str(LOAD_SCRIPT), "receiver"], log=log, cwd=work, env=child_env())
    return Postbacks(wait_listening(proc, log), proc, log)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    command = shlex.join([python, "bench/pipeline.py", *(sys.argv[1:] if argv is None else argv)])
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="mmsgate-pipeline-"))
    rows: list[Row] = []
    try:
        with MediaOrigin() as origin:
            postbacks = start_receiver(procs, work)
            for name in args.setups:
                print(f"== {name}: {LABELS[name]}", flush=True)
                row = measure(name, procs, work, args, origin, postbacks)
                rows.append(row)
                if row.error:
                    print(f"   did not complete: {row.error}", flush=True)
                if row.census and not row.stalled:
                    print(f"   store: {row.census}", flush=True)
                for line in row.problems[:5]:
                    print(f"   log: {line[:300]}", flush=True)
            print()
            print(table(rows))
            for note in notes(rows, args, origin):
                print(f"- {note}")
            if not args.no_record:
                append_results(command, rows, args, origin)
                print(f"\nappended to {RESULTS.relative_to(REPO)}")
    except KeyboardInterrupt:
        print("interrupted; stopping every process started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if rows and all(verdict(r) == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
