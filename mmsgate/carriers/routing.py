"""Which connection takes a message: the configured connection (of a plug-in that carries MMS, or of one
that carries SMS) whose route prefix is the longest match of the recipient's number (a connection without
prefixes matches every number), else the default connector given (the default carrier), else none.

Connections live in the store (``mmsgate mm7 add``, ``mmsgate smpp add``) so that every worker process
uses the same ones; each worker reads them at start and again every ``refresh_seconds``, starting the new
ones and closing the ones removed or changed. A connection that cannot start for good (a refused bind)
stays routed, with the reason: what is routed to it fails with that reason instead of going elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from mmsgate.core.records import Connection
from mmsgate.core.roles import Connections
from mmsgate.errors import CarrierError, ConfigError, StoreError

log = logging.getLogger("mmsgate.routing")


class Connector(Protocol):
    name: str

    async def start(self, sink: Any) -> None: ...

    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Connector)


Connect = Callable[[Connection], tuple[C, tuple[str, ...]]]
"""A stored connection → its connector and its route prefixes (raises ConfigError for settings it cannot use)."""


@dataclass
class _Live(Generic[C]):
    connection: Connection
    connector: C
    prefixes: tuple[str, ...]
    starting: asyncio.Task[None] | None = None
    broken: str | None = None


class Router(Generic[C]):
    """The connections of some kinds, routed by recipient number."""

    def __init__(
        self,
        connections: Connections,
        factories: Mapping[str, Connect[C]],
        *,
        default: C | None,
        refresh_seconds: float = 5.0,
        label: str = "connection",
    ) -> None:
        self.connections = connections
        self.factories = dict(factories)
        """How each kind of stored connection becomes a connector."""
        self.label = label
        self.default = default
        self.refresh_seconds = refresh_seconds
        self._live: dict[str, _Live[C]] = {}
        self._sink: object = None
        self._refresher: asyncio.Task[None] | None = None

    async def start(self, sink: object) -> None:
        self._sink = sink
        if self.default is not None:
            await self.default.start(sink)
        await self.refresh()
        self._refresher = asyncio.create_task(self._refreshing(), name=f"{self.label}-connections")

    def route(self, number: str) -> tuple[C | None, str | None]:
        """The connector for ``number``, and why it cannot send when it cannot (None, None: no route)."""
        best: _Live[C] | None = None
        best_length = -1
        for live in self._live.values():
            for prefix in live.prefixes or ("",):
                if number.startswith(prefix) and len(prefix) > best_length:
                    best, best_length = live, len(prefix)
        if best is not None:
            return best.connector, best.broken
        return self.default, None

    def get(self, name: str) -> C | None:
        """The connector named ``name`` (a configured connection or the default one), if it is here."""
        live = self._live.get(name)
        if live is not None:
            return live.connector
        return self.default if self.default is not None and self.default.name == name else None

    async def refresh(self) -> None:
        """Start the connections added since the last look, close the ones removed or changed."""
        try:
            wanted = {c.name: c for c in await self.connections.list_connections() if c.kind in self.factories}
        except StoreError as exc:
            log.warning("reading the %s connections failed (%s); keeping the current ones", self.label, exc)
            return
        for name in [n for n, live in self._live.items() if wanted.get(n) != live.connection]:
            await self._stop(self._live.pop(name))
        for name, connection in wanted.items():
            if name in self._live:
                continue
            try:
                connector, prefixes = self.factories[connection.kind](connection)
            except (ConfigError, TypeError, ValueError, KeyError) as exc:
                log.error("%s connection %s cannot be used: %s", connection.kind, name, exc)
                continue
            live = _Live(connection, connector, prefixes)
            live.starting = asyncio.create_task(self._start(live), name=f"{connection.kind}-start-{name}")
            self._live[name] = live

    async def _start(self, live: _Live[C]) -> None:
        try:
            await live.connector.start(self._sink)
            log.info("%s connection %s is up", live.connection.kind, live.connection.name)
        except CarrierError as exc:
            live.broken = f"{live.connection.kind} connection {live.connection.name}: {exc}"
            log.error("%s", live.broken)

    async def _stop(self, live: _Live[C]) -> None:
        if live.starting is not None:
            live.starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await live.starting
        try:
            await live.connector.aclose()
        except Exception:  # closing must not stop the others
            log.exception("closing %s connection %s failed", live.connection.kind, live.connection.name)

    async def _refreshing(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for live in list(self._live.values()):
            await self._stop(live)
        self._live.clear()
        if self.default is not None:
            await self.default.aclose()
