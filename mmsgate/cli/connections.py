"""``mmsgate KIND ...`` for every carrier plug-in (:data:`mmsgate.carriers.PLUGINS`): ``list`` and ``remove``
for a kind whose connections are stored (``mmsgate mm7``, ``mmsgate smpp``), and the commands the plug-in
adds itself (``add``; the sandbox's ``handset``, ``inbox`` and ``send``)."""

from __future__ import annotations

import click

from mmsgate.carriers import PLUGINS
from mmsgate.carriers.plugin import Plugin
from mmsgate.cli.common import Kit, emit, routes, shown, store_options, with_store
from mmsgate.errors import ConfigError
from mmsgate.store import Store


def _list_and_remove(group: click.Group, plugin: Plugin) -> None:
    """Give ``group`` the commands ``list`` (one line per connection) and ``remove NAME``."""
    kind, label = plugin.kind, plugin.kind.upper()
    secrets = plugin.settings.SECRETS if plugin.settings is not None else frozenset()

    @group.command("list")
    @store_options
    @with_store
    async def list_connections(store: Store, as_json: bool) -> None:
        items = await store.connections.list_connections(kind)
        lines = []
        for c in items:
            try:
                settings = plugin.load(c.config)
            except ConfigError as exc:
                lines.append(f"{c.name}  cannot be used: {exc}")
                continue
            line = plugin.describe(c.name, settings) if plugin.describe is not None else c.name
            lines.append(f"{line}  tps {settings.tps or 'unlimited'}  routes {routes(settings.route_prefixes)}")
        emit(
            as_json,
            {"connections": [shown(c.name, c.config, secrets) for c in items]},
            "\n".join(lines) or "no connections",
        )

    list_connections.help = f"List the {label} connections (passwords are not shown)."

    @group.command("remove")
    @click.argument("name")
    @store_options
    @with_store
    async def remove_connection(store: Store, name: str, as_json: bool) -> None:
        await store.connections.remove_connection(name, kind)
        emit(as_json, {"removed": name}, f"{label} connection {name} removed")

    remove_connection.help = f"Remove the {label} connection NAME (workers close it within a few seconds)."


def plugin_groups() -> list[click.Group]:
    """One command group per carrier plug-in that has commands or stored connections."""
    kit = Kit()
    groups: list[click.Group] = []
    for plugin in PLUGINS.values():
        if plugin.settings is None and plugin.commands is None:
            continue
        group = click.Group(plugin.kind, help=plugin.summary)
        for command in plugin.commands(kit) if plugin.commands is not None else ():
            group.add_command(command)
        if plugin.settings is not None:
            _list_and_remove(group, plugin)
        groups.append(group)
    return groups
