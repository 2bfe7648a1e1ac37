"""A Node test peer (a script in tests/peers) as a subprocess: the part the SMSC and MMSC helpers share.

A subclass names the peer, its script, the npm packages it needs, the environment it reads and the variable
that sets its port. ``await Peer(env).start()`` starts it on a free loopback port (``port``), collects the JSON
events it prints (``events``), takes commands (``send``) and waits on events (``wait_for``, ``gather``);
``stop`` kills its process group. Without ``node`` or the npm packages in tests/peers/node_modules the test is
skipped, saying why (failed under CI=true).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

PEERS = Path(__file__).resolve().parent / "peers"
START_TIMEOUT = 20.0

Event = dict[str, Any]


def node_or_skip(name: str, packages: Sequence[str]) -> str:
    """The ``node`` executable; skips the test (fails it under CI) when the ``name`` peer cannot run."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif missing := [p for p in packages if not (PEERS / "node_modules" / p).is_dir()]:
        problem = f"the npm packages {', '.join(missing)} are not installed (run `npm ci` in {PEERS})"
    if problem is None and node is not None:
        return node
    if os.environ.get("CI") == "true":
        pytest.fail(f"the {name} test peer cannot run and CI needs it: {problem}")
    pytest.skip(f"the {name} test peer cannot run: {problem}")


class PeerProcess:
    name: ClassVar[str]
    """How messages call the peer ("SMSC")."""
    script: ClassVar[Path]
    packages: ClassVar[tuple[str, ...]]
    """The npm packages (in tests/peers/node_modules) the script needs."""
    env_prefixes: ClassVar[tuple[str, ...]]
    """The peer's settings: taken from this process's environment only when a test passes them."""
    port_variable: ClassVar[str]
    """The environment variable that sets the peer's port (set to 0: a free one)."""
    line_limit: ClassVar[int] = 1 << 20
    """The longest event line the peer may print."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(self.env_prefixes)}
        self.env.update({self.port_variable: "0", **(env or {})})
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.events: list[Event] = []
        self.stderr: list[str] = []
        self._readers: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()

    def node(self) -> str:
        """The ``node`` executable (see ``node_or_skip``)."""
        return node_or_skip(self.name, self.packages)

    async def start(self) -> Self:
        node = self.node()
        self.proc = await asyncio.create_subprocess_exec(
            node,
            str(self.script),
            cwd=PEERS,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=self.line_limit,
        )
        self._readers = [asyncio.create_task(self._read_events()), asyncio.create_task(self._read_stderr())]
        first = await self.wait_for(
            lambda e: e["event"] == "listening", within=START_TIMEOUT, what="the peer to listen"
        )
        self.port = int(first["port"])
        return self

    async def _read_events(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line.decode(errors="replace")}
            self.events.append(event)
            self._changed.set()
        self._changed.set()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace"))

    async def send(self, command: dict[str, Any]) -> None:
        """One command on the peer's stdin (see the peer's script in tests/peers)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()

    def of(self, kind: str, **match: Any) -> list[Event]:
        """The events of a kind whose fields equal ``match``, in order."""
        return [e for e in self.events if e.get("event") == kind and all(e.get(k) == v for k, v in match.items())]

    async def gather(self, kind: str, count: int, within: float = 10.0, **match: Any) -> list[Event]:
        """Wait until at least ``count`` events match (as in ``of``) and return them all."""
        await self.wait_for(lambda _: len(self.of(kind, **match)) >= count, within, f"{count} {kind} event(s) {match}")
        return self.of(kind, **match)

    async def wait_for(self, predicate: Callable[[Event], bool], within: float = 10.0, what: str = "an event") -> Event:
        """The first event (seen so far or coming) that satisfies ``predicate``."""
        deadline = time.monotonic() + within
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            if self.proc is not None and self.proc.returncode is not None and self._readers[0].done():
                raise AssertionError(f"the {self.name} peer exited before {what}:\n{''.join(self.stderr)}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {within:g} s waiting for {what}; peer events: {self.events[-20:]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """SIGKILL the peer (its own process group) and reap it."""
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
