"""Which SMS connection sends a fallback SMS: the configured connection whose route prefix is the longest
match of the recipient's number (a connection without prefixes matches every number), else the sandbox
when the gateway runs the sandbox carrier, else none (the message then ends E202, saying so).

Connections live in the store (``mmsgate smpp add``) so that every worker process uses the same ones;
each worker reads them at start and again every ``refresh_seconds``, starting the new ones and closing
the ones removed or changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from mmsgate.core.model import Connection
from mmsgate.errors import CarrierError, ConfigError, StoreError
from mmsgate.sms.base import SmsConnector, SmsSink
from mmsgate.sms.connections import SMPP
from mmsgate.store.base import Store

log = logging.getLogger("mmsgate.sms")

ConnectorFactory = Callable[[Connection], SmsConnector]


@dataclass
class _Live:
    connection: Connection
    connector: SmsConnector
    prefixes: tuple[str, ...]
    starting: asyncio.Task[None] | None = None
    broken: str | None = None
    """Why the connection cannot work (a refused bind): fallbacks routed to it fail with this."""


class SmsRouter:
    def __init__(
        self,
        store: Store,
        factory: ConnectorFactory,
        *,
        sandbox: SmsConnector | None,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.factory = factory
        self.sandbox = sandbox
        self.refresh_seconds = refresh_seconds
        self._live: dict[str, _Live] = {}
        self._sink: SmsSink | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def start(self, sink: SmsSink) -> None:
        self._sink = sink
        if self.sandbox is not None:
            await self.sandbox.start(sink)
        await self.refresh()
        self._refresher = asyncio.create_task(self._refreshing(), name="sms-connections")

    def route(self, number: str) -> tuple[SmsConnector | None, str | None]:
        """The connector for ``number``, and why it cannot send when it cannot (None, None: no route)."""
        best: _Live | None = None
        best_length = -1
        for live in self._live.values():
            for prefix in live.prefixes or ("",):
                if number.startswith(prefix) and len(prefix) > best_length:
                    best, best_length = live, len(prefix)
        if best is not None:
            return best.connector, best.broken
        return self.sandbox, None

    async def refresh(self) -> None:
        """Start the connections added since the last look, close the ones removed or changed."""
        try:
            wanted = {c.name: c for c in await self.store.list_connections(SMPP)}
        except StoreError as exc:
            log.warning("reading the SMS connections failed (%s); keeping the current ones", exc)
            return
        for name in [n for n, live in self._live.items() if wanted.get(n) != live.connection]:
            await self._stop(self._live.pop(name))
        for name, connection in wanted.items():
            if name in self._live:
                continue
            try:
                connector = self.factory(connection)
            except (ConfigError, TypeError, ValueError) as exc:
                log.error("SMS connection %s cannot be used: %s", name, exc)
                continue
            prefixes = tuple(str(p) for p in connection.config.get("route_prefixes", ()))
            live = _Live(connection, connector, prefixes)
            live.starting = asyncio.create_task(self._start(live), name=f"sms-start-{name}")
            self._live[name] = live

    async def _start(self, live: _Live) -> None:
        assert self._sink is not None
        try:
            await live.connector.start(self._sink)
            log.info("SMS connection %s is up", live.connection.name)
        except CarrierError as exc:
            live.broken = f"SMS connection {live.connection.name}: {exc}"
            log.error("%s", live.broken)

    async def _stop(self, live: _Live) -> None:
        if live.starting is not None:
            live.starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await live.starting
        try:
            await live.connector.aclose()
        except Exception:  # closing must not stop the others
            log.exception("closing SMS connection %s failed", live.connection.name)

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
        if self.sandbox is not None:
            await self.sandbox.aclose()
