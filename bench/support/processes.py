"""The processes a benchmark starts: each in its own session, so that its whole group can be ended; their logs.

A server may start children (uvicorn's workers, the media pool's processes): ending the session's process
group ends them too, and ``session_members`` says whether any is left.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROBLEM_LINE = re.compile(r"^(WARNING|ERROR|CRITICAL)\b|Traceback")


class BenchError(Exception):
    """A setup could not be started or measured; the message says why."""


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
        signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        # children of a multi-process server may outlive their leader by a moment
        deadline = time.monotonic() + grace
        while session_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        signal_group(proc.pid, signal.SIGKILL)

    def stop_all(self, grace: float = 15.0) -> None:
        for proc in reversed(list(self.running)):
            with contextlib.suppress(Exception):
                self.stop(proc, grace)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def proc_stat(pid: int | str) -> tuple[str, list[str]] | None:
    """The command name and the fields of /proc/PID/stat after it (index 0 is field 3, the state)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.find("(") + 1 : text.rfind(")")], text[text.rfind(")") + 2 :].split()


def session_members(sid: int) -> list[int]:
    """The live processes of session ``sid``."""
    members: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat is not None and len(stat[1]) > 3 and stat[1][0] != "Z" and int(stat[1][3]) == sid:
                members.append(int(entry))
    return members


def wait_members(sid: int, count: int, log: Path, timeout: float = 30.0) -> None:
    """With uvicorn's supervisor, wait until ``count`` worker processes exist (beside the supervisor)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(session_members(sid)) >= count + 1:
            time.sleep(1.0)  # let each worker finish its startup (store pool, lifespan)
            return
        time.sleep(0.1)
    raise BenchError(f"fewer than {count} API processes started:\n{tail(log)}")


# ---------------------------------------------------------------------------------------------
# logs


def read_log(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def log_problems(path: Path) -> list[str]:
    """The warning, error and traceback lines of a log."""
    return [line.strip() for line in read_log(path).splitlines() if PROBLEM_LINE.search(line)]


def wait_line(
    proc: subprocess.Popen[bytes],
    log: Path,
    pattern: re.Pattern[str],
    timeout: float = 60.0,
    *,
    who: str = "process",
    before: str = "saying it runs",
    missing: str = "",
) -> re.Match[str]:
    """The first match of ``pattern`` in the log of ``proc``, waited for; BenchError when ``proc`` exits first
    ("WHO exited with CODE before BEFORE") or ``timeout`` passes ("MISSING within T s")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = pattern.search(read_log(log))
        if match:
            return match
        if proc.poll() is not None:
            raise BenchError(f"{who} exited with {proc.returncode} before {before}:\n{tail(log)}")
        time.sleep(0.05)
    missing = missing or f"no line matching {pattern.pattern!r}"
    raise BenchError(f"{missing} within {timeout:.0f} s:\n{tail(log)}")
