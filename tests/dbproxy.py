"""A TCP proxy to the test PostgreSQL server that a test can close, open and cut, to make the database go
away and come back for the processes using it without stopping the server other tests share.

While closed, every connection it takes is closed at once (as a server that is down or still starting
answers, from the client's side: the connection fails). While open, it forwards both ways. ``cut`` closes
every connection it forwards and closes the proxy: a database restart as its clients live it.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

CHUNK = 65536


class DatabaseProxy:
    """A proxy on 127.0.0.1, port picked by the kernel, to the server of ``url``; closed when started."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._url = parts
        self.port = 0
        self.is_open = False
        self.refused = 0
        """Connections closed at once because the proxy was closed."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self) -> str:
        """The database URL through the proxy."""
        user = f"{self._url.username}@" if self._url.username else ""
        return self._url._replace(netloc=f"{user}127.0.0.1:{self.port}").geturl()

    async def start(self) -> DatabaseProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def open(self) -> None:
        self.is_open = True

    def cut(self) -> None:
        """Close the proxy and every connection it forwards."""
        self.is_open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_open:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._tasks.discard(pipe)
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
