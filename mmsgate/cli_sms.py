"""``mmsgate smpp``: the SMPP connections fallback SMS go out on.

Connections live in the store, so every worker process (and a running ``serve``) picks up a change
within ``connection_refresh_seconds``. A fallback SMS goes to the connection with the longest route prefix
matching its recipient; a connection without prefixes takes every number.
"""

from __future__ import annotations

import click

from mmsgate.cli import _emit, main, store_options, with_store
from mmsgate.sms.connections import BINDS, SMPP, smpp_config
from mmsgate.store.base import Store


@main.group()
def smpp() -> None:
    """SMPP connections for fallback SMS: add, list, remove."""


@smpp.command("add")
@click.argument("name")
@click.option("--host", required=True, help="the SMSC's host name or address")
@click.option("--port", type=click.IntRange(1, 65535), default=2775, show_default=True)
@click.option("--system-id", required=True, help="the ESME's system_id (at most 15 characters)")
@click.option("--password", required=True, help="at most 8 characters (SMPP 3.4)")
@click.option("--system-type", default="", help="at most 12 characters")
@click.option("--bind", type=click.Choice(BINDS), default="transceiver", show_default=True)
@click.option("--tps", type=click.IntRange(0), default=0, help="most submits per second over every process; 0: none")
@click.option("--window", type=click.IntRange(1, 1000), default=10, show_default=True, help="submits in flight")
@click.option("--route-prefix", "prefixes", multiple=True, help="numbers starting with it go here (repeatable)")
@store_options
@with_store
async def smpp_add(
    store: Store,
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
    as_json: bool,
) -> None:
    """Add an SMPP connection named NAME."""
    config = smpp_config(
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
    connection = await store.add_connection(name, SMPP, config)
    routes = ", ".join(config["route_prefixes"]) or "every number"
    _emit(as_json, {"connection": _shown(connection.name, config)}, f"SMPP connection {name} added ({routes})")


def _shown(name: str, config: dict[str, object]) -> dict[str, object]:
    return {"name": name, **{k: v for k, v in config.items() if k != "password"}}


@smpp.command("list")
@store_options
@with_store
async def smpp_list(store: Store, as_json: bool) -> None:
    """List the SMPP connections (passwords are not shown)."""
    items = await store.list_connections(SMPP)
    lines = [
        f"{c.name}  {c.config['host']}:{c.config['port']}  {c.config['system_id']}  {c.config['bind']}  "
        f"tps {c.config['tps'] or 'unlimited'}  routes {', '.join(c.config['route_prefixes']) or 'every number'}"
        for c in items
    ]
    _emit(as_json, {"connections": [_shown(c.name, c.config) for c in items]}, "\n".join(lines) or "no connections")


@smpp.command("remove")
@click.argument("name")
@store_options
@with_store
async def smpp_remove(store: Store, name: str, as_json: bool) -> None:
    """Remove the SMPP connection NAME (workers close it within a few seconds)."""
    await store.remove_connection(name, SMPP)
    _emit(as_json, {"removed": name}, f"SMPP connection {name} removed")
