"""CPU time from /proc: of one process, of a session, of every process and of the machine at one moment.

CPU per request or per message is less disturbed by other load than a rate, and the machine's own figure
says how much other programs took during a run (more than ``OTHER_LOAD_WARNING`` cores marks it disturbed).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from support.processes import proc_stat

CLK_TCK = os.sysconf("SC_CLK_TCK")
OTHER_LOAD_WARNING = 0.15  # cores used by other programs during a run that make its figures suspect


def pid_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) of one process."""
    stat = proc_stat(pid)
    return 0.0 if stat is None else (int(stat[1][11]) + int(stat[1][12])) / CLK_TCK


def session_cpu(sid: int) -> float:
    """CPU seconds of the live processes of a session (a server and any children it started)."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(entry)) is not None and int(stat[1][3]) == sid:
            total += int(stat[1][11]) + int(stat[1][12])
    return total / CLK_TCK


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
            stat = proc_stat(entry)
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

    def used_since(self, before: CpuSnapshot, pid: int) -> float:
        """Cores process ``pid`` (alive now) used since ``before``."""
        seconds = max(self.at - before.at, 1e-6)
        ticks = self.processes[pid][2] - (before.processes.get(pid) or ("", 0, 0))[2]
        return max(ticks, 0) / CLK_TCK / seconds

    def machine_since(self, before: CpuSnapshot) -> float:
        """Cores the whole machine used since ``before``."""
        return (self.machine - before.machine) / CLK_TCK / max(self.at - before.at, 1e-6)


@dataclass
class CpuUse:
    """Cores used between two snapshots: by the server's session (per process), by PostgreSQL for it
    (the backends of its database and the shared auxiliary processes), and by the whole machine."""

    server: list[float]
    postgres: float
    machine: float

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot, server_sid: int, database: str) -> CpuUse:
        server = [
            after.used_since(before, pid) for pid, (_, sid, _) in sorted(after.processes.items()) if sid == server_sid
        ]
        postgres = sum(
            after.used_since(before, pid)
            for pid, (comm, _, _) in after.processes.items()
            if serves_database(comm, database)
        )
        return cls([c for c in server if c >= 0.02], postgres, after.machine_since(before))

    @property
    def server_total(self) -> float:
        return sum(self.server)


def cores_used(
    before: CpuSnapshot,
    after: CpuSnapshot,
    sessions: Mapping[int, str],
    database: str,
    bench_pids: Sequence[int],
    reaped_cpu: float,
    per_process: dict[str, float] | None = None,
) -> tuple[float, float, float, float]:
    """Cores used by the gateway's sessions (``sessions``: session id -> process name; with their media
    pools), PostgreSQL for ``database``, the bench (``bench_pids`` and the sessions they lead, plus
    ``reaped_cpu`` CPU seconds of children reaped before the end) and everything else on the machine.
    ``per_process`` gets the gateway's by process name."""
    seconds = max(after.at - before.at, 1e-6)
    gateway = postgres = 0.0
    bench = reaped_cpu / seconds
    for pid, (comm, sid, _) in after.processes.items():
        used = after.used_since(before, pid)
        if sid in sessions:
            gateway += used
            if per_process is not None:
                per_process[sessions[sid]] = per_process.get(sessions[sid], 0.0) + used
        elif pid in bench_pids or sid in bench_pids:
            bench += used
        elif serves_database(comm, database):
            postgres += used
    machine = after.machine_since(before)
    return gateway, postgres, bench, max(0.0, machine - gateway - postgres - bench)


def serves_database(title: str, database: str) -> bool:
    """Whether a PostgreSQL process works for ``database``: one of its backends ("postgres: 15/main: USER
    DB HOST(PORT) STATE"), or an auxiliary process every database shares (WAL writer, checkpointer, ...)."""
    if not title.startswith("postgres"):
        return False
    is_backend = "(" in title and ")" in title
    return not is_backend or (bool(database) and f" {database} " in title)


def machine_busy(seconds: float = 1.0) -> float:
    """Cores the machine keeps busy over ``seconds``, before we start anything."""
    before = CpuSnapshot.take()
    time.sleep(seconds)
    return CpuSnapshot.take().machine_since(before)


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
