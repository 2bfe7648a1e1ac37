"""What every ``mmsgate`` command shares: settings from ``--data-dir`` / ``--database`` or ``MMSGATE_*``
variables, a migrated and open store for admin commands, printing one JSON object with ``--json`` (or a
line of text), and phone numbers as digits. :class:`Kit` gives carrier plug-ins the same for their own
commands."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from mmsgate.api.auth import Authenticator
from mmsgate.carriers.plugin import ConnectionSettings, EdgePorts, Shown
from mmsgate.config import Settings, load_settings
from mmsgate.contract import normalise_number
from mmsgate.core.model import NumberKind
from mmsgate.errors import MmsgateError
from mmsgate.store import Store, create_store
from mmsgate.wiring import account_settings, blob_store, edge_ports, inbound_receiver

P = ParamSpec("P")
T = TypeVar("T")

_TOLL_FREE_PREFIXES = ("1800", "1833", "1844", "1855", "1866", "1877", "1888")


def plain(value: Any) -> Any:
    """A record as JSON data (dataclasses, enums and times included)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def emit(as_json: bool, data: dict[str, Any], human: str) -> None:
    click.echo(json.dumps(plain(data)) if as_json else human)


def settings_of(ctx: click.Context) -> Settings:
    """The settings of an admin command: its ``--data-dir`` and ``--database``, else the environment's."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    return load_settings(data_dir=obj.get("data_dir"), database=obj.get("database"))


def store_options(fn: Callable[P, T]) -> Callable[P, T]:
    """Add --data-dir, --database and --json to an admin command."""

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(dict)[param.name or ""] = value
        return value

    fn = click.option("--json", "as_json", is_flag=True, help="print one JSON object")(fn)
    fn = click.option(
        "--database",
        default=None,
        expose_value=False,
        callback=remember,
        help="postgresql://... (or MMSGATE_DATABASE)",
    )(fn)
    fn = click.option(
        "--data-dir",
        "data_dir",
        type=click.Path(path_type=Path),
        default=None,
        expose_value=False,
        callback=remember,
        help="data directory (or MMSGATE_DATA_DIR)",
    )(fn)
    return fn


def with_store(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async admin command against a migrated, open store; report store errors as exit 1."""

    @click.pass_context
    @wraps(fn)
    def command(ctx: click.Context, /, *args: Any, **kwargs: Any) -> None:
        settings = settings_of(ctx)

        async def run() -> None:
            store = create_store(settings)
            await store.migrate()
            await store.open()
            try:
                await fn(store, *args, **kwargs)
            finally:
                await store.close()

        try:
            asyncio.run(run())
        except MmsgateError as exc:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": str(exc)}))
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return command


def number(value: str) -> str:
    """A phone number given on the command line, as digits; a usage error if it is not one."""
    digits = normalise_number(value)
    if digits is None:
        raise click.BadParameter(f"{value!r} is not a number (digits, optionally after a +)")
    return digits


def kind_of(number: str) -> NumberKind:
    """What kind of sender number ``number`` looks like."""
    if len(number) <= 6:
        return NumberKind.SHORT_CODE
    if number.startswith(_TOLL_FREE_PREFIXES):
        return NumberKind.TOLL_FREE
    return NumberKind.TEN_DLC


def shown(name: str, settings: ConnectionSettings | dict[str, Any], secrets: frozenset[str]) -> dict[str, Any]:
    """A connection as commands print it: every setting but the secrets."""
    stored = settings.stored() if isinstance(settings, ConnectionSettings) else settings
    return {"name": name, **{k: v for k, v in stored.items() if k not in secrets}}


def routes(route_prefixes: list[str] | tuple[str, ...]) -> str:
    return ", ".join(route_prefixes) or "every number"


class Kit:
    """The :class:`mmsgate.carriers.plugin.CommandKit` of the ``mmsgate`` command."""

    def admin(self, fn: Callable[..., Awaitable[Shown]]) -> Callable[..., None]:
        @store_options
        @with_store
        @wraps(fn)
        async def command(store: Store, /, *args: Any, as_json: bool, **kwargs: Any) -> None:
            settings = settings_of(click.get_current_context())
            blobs = blob_store(settings)
            accounts = account_settings(settings, store)
            inbound = inbound_receiver(settings, store, accounts, blobs)
            auth = Authenticator(store.accounts, accounts, settings.auth_cache_seconds)
            data, human = await fn(edge_ports(settings, store, inbound, blobs, auth.account_for), *args, **kwargs)
            emit(as_json, data, human)

        return command

    def number(self, value: str) -> str:
        return number(value)

    async def add_connection(self, ports: EdgePorts, kind: str, name: str, settings: ConnectionSettings) -> Shown:
        await ports.connections.add_connection(name, kind, settings.stored())
        label = kind.upper()
        return (
            {"connection": shown(name, settings, settings.SECRETS)},
            f"{label} connection {name} added ({routes(settings.route_prefixes)})",
        )
