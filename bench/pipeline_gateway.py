"""The gateway under bench/pipeline.py: its processes for a setup, the postbacks they send, its store.

A setup is ``mmsgate serve`` on SQLite (the demo account) or ``mmsgate api`` and 1 or 2 ``mmsgate worker``
processes on a fresh PostgreSQL database (an account made with the CLI); the account's postbacks go to the
receiver (bench/pipeline_load.py ``receiver``, its own process), which ``Postbacks`` reads back. The store is
read with plain SQL that SQLite and PostgreSQL both run (a benchmark may).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, LiteralString

from support.gateway import (
    WORKER_RUNNING,
    Credentials,
    child_env,
    demo_account,
    fresh_database,
    mmsgate_argv,
    provision,
    run_cli,
    start_listening,
    wait_healthy,
    wait_listening,
)
from support.load import LOAD_SCRIPT
from support.processes import BenchError, Processes, log_problems, proc_stat, tail, wait_line

ANY_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b(sbx|evt)[-_][0-9a-f]+\b")


# ---------------------------------------------------------------------------------------------
# the gateway's processes


@dataclass
class Gateway:
    base: str
    creds: Credentials
    account_id: str
    database_url: str  # sqlite:///PATH or postgresql://...
    database: str  # the PostgreSQL database's name, or ""
    procs: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    @property
    def port(self) -> str:
        return self.base.rsplit(":", 1)[1]

    def check_alive(self) -> None:
        """BenchError when one of the gateway's processes has exited."""
        for name, proc, log in self.procs:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode}:\n{tail(log)}")

    def media_pools(self) -> str:
        """The live media-pool processes (multiprocessing spawn children) of each gateway process."""
        sessions = self.sessions()
        alive: Counter[str] = Counter()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or (stat := proc_stat(entry)) is None:
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat[1]
                sid = int(fields[3])
                if sid in sessions and fields[0] != "Z":
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                    if b"multiprocessing.spawn" in cmdline:
                        alive[sessions[sid]] += 1
        return ", ".join(f"{name} {alive[name]}" for name in sessions.values())

    def problems(self) -> list[str]:
        """Warning, error and traceback lines the gateway's processes logged."""
        return [f"{name}: {line}" for name, _, log in self.procs for line in log_problems(log)]

    def sessions(self) -> dict[int, str]:
        """The gateway's process names by session id (each process leads its own)."""
        return {proc.pid: name for name, proc, _ in self.procs}


def gateway_env(args: argparse.Namespace) -> dict[str, str]:
    """The gateway's settings: media and postbacks may go to loopback (the origin and the receiver are there)."""
    return child_env(
        {
            "MMSGATE_MEDIA_ALLOW_NETWORKS": "127.0.0.0/8",
            "MMSGATE_POSTBACK_ALLOW_NETWORKS": "127.0.0.0/8",
            "MMSGATE_WORKER_CONCURRENCY": str(args.worker_concurrency),
            "MMSGATE_LOG_LEVEL": "WARNING",
            **dict(item.split("=", 1) for item in args.env),
        }
    )


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
    with contextlib.ExitStack() as stack:
        if name == "sqlite":
            argv = mmsgate_argv("serve", "--data-dir", str(data), "--port", "0")
            proc, log, base = start_listening(procs, argv, home, "serve.log", env)
            stack.callback(procs.stop, proc)
            account_id, creds = demo_account(data)
            postbacks = ["--postback-url", postback_url, "--data-dir", str(data), "--json"]
            run_cli(["account", "set", account_id, *postbacks], home)
            url = f"sqlite:///{(data / 'mmsgate.sqlite3').resolve()}"
            gateway = Gateway(base, creds, account_id, url, "", [("serve", proc, log)])
        elif name in ("pg1", "pg2"):
            database, url = stack.enter_context(fresh_database(args.pg_admin, name))
            account_id, creds = provision(url, data, home, postback_url)
            argv = mmsgate_argv("api", "--port", "0", "--database", url, "--data-dir", str(data))
            proc, log, base = start_listening(procs, argv, home, "api.log", env)
            stack.callback(procs.stop, proc)
            gateway = Gateway(base, creds, account_id, url, database, [("api", proc, log)])
            for number in range(1, (1 if name == "pg1" else 2) + 1):
                wlog = home / f"worker{number}.log"
                argv = mmsgate_argv("worker", "--database", url, "--data-dir", str(data))
                worker = procs.start(argv, log=wlog, cwd=home, env=env)
                stack.callback(procs.stop, worker)
                gateway.procs.append((f"worker {number}", worker, wlog))
                wait_line(worker, wlog, WORKER_RUNNING)
        else:
            raise BenchError(f"unknown setup {name!r}")
        wait_healthy(gateway.base, gateway.procs[0][1], gateway.procs[0][2])
        yield gateway


# ---------------------------------------------------------------------------------------------
# the postbacks


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
            raise BenchError(f"the postback receiver exited with {self.proc.returncode}:\n{tail(self.log)}")
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


def start_receiver(procs: Processes, work: Path) -> Postbacks:
    log = work / "receiver.log"
    proc = procs.start([sys.executable, str(LOAD_SCRIPT), "receiver"], log=log, cwd=work, env=child_env())
    return Postbacks(wait_listening(proc, log), proc, log)


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
