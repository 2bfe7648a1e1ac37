"""What ``mmsgate mm7`` and ``mmsgate smpp`` share: showing connections without their secrets, and the
``list`` and ``remove`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mmsgate.cli import _emit, store_options, with_store
from mmsgate.store.base import Store

SECRETS = frozenset({"password", "inbound_password_hash"})


def shown(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """A connection as commands print it: every setting but the secrets."""
    return {"name": name, **{k: v for k, v in config.items() if k not in SECRETS}}


def routes(config: dict[str, Any]) -> str:
    return ", ".join(config["route_prefixes"]) or "every number"


def add_list_and_remove(group: click.Group, kind: str, label: str, line: Callable[[str, dict[str, Any]], str]) -> None:
    """Give ``group`` the commands ``list`` (one ``line`` per connection) and ``remove NAME``."""

    @group.command("list")
    @store_options
    @with_store
    async def list_connections(store: Store, as_json: bool) -> None:
        items = await store.list_connections(kind)
        lines = [
            f"{line(c.name, c.config)}  tps {c.config['tps'] or 'unlimited'}  routes {routes(c.config)}" for c in items
        ]
        _emit(as_json, {"connections": [shown(c.name, c.config) for c in items]}, "\n".join(lines) or "no connections")

    list_connections.help = f"List the {label} connections (passwords are not shown)."

    @group.command("remove")
    @click.argument("name")
    @store_options
    @with_store
    async def remove_connection(store: Store, name: str, as_json: bool) -> None:
        await store.remove_connection(name, kind)
        _emit(as_json, {"removed": name}, f"{label} connection {name} removed")

    remove_connection.help = f"Remove the {label} connection NAME (workers close it within a few seconds)."
