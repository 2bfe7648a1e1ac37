"""Accept benchmark: how many ``sendmms`` requests per second mmsgate accepts, against the bare ceiling.

Measured in one run, one setup after the other (each started on free ports, warmed up, measured,
stopped):

* ``bare``   the ceiling: a bare Starlette app answering fixed JSON (bench/bare_app.py), 1 process;
* ``sqlite`` ``mmsgate serve`` on SQLite, 1 process (the demo account);
* ``pg1``    ``mmsgate serve`` on PostgreSQL, 1 process (the demo account, a fresh database);
* ``pg2``    ``mmsgate api --processes 2`` on PostgreSQL (an account provisioned with the CLI, a fresh
             database).

Load: wrk (2 threads, 64 connections, ``--latency``) POSTing a ~1.5 KB sendmms body with 3 slides; a
Lua ``response`` hook counts answers that are not ``"status":"success"``. wrk and the server share the
machine's cores, as in docs/benchmarks.md and the performance guide.

Target: accept >= 0.5 x the bare ceiling measured in the same run, with p99 <= 25 ms and no errors.
The table is printed and appended to docs/benchmarks.md. Exit status: 0 when every setup run passes
(the ceiling counts as passing when it has no errors), 1 otherwise, 2 without wrk.

Run: ``.venv/bin/python bench/accept.py [--duration 15] [--connections 64] [--only sqlite,pg1,pg2,bare]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = REPO / "docs" / "benchmarks.md"
SETUPS = ("bare", "sqlite", "pg1", "pg2")
LABELS = {
    "bare": "bare Starlette, fixed JSON (1 process)",
    "sqlite": "mmsgate serve, SQLite (1 process, API + worker)",
    "pg1": "mmsgate api, PostgreSQL (1 process)",
    "pg2": "mmsgate api, PostgreSQL (2 processes)",
}
TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
OTHER_LOAD_WARNING = 0.15  # cores used by other programs during a run that make its figures suspect
BODY_TARGET_BYTES = 1500
LISTENING = re.compile(r"listening on (http://\S+)")
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_NUMBER = "28444"
BENCH_TO = "15550100001"
CLK_TCK = 100  # replaced in main() by os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A setup could not be started or measured; the message says why."""


# ---------------------------------------------------------------------------------------------
# processes


@dataclass
class Processes:
    """Every process the benchmark starts, each in its own session (so its whole group can be ended)."""

    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: Sequence[str], *, log: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; reap the leader."""
        if proc in self.running:
            self.running.remove(proc)
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        # children of a multi-process server may outlive their leader by a moment
        deadline = time.monotonic() + grace
        while _session_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            with contextlib.suppress(Exception):
                self.stop(proc)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _proc_stat(pid: str) -> tuple[str, list[str]] | None:
    """The command name and the fields of /proc/PID/stat after it (index 0 is field 3, the state)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.find("(") + 1 : text.rfind(")")], text[text.rfind(")") + 2 :].split()


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU ticks (user + system) of every live process, and of the whole machine, at one moment."""

    at: float
    machine: int
    processes: dict[int, tuple[str, int, int]]  # pid -> (command or PostgreSQL title, session, ticks)

    @classmethod
    def take(cls) -> CpuSnapshot:
        processes: dict[int, tuple[str, int, int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            stat = _proc_stat(entry)
            if stat is None or len(stat[1]) < 13 or stat[1][0] == "Z":
                continue
            comm, fields = stat
            if comm.startswith("postgres"):  # its title says which database a backend serves
                with contextlib.suppress(OSError):
                    comm = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            processes[int(entry)] = (comm, int(fields[3]), int(fields[11]) + int(fields[12]))
        cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
        busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6]  # user nice system irq softirq
        return cls(time.monotonic(), busy, processes)


@dataclass
class CpuUse:
    """Cores used between two snapshots: by the server's session (per process), by PostgreSQL for it
    (the backends of its database and the shared auxiliary processes), and by the whole machine."""

    server: list[float]
    postgres: float
    machine: float

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot, server_sid: int, database: str) -> CpuUse:
        seconds = max(after.at - before.at, 1e-6)

        def used(pid: int) -> float:
            ticks = after.processes[pid][2] - (before.processes.get(pid) or ("", 0, 0))[2]
            return max(ticks, 0) / CLK_TCK / seconds

        server = [used(pid) for pid, (_, sid, _) in sorted(after.processes.items()) if sid == server_sid]
        postgres = sum(used(pid) for pid, (comm, _, _) in after.processes.items() if _serves_database(comm, database))
        machine = (after.machine - before.machine) / CLK_TCK / seconds
        return cls([c for c in server if c >= 0.02], postgres, machine)

    @property
    def server_total(self) -> float:
        return sum(self.server)


def _serves_database(title: str, database: str) -> bool:
    """Whether a PostgreSQL process works for ``database``: one of its backends ("postgres: 15/main: USER
    DB HOST(PORT) STATE"), or an auxiliary process every database shares (WAL writer, checkpointer, ...)."""
    if not title.startswith("postgres"):
        return False
    is_backend = "(" in title and ")" in title
    return not is_backend or (bool(database) and f" {database} " in title)


def _session_members(sid: int) -> list[int]:
    """The live processes of session ``sid``."""
    members: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(entry)
            if stat is not None and len(stat[1]) > 3 and stat[1][0] != "Z" and int(stat[1][3]) == sid:
                members.append(int(entry))
    return members


def machine_busy(seconds: float = 1.0) -> float:
    """Cores the machine keeps busy over ``seconds``, before we start anything."""
    before = CpuSnapshot.take()
    time.sleep(seconds)
    after = CpuSnapshot.take()
    return (after.machine - before.machine) / CLK_TCK / (after.at - before.at)


def wait_quiet(limit: float = 0.25, patience: float = 120.0) -> float:
    """Wait (up to ``patience`` seconds) until other load on the machine is below ``limit`` cores."""
    deadline = time.monotonic() + patience
    busy = machine_busy()
    warned = False
    while busy > limit and time.monotonic() < deadline:
        if not warned:
            print(
                f"   the machine is busy ({busy:.2f} cores in use by others); waiting for it to calm down", flush=True
            )
            warned = True
        busy = machine_busy(2.0)
    return busy


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> str:
    """The base URL from the server's ``listening on`` line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            match = LISTENING.search(log.read_text(errors="replace"))
            if match:
                return match.group(1).rstrip("/")
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode} before listening:\n{_tail(log)}")
        time.sleep(0.05)
    raise BenchError(f"server did not print 'listening on' within {timeout:.0f} s:\n{_tail(log)}")


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise BenchError(f"{base}/health did not answer 200 within {timeout:.0f} s:\n{_tail(log)}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without any MMSGATE_* setting of the caller's shell, unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSGATE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def mmsgate_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmsgate", *args]


def run_cli(args: Sequence[str], cwd: Path) -> dict[str, Any]:
    """Run an ``mmsgate ... --json`` admin command; its JSON answer."""
    done = subprocess.run(
        mmsgate_argv(*args), cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"mmsgate {shlex.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    last = done.stdout.strip().splitlines()[-1]
    answer: dict[str, Any] = json.loads(last)
    return answer


# ---------------------------------------------------------------------------------------------
# PostgreSQL databases


def create_database(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urllib.parse.urlsplit(admin_url)._replace(path=f"/{name}").geturl()


def drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ---------------------------------------------------------------------------------------------
# the request


@dataclass(frozen=True)
class Credentials:
    api_key: str
    service_id: str
    sender: str
    to: str


BARE_CREDENTIALS = Credentials(api_key="bare", service_id="1000000001", sender=BENCH_NUMBER, to=BENCH_TO)


def sendmms_body(creds: Credentials, now: datetime) -> bytes:
    """A realistic sendmms body of ~1.5 KB: 3 valid slides (image + text, audio + image + text, pdf + text)."""
    cdn = "https://cdn.example-retail.com/campaigns/2026/spring-sale"
    data: dict[str, Any] = {
        "action": "sendmms",
        "service-id": creds.service_id,
        "to": creds.to,
        "from": creds.sender,
        "message-subject": "Spring sale: 20% off garden furniture this weekend",
        "fallback-sms-text": (
            "Spring sale at Example Retail: 20% off all garden furniture, Friday to Sunday. "
            "See the catalogue and find your nearest store with the link below. Reply STOP to opt out."
        ),
        "fallback-sms-link-expiration": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "client-reference": f"bench-spring-{secrets.token_hex(6)}",
        "cache-content": True,
        "slide": [
            {
                "image": {"url": f"{cdn}/hero-640x480.jpg?v=3&utm_source=mms&utm_campaign=spring"},
                "message-text": (
                    "Hi Sam! The Example Retail spring sale starts this Friday: 20% off every table, "
                    "chair, parasol and lounger in the garden range, in store and online."
                ),
            },
            {
                "audio": {"url": f"{cdn}/jingle-15s.mp3?v=1"},
                "image": {"url": f"{cdn}/lounger-detail.png?v=2"},
                "message-text": (
                    "Our bestselling teak lounger is now 239.00 instead of 299.00. Weatherproof, "
                    "foldable, and delivered free to your door within five working days."
                ),
            },
            {
                "pdf": {"url": f"{cdn}/catalogue-spring-2026.pdf?v=5"},
                "message-text": "",
            },
        ],
    }
    filler = (
        "The full catalogue lists every product in the sale with sizes, colours and prices. "
        "Offer valid while stocks last; see the website for the terms and conditions. "
    )
    base = len(json.dumps(data, separators=(",", ":")).encode())
    text = ""
    while base + len(text.encode()) < BODY_TARGET_BYTES:
        text += filler
    data["slide"][2]["message-text"] = text[: max(0, BODY_TARGET_BYTES - base)].rstrip() or filler.strip()
    return json.dumps(data, separators=(",", ":")).encode()


def lua_long_string(value: str) -> str:
    for level in range(1, 10):
        close = "]" + "=" * level + "]"
        if close not in value:
            return "[" + "=" * level + "[" + value + close
    raise ValueError("cannot quote this value as a Lua long string")


def wrk_script(body: bytes, api_key: str) -> str:
    return f"""-- written by bench/accept.py
wrk.method = "POST"
wrk.body = {lua_long_string(body.decode())}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = {lua_long_string(api_key)}

local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

failures = 0
sample = ""

function response(status, headers, body)
  if not string.find(body, '"status":"success"', 1, true) then
    failures = failures + 1
    if sample == "" then
      sample = tostring(status) .. " " .. string.sub(body, 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local total, first = 0, ""
  for _, t in ipairs(threads) do
    total = total + (t:get("failures") or 0)
    local s = t:get("sample")
    if first == "" and s ~= nil then first = s end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d failures=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, total, e.connect, e.read, e.write, e.status, e.timeout))
  if first ~= "" then
    io.write("BENCH-SAMPLE " .. (string.gsub(first, "[\\r\\n]", " ")) .. "\\n")
  end
end
"""


def sanity_check(base: str, body: bytes, api_key: str) -> str:
    """POST the benchmark body once; the answer's text, or BenchError if it is not a success."""
    request = urllib.request.Request(
        f"{base}/ep/v2/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "x-api-key": api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text: str = answer.read().decode("utf-8", "replace")
    if '"status":"success"' not in text:
        raise BenchError(f"the benchmark request is not accepted: {text}")
    return text


# ---------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    socket_errors: int
    sample: str
    wrk_cpu: float  # cores used by wrk during the run

    @property
    def errors(self) -> int:
        return self.failures + self.socket_errors


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _latency_ms(output: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
    if not match:
        raise BenchError(f"no {percentile}% latency in wrk's output:\n{output}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str, wrk_cpu: float) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    bench = re.search(
        r"^BENCH requests=(\d+) failures=(\d+) connect=(\d+) read=(\d+) write=(\d+) status=(\d+) timeout=(\d+)",
        output,
        re.MULTILINE,
    )
    if not rps or not bench:
        raise BenchError(f"cannot parse wrk's output:\n{output}")
    sample = re.search(r"^BENCH-SAMPLE (.*)$", output, re.MULTILINE)
    connect, read, write, timeout = (int(bench.group(i)) for i in (3, 4, 5, 7))
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_latency_ms(output, "50"),
        p99_ms=_latency_ms(output, "99"),
        requests=int(bench.group(1)),
        failures=int(bench.group(2)),
        socket_errors=connect + read + write + timeout,
        sample=sample.group(1) if sample else "",
        wrk_cpu=wrk_cpu,
    )


def run_wrk(
    procs: Processes, wrk: str, url: str, script: Path, *, duration: float, connections: int, threads: int
) -> tuple[str, float]:
    """wrk's output and the cores it used (from the reaped child's rusage)."""
    argv = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out_path = script.with_suffix(".out")
    started = time.monotonic()
    proc = procs.start(argv, log=out_path, cwd=script.parent, env=dict(os.environ))
    try:
        proc.wait(timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish:\n{_tail(out_path)}") from exc
    finally:
        procs.stop(proc, grace=2)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = out_path.read_text(errors="replace")
    out_path.unlink()
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}:\n{output}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return output, cpu / elapsed if elapsed > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# setups


@dataclass
class Server:
    base: str
    creds: Credentials
    proc: subprocess.Popen[bytes]
    log: Path
    database: str  # the PostgreSQL database's name, or ""


@dataclass
class Row:
    setup: str
    label: str
    result: WrkResult | None = None
    error: str = ""
    cpu: CpuUse | None = None  # during the measured run
    other_cpu: float = 0.0  # cores used by neither the server, wrk nor PostgreSQL: other load on the machine
    busy_before: float = 0.0  # cores in use on the machine just before the setup started
    body_bytes: int = 0


def provision(url: str, home: Path) -> Credentials:
    """An account, a campaign and the sender number, made with the admin CLI, in database ``url``."""
    db = ["--database", url, "--data-dir", str(home / "data"), "--json"]
    account = run_cli(["account", "create", "bench", *db], home)
    campaign = run_cli(["campaign", "create", account["account_id"], *db], home)
    run_cli(["number", "add", account["account_id"], BENCH_NUMBER, "--campaign", campaign["service_id"], *db], home)
    return Credentials(account["api_key"], campaign["service_id"], BENCH_NUMBER, BENCH_TO)


@contextlib.contextmanager
def start_setup(name: str, procs: Processes, work: Path, args: argparse.Namespace) -> Iterator[Server]:
    """Start one setup's server(s); stop them (and drop its database) on leaving."""
    home = work / name
    home.mkdir()
    log = home / "server.log"
    data = str(home / "data")
    database = ""
    proc: subprocess.Popen[bytes] | None = None
    try:
        if name == "bare":
            argv = [sys.executable, str(BENCH_DIR / "bare_app.py"), "--port", "0"]
            proc = procs.start(argv, log=log, cwd=home, env=child_env())
            base = wait_listening(proc, log)
            creds = BARE_CREDENTIALS
        elif name == "sqlite":
            env = child_env({"MMSGATE_WORKERS": "false"} if args.no_workers else None)
            proc = procs.start(mmsgate_argv("serve", "--data-dir", data, "--port", "0"), log=log, cwd=home, env=env)
            base = wait_listening(proc, log)
            demo = json.loads((home / "data" / "demo.json").read_text())
            creds = Credentials(demo["api_key"], demo["service_id"], demo["from"], demo["to"])
        elif name in ("pg1", "pg2"):
            database = f"mmsgate_bench_{secrets.token_hex(4)}_{name}"
            url = create_database(args.pg_admin, database)
            creds = provision(url, home)
            # one process may take port 0; several need a concrete port (uvicorn's supervisor binds it)
            port = "0" if name == "pg1" else str(free_port())
            processes = "1" if name == "pg1" else "2"
            argv = mmsgate_argv("api", "--processes", processes, "--port", port, "--database", url, "--data-dir", data)
            proc = procs.start(argv, log=log, cwd=home, env=child_env())
            base = wait_listening(proc, log)
        else:
            raise BenchError(f"unknown setup {name!r}")
        wait_healthy(base, proc, log)
        if name == "pg2":
            _wait_workers(proc.pid, 2, log)
        yield Server(base, creds, proc, log, database)
    finally:
        if proc is not None:
            procs.stop(proc)
        if database:
            drop_database(args.pg_admin, database)


def _wait_workers(sid: int, count: int, log: Path, timeout: float = 30.0) -> None:
    """With uvicorn's supervisor, wait until ``count`` worker processes exist (beside the supervisor)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_session_members(sid)) >= count + 1:
            time.sleep(1.0)  # let each worker finish its startup (store pool, lifespan)
            return
        time.sleep(0.1)
    raise BenchError(f"fewer than {count} API processes started:\n{_tail(log)}")


def label_of(name: str, args: argparse.Namespace) -> str:
    if name == "sqlite" and args.no_workers:
        return "mmsgate serve, SQLite (1 process, API only: MMSGATE_WORKERS=false)"
    return LABELS[name]


def measure(name: str, procs: Processes, work: Path, args: argparse.Namespace, wrk: str) -> Row:
    row = Row(setup=name, label=label_of(name, args))
    if args.busy_limit > 0:
        row.busy_before = wait_quiet(args.busy_limit)
    try:
        with start_setup(name, procs, work, args) as server:
            body = sendmms_body(server.creds, datetime.now(UTC))
            row.body_bytes = len(body)
            sanity_check(server.base, body, server.creds.api_key)
            script = work / name / "sendmms.lua"
            script.write_text(wrk_script(body, server.creds.api_key))
            url = f"{server.base}/ep/v2/"
            if args.warmup > 0:
                run_wrk(
                    procs, wrk, url, script, duration=args.warmup, connections=args.connections, threads=args.threads
                )
            before = CpuSnapshot.take()
            output, wrk_cpu = run_wrk(
                procs, wrk, url, script, duration=args.duration, connections=args.connections, threads=args.threads
            )
            row.cpu = CpuUse.between(before, CpuSnapshot.take(), server.proc.pid, server.database)
            row.result = parse_wrk(output, wrk_cpu)
            row.other_cpu = max(0.0, row.cpu.machine - row.cpu.server_total - row.cpu.postgres - wrk_cpu)
            if args.verbose:
                print(output, flush=True)
    except BenchError as exc:
        row.error = str(exc)
    return row


# ---------------------------------------------------------------------------------------------
# report


def verdict(row: Row, ceiling: float | None) -> str:
    if row.result is None:
        return "FAIL (did not run)"
    r = row.result
    if row.setup == "bare":
        return "ceiling" if r.errors == 0 else "ceiling has errors"
    reasons = []
    if r.errors:
        reasons.append(f"{r.errors} errors")
    if ceiling is None:
        reasons.append("no ceiling measured")
    elif r.rps < TARGET_RATIO * ceiling:
        reasons.append(f"< {TARGET_RATIO:g} x ceiling")
    if r.p99_ms > TARGET_P99_MS:
        reasons.append(f"p99 > {TARGET_P99_MS:g} ms")
    if not reasons:
        return "PASS"
    if reasons == ["no ceiling measured"]:
        return "n/a (no ceiling)"
    return "FAIL: " + ", ".join(reasons)


def cpu_per_request(row: Row) -> str:
    """Server CPU time per answered request (all its processes): less disturbed by other load than req/s."""
    if row.cpu is None or row.result is None or row.result.rps <= 0:
        return "–"
    return f"{row.cpu.server_total / row.result.rps * 1e6:.0f} µs"


def cpu_summary(row: Row) -> str:
    if row.cpu is None or row.result is None:
        return "–"
    server = f"{row.cpu.server_total:.2f}"
    if len(row.cpu.server) > 1:
        server += " (" + " + ".join(f"{c:.2f}" for c in row.cpu.server) + ")"
    return f"{server} / {row.result.wrk_cpu:.2f} / {row.cpu.postgres:.2f} / {row.other_cpu:.2f}"


def table(rows: Sequence[Row]) -> str:
    ceiling = _ceiling(rows)
    lines = [
        "| setup | req/s | p50 | p99 | ratio to bare ceiling | errors | verdict "
        "| server CPU per request | CPU cores: server / wrk / PostgreSQL / other |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        r = row.result
        if r is None:
            lines.append(f"| {row.label} | – | – | – | – | – | {verdict(row, ceiling)} | – | – |")
            continue
        ratio = f"{r.rps / ceiling:.2f}" if ceiling else "n/a"
        errors = f"{r.errors}" if r.errors == 0 else f"**{r.errors}** ({100 * r.errors / max(r.requests, 1):.2f}%)"
        lines.append(
            f"| {row.label} | {r.rps:,.0f} | {r.p50_ms:.2f} ms | {r.p99_ms:.2f} ms | {ratio} "
            f"| {errors} | {verdict(row, ceiling)} | {cpu_per_request(row)} | {cpu_summary(row)} |"
        )
    return "\n".join(lines)


def notes(rows: Sequence[Row]) -> list[str]:
    out: list[str] = []
    by = {r.setup: r.result for r in rows if r.result}
    one, two = by.get("pg1"), by.get("pg2")
    if one and two and one.rps:
        out.append(f"PostgreSQL, 2 API processes / 1: {two.rps / one.rps:.2f}x.")
    for row in rows:
        if row.error:
            first = row.error.strip().splitlines()[0] if row.error.strip() else "error"
            out.append(f"{row.setup} did not run: {first}")
        elif row.result and row.result.sample:
            out.append(f"{row.setup}: first non-success answer: `{row.result.sample[:200]}`")
        if row.result and (row.other_cpu > OTHER_LOAD_WARNING or row.busy_before > OTHER_LOAD_WARNING):
            out.append(
                f"{row.setup}: other load on the machine ({row.busy_before:.2f} cores before, "
                f"{row.other_cpu:.2f} during the run): its figures are disturbed; run again on a quiet machine."
            )
    return out


def _python_note() -> str:
    """The interpreter and how fast it is here (builds differ: a build without PGO/LTO is 2x slower)."""
    import timeit

    best = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000
    where = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    return f"Python {sys.version.split()[0]} ({where}), `sum(range(1000))` in {best * 1e6:.1f} µs"


def append_results(command: str, rows: Sequence[Row], args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmarks\n\n"
            "Results of `bench/` scripts, newest last. Each section is one run: compare ratios within a run, not "
            "absolute numbers across runs (±10–15% drift). Accept target (performance guide): ≥ 0.5 × the bare "
            "Starlette ceiling of the same run, with p99 ≤ 25 ms.\n\n"
            "Columns of `accept.py`: *server CPU per request* is the CPU time of all the server's processes divided "
            "by the requests answered (less disturbed by other load than req/s); *CPU cores* are the cores used "
            "during the measured run by the server, wrk, PostgreSQL (backends of the run's database and shared "
            "auxiliary processes) and everything else on the machine (*other*: more than 0.15 marks a disturbed "
            "run).\n"
        )
    body_bytes = next((r.body_bytes for r in rows if r.body_bytes), 0)
    section = [
        "",
        f"## {datetime.now(UTC).strftime('%Y-%m-%d')}: accept (`bench/accept.py`)",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores, shared by wrk and the server(s); {_python_note()}. "
        f"Load: wrk {args.threads} threads, {args.connections} connections, {args.warmup:g} s warm-up, "
        f"{args.duration:g} s measured per setup; `sendmms` body {body_bytes} bytes, 3 slides. "
        f"Target: ≥ {TARGET_RATIO:g} × bare ceiling, p99 ≤ {TARGET_P99_MS:g} ms, no errors.",
        "",
        table(rows),
        "",
    ]
    section += [f"- {note}" for note in notes(rows)]
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(section).rstrip() + "\n")


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Accept benchmark: mmsgate against a bare Starlette ceiling (see the module docstring)."
    )
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per setup (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per setup (default 3; 0: none)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--only", default=",".join(SETUPS), help=f"comma-separated setups to run, of {','.join(SETUPS)} (default all)"
    )
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help=f"admin database URL (default {DEFAULT_PG_ADMIN})")
    parser.add_argument(
        "--busy-limit",
        type=float,
        default=0.25,
        help="before each setup, wait (up to 2 min) until other programs use fewer cores than this (0: do not wait)",
    )
    parser.add_argument(
        "--no-workers",
        action="store_true",
        help="run `mmsgate serve` (sqlite) without its embedded job worker (MMSGATE_WORKERS=false): the API alone",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    parser.add_argument("--verbose", action="store_true", help="print wrk's full output")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SETUPS]
    if unknown or not chosen:
        parser.error(f"--only takes a comma-separated subset of {','.join(SETUPS)}; unknown: {','.join(unknown)}")
    args.setups = [s for s in SETUPS if s in chosen]
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    global CLK_TCK
    args = parse_args(argv)
    CLK_TCK = os.sysconf("SC_CLK_TCK")
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    command = shlex.join([python, "bench/accept.py", *(sys.argv[1:] if argv is None else argv)])
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="mmsgate-bench-"))
    rows: list[Row] = []
    try:
        for name in args.setups:
            print(f"== {name}: {label_of(name, args)}", flush=True)
            row = measure(name, procs, work, args, wrk)
            rows.append(row)
            if row.result:
                r = row.result
                print(
                    f"   {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, errors {r.errors}, "
                    f"server CPU/request {cpu_per_request(row)}, "
                    f"CPU cores (server / wrk / PostgreSQL / other): {cpu_summary(row)}",
                    flush=True,
                )
            else:
                print(f"   did not run: {row.error}", flush=True)
    except KeyboardInterrupt:
        print("interrupted; stopping every process started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(rows))
    for note in notes(rows):
        print(f"- {note}")
    if not args.no_record:
        append_results(command, rows, args)
        print(f"\nappended to {RESULTS.relative_to(REPO)}")
    ceiling = _ceiling(rows)
    return 0 if all(verdict(r, ceiling) in ("PASS", "ceiling") for r in rows) else 1


def _ceiling(rows: Sequence[Row]) -> float | None:
    return next((r.result.rps for r in rows if r.setup == "bare" and r.result), None)


if __name__ == "__main__":
    sys.exit(main())
