"""The gateway under test: its environment, its processes started and waited for, its databases and accounts.

Every process is a fresh ``python -m mmsgate`` on free ports, with none of the caller's MMSGATE_* settings;
a PostgreSQL setup gets a database of its own, dropped on leaving; an account is made with the admin CLI,
as an operator would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.processes import BenchError, Processes, tail, wait_line

LISTENING = re.compile(r"listening on (http://\S+)")
WORKER_RUNNING = re.compile(r"mmsgate worker \S+ running")
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_NUMBER = "28444"
BENCH_TO = "15550100001"


@dataclass(frozen=True)
class Credentials:
    """What a ``sendmms`` request of the benchmark's account carries."""

    api_key: str
    service_id: str
    sender: str
    to: str


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


# ---------------------------------------------------------------------------------------------
# processes of the gateway


def start_listening(
    procs: Processes, argv: Sequence[str], home: Path, log_name: str, env: dict[str, str], *, who: str = "server"
) -> tuple[subprocess.Popen[bytes], Path, str]:
    """Start a server (its log ``home/log_name``) and wait for its ``listening on`` line: the process, its log
    and its base URL. A server that does not come up is stopped."""
    log = home / log_name
    proc = procs.start(argv, log=log, cwd=home, env=env)
    try:
        return proc, log, wait_listening(proc, log, who=who)
    except BaseException:
        procs.stop(proc)
        raise


def wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0, *, who: str = "server") -> str:
    """The base URL from the server's ``listening on`` line."""
    match = wait_line(
        proc, log, LISTENING, timeout, who=who, before="listening", missing=f"{who} did not print 'listening on'"
    )
    return match.group(1).rstrip("/")


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise BenchError(f"{base}/health did not answer 200 within {timeout:.0f} s:\n{tail(log)}")


# ---------------------------------------------------------------------------------------------
# the admin CLI and the account


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


def provision(url: str, data: Path, home: Path, postback_url: str = "") -> tuple[str, Credentials]:
    """An account (postbacks to ``postback_url`` when given), a campaign and the sender number, made with the
    admin CLI in database ``url``: the account's id and credentials."""
    db = ["--database", url, "--data-dir", str(data), "--json"]
    account = run_cli(["account", "create", "bench", *db], home)
    account_id = str(account["account_id"])
    if postback_url:
        run_cli(["account", "set", account_id, "--postback-url", postback_url, *db], home)
    campaign = run_cli(["campaign", "create", account_id, *db], home)
    run_cli(["number", "add", account_id, BENCH_NUMBER, "--campaign", campaign["service_id"], *db], home)
    return account_id, Credentials(account["api_key"], campaign["service_id"], BENCH_NUMBER, BENCH_TO)


def demo_account(data: Path) -> tuple[str, Credentials]:
    """The demo account ``mmsgate serve`` made in ``data`` (its demo.json): its id and credentials."""
    demo = json.loads((data / "demo.json").read_text())
    return str(demo["account_id"]), Credentials(demo["api_key"], demo["service_id"], demo["from"], demo["to"])


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


@contextlib.contextmanager
def fresh_database(admin_url: str, setup: str) -> Iterator[tuple[str, str]]:
    """A new database for one setup (its name and URL), dropped on leaving."""
    name = f"mmsgate_bench_{secrets.token_hex(4)}_{setup}"
    url = create_database(admin_url, name)
    try:
        yield name, url
    finally:
        drop_database(admin_url, name)
