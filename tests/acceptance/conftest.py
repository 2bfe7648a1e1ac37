"""Run the real `mmsgate` command in subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.integration.media_origin import Origin
from tests.receiver import Receiver, running_receiver

MMSGATE = str(Path(sys.executable).parent / "mmsgate")
START_TIMEOUT = 60.0


def mmsgate_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMSGATE_")}
    env.update({"MMSGATE_LOG_LEVEL": "WARNING", **extra})
    return env


class Gateway:
    """A `mmsgate serve` process; `url` is known once it says it is listening."""

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
        self.args = list(args)
        self.cwd = cwd
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.output: list[str] = []

    def ready(self, line: str) -> bool:
        """Whether ``line`` of the output says the process is ready (here: listening, and where)."""
        if "listening on " not in line:
            return False
        self.url = line.split("listening on ", 1)[1].split()[0]
        return True

    async def start(self) -> Gateway:
        self.proc = await asyncio.create_subprocess_exec(
            MMSGATE,
            *self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.proc.stdout is not None

        async def wait_listening() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError("mmsgate exited before it was ready:\n" + "".join(self.output))
                self.output.append(line)
                if self.ready(line):
                    return

        await asyncio.wait_for(wait_listening(), START_TIMEOUT)
        self._drain = asyncio.create_task(self._drain_output())
        return self

    async def _drain_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.output.append(line.decode())

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.returncode is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> int:
        """SIGTERM and wait for a graceful exit."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                await self.kill()
        return self.proc.returncode if self.proc.returncode is not None else -9


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[..., Any]]:
    """Start gateways; every one started is killed at the end of the test."""
    started: list[Gateway] = []

    async def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Gateway:
        gateway = Gateway(["serve", "--port", "0", *args], cwd, env or mmsgate_env())
        started.append(gateway)
        return await gateway.start()

    yield start
    for gateway in started:
        await gateway.kill()


async def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        MMSGATE,
        *args,
        cwd=cwd,
        env=env or mmsgate_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run an admin command with --json; it must succeed and print exactly one JSON object."""
    code, out, err = await run_cli(*args, "--json", cwd=cwd, env=env)
    assert code == 0, f"mmsgate {' '.join(args)} failed: {err}"
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


class WorkerProcess(Gateway):
    """A `mmsgate worker` process: ready once it says it runs; ``owner`` is the name it leases jobs under."""

    owner = ""

    def ready(self, line: str) -> bool:
        words = line.split()
        if words[:2] == ["mmsgate", "worker"] and words[-1] == "running":
            self.owner = words[2]
            return True
        return False


class Processes:
    """`mmsgate serve`, `api` and `worker` processes, each in its own process group."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[Gateway] = []

    async def _start(self, process: Gateway) -> Gateway:
        self.started.append(process)
        return await process.start()

    async def serve(self, *args: str, env: dict[str, str]) -> Gateway:
        return await self._start(Gateway(["serve", "--port", "0", *args], self.cwd, env))

    async def api(self, env: dict[str, str]) -> Gateway:
        return await self._start(Gateway(["api", "--port", "0"], self.cwd, env))

    async def worker(self, env: dict[str, str]) -> WorkerProcess:
        process = WorkerProcess(["worker"], self.cwd, env)
        await self._start(process)
        return process

    async def kill_all(self) -> None:
        """SIGKILL every process group started, also those whose leader already exited (its helper
        processes, such as media workers, may outlive it), and wait until their output ends."""
        for process in self.started:
            if process.proc is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.proc.pid, signal.SIGKILL)
            await process.proc.wait()
            drain: asyncio.Task[None] | None = getattr(process, "_drain", None)  # reads the output to its end
            if drain is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(drain, 10)


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    """Start gateway processes; every one started is killed at the end of the test."""
    started = Processes(tmp_path)
    yield started
    await started.kill_all()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as the_receiver:
        yield the_receiver


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    the_origin = await Origin().start()
    yield the_origin
    await the_origin.close()
