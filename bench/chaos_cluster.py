"""What bench/chaos.py breaks: a private PostgreSQL cluster, the gateway's processes, and the leases the dead left.

``Cluster`` is a PostgreSQL 15 cluster of the run's own (initdb into the run's folder, trust auth, a free
port, fsync on, its socket in that folder), so that restarting it touches nothing else on the machine; as
root, its commands run as the ``postgres`` user (initdb refuses root). ``Slot`` is one gateway process kept
running: ``mmsgate api`` on a fixed port or ``mmsgate worker``, SIGKILLed (with its process group: its media
pool too) and started again at once by the bench; an exit the bench did not cause is noted with its code and
the process is started again a second later. ``LeaseWatch`` measures how long the jobs and postbacks a dead
worker held stayed leased to it: right after a kill it lists the rows still ``running`` under the dead
process's lease (the lease owner names its pid), then checks every ``POLL`` s which of them another worker
has taken (or finished) since.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.gateway import free_port
from support.processes import BenchError, Processes, tail

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
POLL = 0.5
OWN_EXIT_RESTART = 1.0
"""Seconds before a process that exited on its own is started again (so a database that is down is not
hammered by a process exiting at once, again and again)."""


# ---------------------------------------------------------------------------------------------
# the private PostgreSQL cluster


class Cluster:
    """A PostgreSQL cluster of the run's own, in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.restarts: list[tuple[str, float, float]] = []  # (mode, started, back up)
        self._as_root = os.geteuid() == 0

    def _run(self, argv: Sequence[str], timeout: float = 120.0) -> None:
        uid = gid = None
        groups: list[int] | None = None
        if self._as_root:
            user = pwd.getpwnam(PG_USER)
            uid, gid, groups = user.pw_uid, user.pw_gid, []
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
            start_new_session=True,  # the postmaster pg_ctl leaves behind is not in the bench's group
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        if done.returncode != 0:
            raise BenchError(f"{Path(argv[0]).name} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self._as_root:
            user = pwd.getpwnam(PG_USER)
            for path in (self.root, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        settings = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.sockets}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "200",
            "logging_collector": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# bench/chaos.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))

    def _ctl(self, *args: str) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120", *args])

    def start(self) -> None:
        self._ctl("start")

    def restart(self, mode: str) -> float:
        """``pg_ctl restart -m MODE``, waiting until the server is back; the seconds it took."""
        started = time.time()
        self._ctl("-m", mode, "restart")
        back = time.time()
        self.restarts.append((mode, started, back))
        return back - started

    def stop(self) -> None:
        try:
            self._ctl("-m", "fast", "stop")
        except (BenchError, subprocess.TimeoutExpired):
            with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
                self._ctl("-m", "immediate", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


# ---------------------------------------------------------------------------------------------
# the gateway's processes


@dataclass
class Exit:
    """A process that exited without the bench killing it."""

    slot: str
    pid: int
    code: int
    at: float
    last_lines: str


@dataclass
class Slot:
    """One gateway process the bench keeps running (its log gathers every incarnation's output)."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started: int = 0
    kills: int = 0
    restart_at: float | None = None  # after an exit of its own

    @property
    def is_worker(self) -> bool:
        return self.name.startswith("worker")


@dataclass
class Fleet:
    """The gateway's API and worker processes: started, killed and started again, their own exits noted."""

    procs: Processes
    home: Path
    slots: list[Slot] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> Slot:
        slot = Slot(name, argv, self.home / f"{name}.log", env)
        self.slots.append(slot)
        return slot

    def start(self, slot: Slot) -> None:
        with slot.log.open("a") as out:
            out.write(f"=== bench/chaos.py: start {slot.started + 1} of {slot.name} at {time.time():.3f}\n")
        slot.proc = self.procs.start(slot.argv, log=slot.log, cwd=self.home, env=slot.env)
        slot.started += 1
        slot.restart_at = None

    def kill(self, slot: Slot) -> tuple[int, float]:
        """SIGKILL the slot's process group and start it again at once: the dead pid and when it died."""
        proc = slot.proc
        assert proc is not None
        if proc.poll() is not None:
            raise BenchError(f"{slot.name} has exited already (its exit is noted by check())")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        died = time.time()
        proc.wait(timeout=10)
        if proc in self.procs.running:
            self.procs.running.remove(proc)
        slot.kills += 1
        with slot.log.open("a") as out:
            out.write(f"=== bench/chaos.py: SIGKILL of {slot.name} (pid {proc.pid}) at {died:.3f}\n")
        self.start(slot)
        return proc.pid, died

    def check(self) -> list[Exit]:
        """Note the processes that exited on their own (and start them again after ``OWN_EXIT_RESTART``)."""
        now = time.time()
        found = []
        for slot in self.slots:
            proc = slot.proc
            if proc is not None and proc.poll() is not None:
                if proc in self.procs.running:
                    self.procs.running.remove(proc)
                exit_ = Exit(slot.name, proc.pid, proc.returncode, now, tail(slot.log, 6))
                self.exits.append(exit_)
                found.append(exit_)
                slot.proc, slot.restart_at = None, now + OWN_EXIT_RESTART
            elif proc is None and slot.restart_at is not None and now >= slot.restart_at:
                self.start(slot)
        return found

    def live(self) -> list[Slot]:
        return [s for s in self.slots if s.proc is not None and s.proc.poll() is None]

    def stop(self) -> None:
        for slot in self.slots:
            if slot.proc is not None:
                self.procs.stop(slot.proc)
                slot.proc = None


# ---------------------------------------------------------------------------------------------
# how long a dead worker's leases held its work

HELD_SQL = (
    "SELECT 'job ' || kind, id FROM jobs WHERE state = 'running' AND lease_owner LIKE %(owner)s "
    "UNION ALL SELECT 'postback ' || code, id FROM postbacks WHERE state = 'running' AND lease_owner LIKE %(owner)s"
)
STILL_SQL = (
    "SELECT 'job', id FROM jobs WHERE id = ANY(%(jobs)s) AND state = 'running' AND lease_owner LIKE %(owner)s "
    "UNION ALL SELECT 'postback', id FROM postbacks WHERE id = ANY(%(postbacks)s) AND state = 'running' "
    "AND lease_owner LIKE %(owner)s"
)


@dataclass
class Death:
    """A killed worker: what it held when it died, and how long each of those waited for another worker."""

    slot: str
    pid: int
    at: float
    listed_at: float | None = None
    held: dict[tuple[str, int], str] = field(default_factory=dict)  # (table, id) -> what
    waited: dict[tuple[str, int], float] = field(default_factory=dict)  # (table, id) -> seconds

    @property
    def owner(self) -> str:
        return f"%:{self.pid}:%"  # a lease owner is HOST:PID:RANDOM

    def open_items(self) -> list[tuple[str, int]]:
        return [key for key in self.held if key not in self.waited]


class LeaseWatch(threading.Thread):
    """Polls, in its own thread and connection (reopened when PostgreSQL restarts), what dead workers held."""

    def __init__(self, url: str) -> None:
        super().__init__(name="lease-watch", daemon=True)
        self.url = url
        self.deaths: list[Death] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.errors = 0

    def died(self, slot: str, pid: int, at: float) -> None:
        with self.lock:
            self.deaths.append(Death(slot, pid, at))

    def run(self) -> None:
        import psycopg

        conn: Any = None
        while not self.done.wait(POLL):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
                self._poll(conn)
            except psycopg.Error:
                self.errors += 1
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _poll(self, conn: Any) -> None:
        with self.lock:
            deaths = list(self.deaths)
        for death in deaths:
            if death.listed_at is None:
                rows = conn.execute(HELD_SQL, {"owner": death.owner}).fetchall()
                death.held = {(str(what).split(" ", 1)[0], int(i)): str(what) for what, i in rows}
                death.listed_at = time.time()
            left = death.open_items()
            if not left:
                continue
            params = {
                "owner": death.owner,
                "jobs": [i for t, i in left if t == "job"],
                "postbacks": [i for t, i in left if t == "postback"],
            }
            still = {(str(t), int(i)) for t, i in conn.execute(STILL_SQL, params).fetchall()}
            now = time.time()
            for key in left:
                if key not in still:
                    death.waited[key] = now - death.at

    def finish(self) -> list[Death]:
        """Stop polling; what is still held by the dead counts as waiting until now."""
        self.done.set()
        self.join(timeout=10)
        now = time.time()
        for death in self.deaths:
            for key in death.open_items():
                death.waited[key] = now - death.at
        return self.deaths
