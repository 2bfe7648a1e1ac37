"""The ``mmsgate`` command: run the gateway and administer accounts, keys, campaigns and numbers.

Every command takes its settings from ``--data-dir`` / ``--database`` or ``MMSGATE_*`` variables;
admin commands print one JSON object with ``--json`` and work while ``serve`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from functools import wraps
from pathlib import Path
from types import FrameType
from typing import Any, ParamSpec, TypeVar

import click

from mmsgate.config import Settings, load_settings
from mmsgate.contract.numbers import normalise_number
from mmsgate.core.model import NumberKind
from mmsgate.errors import MmsgateError
from mmsgate.store import create_store
from mmsgate.store.base import Store

P = ParamSpec("P")
T = TypeVar("T")

_TOLL_FREE_PREFIXES = ("1800", "1833", "1844", "1855", "1866", "1877", "1888")


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def _emit(as_json: bool, data: dict[str, Any], human: str) -> None:
    click.echo(json.dumps(_plain(data)) if as_json else human)


def _settings(ctx: click.Context) -> Settings:
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
        settings = _settings(ctx)

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


def _number(value: str) -> str:
    digits = normalise_number(value)
    if digits is None:
        raise click.BadParameter(f"{value!r} is not a number (digits, optionally after a +)")
    return digits


def _kind_of(number: str) -> NumberKind:
    if len(number) <= 6:
        return NumberKind.SHORT_CODE
    if number.startswith(_TOLL_FREE_PREFIXES):
        return NumberKind.TOLL_FREE
    return NumberKind.TEN_DLC


@click.group()
@click.version_option(package_name="mmsgate")
def main() -> None:
    """mmsgate: a self-hosted MMS gateway speaking the Sinch MMS JSON API."""
    logging.basicConfig(level=os.environ.get("MMSGATE_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s %(message)s")
    for noisy in ("yoyo", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------
# running


def _server_options(fn: Callable[P, T]) -> Callable[P, T]:
    fn = click.option("--database", default=None, help="postgresql://... (default: SQLite in the data dir)")(fn)
    fn = click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="data directory")(fn)
    fn = click.option("--port", type=int, default=None, help="port (default 8080; 0 picks a free one)")(fn)
    fn = click.option("--host", default=None, help="address to listen on (default 127.0.0.1)")(fn)
    return fn


async def _serve(settings: Settings, *, demo: bool, workers: bool) -> None:
    from mmsgate.app import create_app
    from mmsgate.demo import ensure_demo

    store = create_store(settings)
    await store.migrate()
    await store.open()
    try:
        if demo:
            await _announce_demo(store, settings, ensure_demo)
        await _announce_console(store)
        app = create_app(settings, store)
        async with contextlib.AsyncExitStack() as stack:
            if workers:
                from mmsgate.runtime import running_worker

                worker = await stack.enter_async_context(running_worker(settings, store))
                app.state.endpoint.after_accept = worker.wake
                app.state.vasp.after_request = worker.wake
            await _run_server(app, settings, store)
    finally:
        await store.close()


async def _run_server(app: Any, settings: Settings, store: Store) -> None:
    import uvicorn

    class _Server(uvicorn.Server):
        """Says when it listens, so the address (with a port picked by the OS) can be printed."""

        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.ready = asyncio.Event()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            self.ready.set()

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="none",
        http="httptools",
        access_log=False,
        proxy_headers=False,  # nothing here reads the client's address
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    server = _Server(config)
    # uvicorn takes SIGINT/SIGTERM while it serves and, once shut down, raises the signal again for the
    # handler it found installed: let that be a quiet one, so the workers and the store still close
    # cleanly (jobs released, nothing left half-written) and the process exits 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _after_shutdown)
    serving = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        if not settings.public_url:  # where inbound content URLs point, for every process of this gateway
            from mmsgate.runtime import PUBLIC_URL

            await store.set_value(PUBLIC_URL, f"http://{settings.host}:{port}")
        click.echo(f"mmsgate listening on http://{settings.host}:{port}")
        sys.stdout.flush()
    await serving


def _after_shutdown(sig: int, frame: FrameType | None) -> None:
    """A stop signal repeated by uvicorn after its graceful shutdown: the cleanup under way finishes."""


async def _announce_demo(
    store: Store, settings: Settings, ensure: Callable[[Store, Path], Awaitable[tuple[Any, bool]]]
) -> None:
    demo, created = await ensure(store, settings.data_dir)
    path = settings.data_dir / "demo.json"
    if created:
        click.echo(
            "Demo account created (shown once; also saved in {path}):\n"
            f"  account_id  {demo.account_id}\n  api_key     {demo.api_key}\n"
            f"  service-id  {demo.service_id}\n  from        {demo.sender}\n  to          {demo.to}".format(path=path)
        )
    else:
        click.echo(f"Demo account {demo.account_id}: credentials in {path}")


async def _announce_console(store: Store) -> None:
    from mmsgate.web.console.auth import ensure_password

    password = await ensure_password(store)
    if password is not None:
        click.echo(
            f"Console password (shown once; `mmsgate console password` sets a new one): {password}\n"
            "  log in at /console on the address below"
        )


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    _tune_gc()
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(coro)


GC_YOUNG_THRESHOLD = 20_000
"""Allocations between collections of the youngest generation (Python's default: 700)."""


def _tune_gc() -> None:
    """Collect cyclic garbage less often in the long-running processes. A message makes thousands of
    short-lived objects (futures, tuples, rows) that reference counting frees at once; with Python's
    default threshold the collector still ran every few hundred of them and took 5% of a worker's CPU
    (perf, bench/pipeline.py). The objects of start-up (modules, settings, the app) are frozen: no
    collection walks them again."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


@main.command()
@_server_options
def serve(host: str | None, port: int | None, data_dir: Path | None, database: str | None) -> None:
    """Run the whole gateway in one process (creates the demo account on first start)."""
    settings = load_settings(host=host, port=port, data_dir=data_dir, database=database)
    _run_loop(_serve(settings, demo=settings.demo, workers=settings.workers))


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="data directory")
@click.option("--database", default=None, help="postgresql://... (default: SQLite in the data dir)")
def worker(data_dir: Path | None, database: str | None) -> None:
    """Run only the job workers (scale out: many processes, many machines, one PostgreSQL)."""
    settings = load_settings(data_dir=data_dir, database=database)
    _run_loop(_work(settings))


async def _work(settings: Settings) -> None:

    from mmsgate.runtime import running_worker

    store = create_store(settings)
    await store.migrate()
    await store.open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_worker(settings, store) as running:
            click.echo(f"mmsgate worker {running.worker.owner} running")
            sys.stdout.flush()
            await stop.wait()
    finally:
        await store.close()


@main.command()
@_server_options
@click.option("--processes", type=int, default=1, show_default=True, help="API processes sharing the port")
def api(host: str | None, port: int | None, data_dir: Path | None, database: str | None, processes: int) -> None:
    """Run only the HTTP API (scale out: several processes, several machines, one PostgreSQL)."""
    settings = load_settings(host=host, port=port, data_dir=data_dir, database=database)
    if processes <= 1:
        _run_loop(_serve(settings, demo=False, workers=False))
        return
    import uvicorn

    # child processes build their settings from the environment
    os.environ["MMSGATE_DATA_DIR"] = str(settings.data_dir)
    if settings.database:
        os.environ["MMSGATE_DATABASE"] = settings.database
    asyncio.run(_migrate(settings))
    click.echo(f"mmsgate listening on http://{settings.host}:{settings.port} ({processes} processes)")
    uvicorn.run(
        "mmsgate.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=processes,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,  # nothing here reads the client's address
        log_level="warning",
    )


async def _migrate(settings: Settings) -> list[str]:
    return await create_store(settings).migrate()


@main.command()
@store_options
def migrate(as_json: bool) -> None:
    """Apply pending schema migrations."""
    settings = _settings(click.get_current_context())
    applied = asyncio.run(_migrate(settings))
    _emit(as_json, {"applied": applied}, f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")


@main.command()
@store_options
@with_store
async def prune(store: Store, as_json: bool) -> None:
    """Delete finished jobs, ended postbacks, old sandbox records and expired inbound MMS now (workers
    also do it every MMSGATE_PRUNE_INTERVAL seconds; MMSGATE_RETENTION_DAYS says what is old)."""
    from mmsgate.runtime import prune_once

    counts = await prune_once(store, _settings(click.get_current_context()))
    _emit(as_json, {"pruned": counts}, ", ".join(f"{n} {what}" for what, n in counts.items()) + " deleted")


@main.group()
def demo() -> None:
    """The demo account created by `serve`."""


@demo.command("env")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="data directory")
def demo_env(data_dir: Path | None) -> None:
    """Print shell lines that export the demo credentials (eval "$(mmsgate demo env)")."""
    from mmsgate.demo import read_demo

    settings = load_settings(data_dir=data_dir)
    creds = read_demo(settings.data_dir)
    if creds is None:
        click.echo(f"error: no demo account in {settings.data_dir}; start `mmsgate serve` first", err=True)
        sys.exit(1)
    click.echo(
        f"export MMSGATE_KEY={creds.api_key} MMSGATE_SERVICE_ID={creds.service_id} "
        f"MMSGATE_FROM={creds.sender} MMSGATE_TO={creds.to}"
    )


@main.group()
def console() -> None:
    """The web console at /console (messages, virtual phones, test sends, templates)."""


@console.command("password")
@store_options
@with_store
async def console_password(store: Store, as_json: bool) -> None:
    """Set a new console password and print it (shown once; every console session ends)."""
    from mmsgate.web.console.auth import new_password, set_password

    password = new_password()
    await set_password(store, password)
    _emit(as_json, {"password": password}, f"console password (shown once): {password}")


# ---------------------------------------------------------------------------------------------
# accounts and keys


@main.group()
def account() -> None:
    """Accounts: create, list, set, delete."""


@account.command("create")
@click.argument("name")
@store_options
@with_store
async def account_create(store: Store, name: str, as_json: bool) -> None:
    """Create an account and its first API key (the key is shown once)."""
    acc = await store.create_account(name)
    _, secret = await store.create_key(acc.id)
    _emit(
        as_json,
        {"account_id": acc.id, "api_key": secret},
        f"account {acc.id} created\nAPI key (shown once): {secret}",
    )


@account.command("list")
@store_options
@with_store
async def account_list(store: Store, as_json: bool) -> None:
    """List accounts."""
    accounts = await store.list_accounts()
    lines = [f"{a.id}  {a.name}{'  (disabled)' if a.disabled else ''}" for a in accounts]
    _emit(as_json, {"accounts": accounts}, "\n".join(lines) or "no accounts")


@account.command("set")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--postback-url", default=None, help="where postbacks go ('' clears it)")
@click.option("--postback-secret", default=None, help="secret that signs postbacks ('' clears it)")
@click.option("--transcoding", type=click.Choice(["on", "off"]), default=None)
@click.option("--disabled", type=click.Choice(["true", "false"]), default=None)
@click.option("--rate-limit", type=click.IntRange(min=0), default=None, help="API requests per second; 0: none")
@store_options
@with_store
async def account_set(
    store: Store,
    account_id: str,
    postback_url: str | None,
    postback_secret: str | None,
    transcoding: str | None,
    disabled: str | None,
    rate_limit: int | None,
    as_json: bool,
) -> None:
    """Change an account's settings."""
    acc = await store.update_account(
        account_id,
        postback_url=postback_url,
        postback_secret=postback_secret,
        transcoding=None if transcoding is None else transcoding == "on",
        disabled=None if disabled is None else disabled == "true",
        rate_limit=rate_limit,
    )
    shown = _plain(acc)
    if shown.get("postback_secret"):
        shown["postback_secret"] = "********"
    _emit(as_json, shown, f"account {acc.id} updated")


@account.command("delete")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def account_delete(store: Store, account_id: str, as_json: bool) -> None:
    """Delete an account with its keys, campaigns, numbers and blocks (messages are kept)."""
    await store.delete_account(account_id)
    _emit(as_json, {"deleted": account_id}, f"account {account_id} deleted")


@main.group()
def key() -> None:
    """API keys: create, list, revoke, remove."""


@key.command("create")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def key_create(store: Store, account_id: str, as_json: bool) -> None:
    """Create an API key (shown once; only its hash is stored)."""
    k, secret = await store.create_key(account_id)
    _emit(as_json, {"key_id": k.id, "api_key": secret}, f"key {k.id} created\nAPI key (shown once): {secret}")


@key.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def key_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's keys (ids and prefixes; keys themselves are never stored)."""
    keys = await store.list_keys(account_id)
    lines = [f"{k.id}  {k.prefix}...{'  (revoked)' if k.revoked else ''}" for k in keys]
    _emit(as_json, {"keys": keys}, "\n".join(lines) or "no keys")


@key.command("revoke")
@click.argument("key_id")
@store_options
@with_store
async def key_revoke(store: Store, key_id: str, as_json: bool) -> None:
    """Revoke a key: calls with it answer E104."""
    await store.revoke_key(key_id)
    _emit(as_json, {"revoked": key_id}, f"key {key_id} revoked")


@key.command("remove")
@click.argument("key_id")
@store_options
@with_store
async def key_remove(store: Store, key_id: str, as_json: bool) -> None:
    """Delete a key for good: calls with it answer E104 and it is no longer listed."""
    await store.delete_key(key_id)
    _emit(as_json, {"removed": key_id}, f"key {key_id} removed")


# ---------------------------------------------------------------------------------------------
# campaigns, numbers, blocks


@main.group()
def campaign() -> None:
    """Campaigns (the API's service-id): create, list, remove."""


@campaign.command("create")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--postback-url", default=None, help="postbacks of this campaign go here instead")
@store_options
@with_store
async def campaign_create(store: Store, account_id: str, postback_url: str | None, as_json: bool) -> None:
    """Create a campaign; prints its service-id."""
    c = await store.create_campaign(account_id, postback_url)
    _emit(as_json, {"service_id": c.service_id}, f"campaign created: service-id {c.service_id}")


@campaign.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def campaign_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's campaigns."""
    items = await store.list_campaigns(account_id)
    _emit(as_json, {"campaigns": items}, "\n".join(c.service_id for c in items) or "no campaigns")


@campaign.command("remove")
@click.argument("service_id")
@store_options
@with_store
async def campaign_remove(store: Store, service_id: str, as_json: bool) -> None:
    """Remove a campaign (and the numbers allowed only for it)."""
    await store.delete_campaign(service_id)
    _emit(as_json, {"removed": service_id}, f"campaign {service_id} removed")


@main.group()
def number() -> None:
    """Sender numbers (short code, toll-free, 10DLC): add, list, remove."""


@number.command("add")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("value", metavar="NUMBER")
@click.option("--campaign", "service_id", default=None, help="allow it only for this service-id")
@click.option("--kind", type=click.Choice([k.value for k in NumberKind]), default=None, help="default: guessed")
@store_options
@with_store
async def number_add(
    store: Store, account_id: str, value: str, service_id: str | None, kind: str | None, as_json: bool
) -> None:
    """Give an account a sender number."""
    digits = _number(value)
    n = await store.add_number(account_id, digits, NumberKind(kind) if kind else _kind_of(digits), service_id)
    _emit(as_json, {"number": n}, f"number {n.number} ({n.kind.value}) added to {account_id}")


@number.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def number_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's sender numbers."""
    await store.get_account(account_id)
    items = await store.list_numbers(account_id)
    lines = [f"{n.number}  {n.kind.value}  {n.service_id or 'any campaign'}" for n in items]
    _emit(as_json, {"numbers": items}, "\n".join(lines) or "no numbers")


@number.command("remove")
@click.argument("value", metavar="NUMBER")
@store_options
@with_store
async def number_remove(store: Store, value: str, as_json: bool) -> None:
    """Take a sender number away from its account."""
    digits = _number(value)
    await store.remove_number(digits)
    _emit(as_json, {"removed": digits}, f"number {digits} removed")


@main.group()
def block() -> None:
    """Blocked recipients (E114): add, list, remove."""


@block.command("add")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("value", metavar="NUMBER")
@store_options
@with_store
async def block_add(store: Store, account_id: str, value: str, as_json: bool) -> None:
    """Block a recipient number for an account."""
    b = await store.block_number(account_id, _number(value))
    _emit(as_json, {"blocked": b}, f"{b.number} blocked for {account_id}")


@block.command("list")
@click.argument("account_id", metavar="ACCOUNT")
@store_options
@with_store
async def block_list(store: Store, account_id: str, as_json: bool) -> None:
    """List an account's blocked numbers."""
    items = await store.list_blocked(account_id)
    _emit(as_json, {"blocked": [b.number for b in items]}, "\n".join(b.number for b in items) or "none blocked")


@block.command("remove")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("value", metavar="NUMBER")
@store_options
@with_store
async def block_remove(store: Store, account_id: str, value: str, as_json: bool) -> None:
    """Unblock a recipient number."""
    digits = _number(value)
    await store.unblock_number(account_id, digits)
    _emit(as_json, {"unblocked": digits}, f"{digits} unblocked for {account_id}")


# the sandbox commands live in their own module; importing it registers them on `main`
from mmsgate import cli_mm7, cli_sandbox, cli_send, cli_sms  # noqa: E402, F401
