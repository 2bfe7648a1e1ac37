"""`mmsgate api --processes 2` serves with the gateway's guarded HTTP server in every process: its settings
(here a 1.5 s header deadline from the environment) reach the processes uvicorn starts."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx

from tests.acceptance.conftest import Gateway, mmsgate_env
from tests.waiting import eventually

DEADLINE = 1.5


def free_port() -> int:
    """A port the kernel picks (`api --processes` prints the port it was given, so it is picked here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_every_api_process_has_the_header_deadline_and_strict_framing(tmp_path: Path) -> None:
    port = free_port()
    env = mmsgate_env(MMSGATE_HTTP_HEADER_TIMEOUT=str(DEADLINE), MMSGATE_DATA_DIR=str(tmp_path / "data"))
    api = Gateway(["api", "--processes", "2", "--port", str(port)], tmp_path, env)
    await api.start()
    try:

        async def healthy() -> httpx.Response | None:
            try:
                async with httpx.AsyncClient(timeout=5) as http:
                    reply = await http.get(f"http://127.0.0.1:{port}/health")
            except httpx.TransportError:
                return None
            return reply if reply.status_code == 200 else None

        await eventually(healthy, within=60, what="the API processes to answer")

        async def slow_headers() -> tuple[bytes, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            opened = time.monotonic()
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
            answer = await asyncio.wait_for(reader.read(), DEADLINE + 10)
            writer.close()
            return answer, time.monotonic() - opened

        # connections are spread over the processes by the kernel: enough of them reach both
        for answer, took in await asyncio.gather(*(slow_headers() for _ in range(8))):
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert DEADLINE * 0.9 <= took <= DEADLINE + 2.0, took
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /ep/v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 501 ")
        writer.close()
        assert await healthy() is not None
    finally:
        assert await api.stop() == 0, "".join(api.output)
