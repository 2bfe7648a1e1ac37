"""``mmsgate smpp add``: an SMPP connection fallback SMS go out on (``list`` and ``remove`` are the
command line's own, the same for every kind of connection).

Connections live in the store, so every worker process (and a running ``serve``) picks up a change
within ``connection_refresh_seconds``. A fallback SMS goes to the connection with the longest route prefix
matching its recipient; a connection without prefixes takes every number.
"""

from __future__ import annotations

import click

from mmsgate.carriers.plugin import CommandKit, EdgePorts, Shown
from mmsgate.carriers.smpp.settings import BINDS, SMPP, SmppConnection


def commands(kit: CommandKit) -> list[click.Command]:
    @click.command("add")
    @click.argument("name")
    @click.option("--host", required=True, help="the SMSC's host name or address")
    @click.option("--port", type=click.IntRange(1, 65535), default=2775, show_default=True)
    @click.option("--system-id", required=True, help="the ESME's system_id (at most 15 characters)")
    @click.option("--password", required=True, help="at most 8 characters (SMPP 3.4)")
    @click.option("--system-type", default="", help="at most 12 characters")
    @click.option("--bind", type=click.Choice(BINDS), default="transceiver", show_default=True)
    @click.option(
        "--tps", type=click.IntRange(0), default=0, help="most submits per second over every process; 0: none"
    )
    @click.option("--window", type=click.IntRange(1, 1000), default=10, show_default=True, help="submits in flight")
    @click.option("--route-prefix", "prefixes", multiple=True, help="numbers starting with it go here (repeatable)")
    @kit.admin
    async def add(
        ports: EdgePorts,
        name: str,
        host: str,
        port: int,
        system_id: str,
        password: str,
        system_type: str,
        bind: str,
        tps: int,
        window: int,
        prefixes: tuple[str, ...],
    ) -> Shown:
        """Add an SMPP connection named NAME."""
        settings = SmppConnection(
            host=host,
            port=port,
            system_id=system_id,
            password=password,
            system_type=system_type,
            bind=bind,
            tps=tps,
            window=window,
            route_prefixes=tuple(p.lstrip("+") for p in prefixes),
        )
        return await kit.add_connection(ports, SMPP, name, settings)

    return [add]
