"""Starting a gateway process: the event loop, the HTTP server, signals, and the garbage collector's
tuning, in one place for ``serve``, ``api`` (one process or several) and ``worker``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import TYPE_CHECKING, Any

from mmsgate.config import Settings

if TYPE_CHECKING:
    from mmsgate.http_server import GuardedConfig

GC_THRESHOLDS = (20_000, 50, 100)
"""Allocations between collections of the youngest generation, and collections of each generation between
collections of the next (Python's defaults: 700, 10, 10)."""


def tune_gc() -> None:
    """Collect cyclic garbage less often in a long-running process, once its start-up is done. A message
    makes thousands of short-lived objects (futures, tuples, rows) that reference counting frees at once;
    with Python's default thresholds the collector still ran every few hundred of them and took a
    noticeable share of a worker's CPU. The objects of start-up (modules, settings, the app) are
    frozen: no collection walks them again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a process's main coroutine on uvloop (asyncio's own loop where uvloop is missing)."""
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main)


async def serve_http(app: Any, settings: Settings, listening: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Serve ``app`` with uvicorn until a stop signal; ``listening(port)`` is awaited once it listens (with
    the port the OS picked for port 0)."""
    import uvicorn

    class _Server(uvicorn.Server):
        """Says when it listens, so the address (with a port picked by the OS) can be printed."""

        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.ready = asyncio.Event()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            self.ready.set()

    config = http_config(app, settings, loop="none", timeout_graceful_shutdown=10)
    server = _Server(config)
    # uvicorn takes SIGINT/SIGTERM while it serves and, once shut down, raises the signal again for the
    # handler it found installed: let that be a quiet one, so the workers and the store still close
    # cleanly (jobs released, nothing left half-written) and the process exits 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _after_shutdown)
    serving = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if server.started:
        await listening(server.servers[0].sockets[0].getsockname()[1])
    await serving


def _after_shutdown(sig: int, frame: FrameType | None) -> None:
    """A stop signal repeated by uvicorn after its graceful shutdown: the cleanup under way finishes."""


def serve_processes(settings: Settings, processes: int) -> None:
    """Serve the HTTP API from ``processes`` processes sharing the port; each builds its settings from the
    environment (:func:`mmsgate.app.app_from_environment`)."""
    from uvicorn.supervisors import Multiprocess

    os.environ["MMSGATE_DATA_DIR"] = str(settings.data_dir)
    if settings.database:
        os.environ["MMSGATE_DATABASE"] = settings.database

    config = http_config("mmsgate.app:app_from_environment", settings, factory=True, workers=processes, loop="uvloop")
    # what uvicorn.run does for several workers, with the guarded configuration (uvicorn.run builds its own)
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[config.bind_socket()]).run()


def http_config(app: Any, settings: Settings, **options: Any) -> GuardedConfig:
    """uvicorn's configuration for a gateway process: httptools with the request deadlines, the connection cap
    and strict framing of :mod:`mmsgate.http_server`."""
    from mmsgate.http_server import GuardedConfig, HttpLimits

    return GuardedConfig(
        app,
        HttpLimits.of(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        proxy_headers=False,  # the console reads X-Forwarded-For itself, from trusted proxies only
        log_level="warning",
        **options,
    )


async def until_stopped() -> None:
    """Return at SIGINT or SIGTERM (a worker's main waits on this)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
