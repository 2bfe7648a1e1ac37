"""An ASGI app served for real by uvicorn in the test's process, on a loopback port the kernel picks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from mmsgate.http_server import GuardedConfig, HttpLimits
from tests.waiting import eventually


@contextlib.asynccontextmanager
async def served(app: ASGIApp, limits: HttpLimits | None = None) -> AsyncIterator[str]:
    """Serve ``app`` until the context ends; its base URL. The server is the gateway's (uvicorn with the
    deadlines, the connection cap and the strict framing of ``mmsgate.http_server``; ``limits`` default to
    the settings' defaults). The lifespan is off: the store is the test's, and the app's start-up would tune
    this process's collector."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = GuardedConfig(app, limits or HttpLimits(), lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool | None:
        if task.done():
            task.result()  # raises what stopped it
            raise AssertionError("uvicorn stopped before it started")
        return True if server.started else None

    try:
        await eventually(started, within=20, what="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)
        sock.close()
