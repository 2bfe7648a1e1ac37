"""A benchmark script's frame: SIGTERM ends it as Ctrl-C does, its event loop, and the Node test peers it needs.

A script stops every process it started on its way out (``finally``); making SIGTERM a KeyboardInterrupt
lets a terminated run do that too. The async benchmarks run on uvloop, as the gateway does.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

PEERS = Path(__file__).resolve().parents[2] / "tests" / "peers"
T = TypeVar("T")


def interrupt_on_sigterm() -> None:
    """From now on, SIGTERM raises KeyboardInterrupt in the main thread."""
    signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop (on asyncio's own loop where uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(main)
    return uvloop.run(main)


def node_with(packages: Sequence[str]) -> str | None:
    """The ``node`` executable, when it and the npm ``packages`` of tests/peers are installed."""
    node = shutil.which("node")
    if node is None or any(not (PEERS / "node_modules" / p).is_dir() for p in packages):
        return None
    return node


def node_version(node: str) -> str:
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
