"""Running the gateway: ``serve`` (everything in one process), ``api`` and ``worker`` (scaling out), and
``migrate``, ``prune``, ``demo env`` and ``console password`` beside them."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from mmsgate import process
from mmsgate.cli.common import emit, settings_of, store_options, with_store
from mmsgate.config import Settings, load_settings
from mmsgate.store import Store, create_store

P = ParamSpec("P")
T = TypeVar("T")


def _server_options(fn: Callable[P, T]) -> Callable[P, T]:
    fn = click.option("--database", default=None, help="postgresql://... (default: SQLite in the data dir)")(fn)
    fn = click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="data directory")(fn)
    fn = click.option("--port", type=int, default=None, help="port (default 8080; 0 picks a free one)")(fn)
    fn = click.option("--host", default=None, help="address to listen on (default 127.0.0.1)")(fn)
    return fn


async def _serve(settings: Settings, *, demo: bool, workers: bool) -> None:
    from mmsgate.app import create_app
    from mmsgate.cli.demo import ensure_demo
    from mmsgate.wiring import open_store, with_database

    store = create_store(settings)
    await open_store(settings, store)
    try:
        if demo:
            await with_database(settings, lambda: _announce_demo(store, settings, ensure_demo))
        await with_database(settings, lambda: _announce_console(store))
        app = create_app(settings, store)
        async with contextlib.AsyncExitStack() as stack:
            if workers:
                from mmsgate.runtime import running_worker

                worker = await stack.enter_async_context(running_worker(settings, store))
                app.state.endpoint.after_accept = worker.wake
                app.state.inbound.after_keep = worker.wake
            await process.serve_http(app, settings, lambda port: _listening(store, settings, port))
    finally:
        await store.close()


async def _listening(store: Store, settings: Settings, port: int) -> None:
    if not settings.public_url:  # where inbound content URLs point, for every process of this gateway
        from mmsgate.wiring import PUBLIC_URL, with_database

        await with_database(settings, lambda: store.values.set_value(PUBLIC_URL, f"http://{settings.host}:{port}"))
    click.echo(f"mmsgate listening on http://{settings.host}:{port}")
    sys.stdout.flush()


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

    password = await ensure_password(store.console)
    if password is not None:
        click.echo(
            f"Console password (shown once; `mmsgate console password` sets a new one): {password}\n"
            "  log in at /console on the address below"
        )


@click.command()
@_server_options
def serve(host: str | None, port: int | None, data_dir: Path | None, database: str | None) -> None:
    """Run the whole gateway in one process (creates the demo account on first start)."""
    settings = load_settings(host=host, port=port, data_dir=data_dir, database=database)
    process.run(_serve(settings, demo=settings.demo, workers=settings.workers))


@click.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="data directory")
@click.option("--database", default=None, help="postgresql://... (default: SQLite in the data dir)")
def worker(data_dir: Path | None, database: str | None) -> None:
    """Run only the job workers (scale out: many processes, many machines, one PostgreSQL)."""
    settings = load_settings(data_dir=data_dir, database=database)
    process.run(_work(settings))


async def _work(settings: Settings) -> None:
    from mmsgate.runtime import running_worker
    from mmsgate.wiring import open_store

    store = create_store(settings)
    await open_store(settings, store)
    try:
        async with running_worker(settings, store) as running:
            process.tune_gc()
            click.echo(f"mmsgate worker {running.worker.owner} running")
            sys.stdout.flush()
            await process.until_stopped()
    finally:
        await store.close()


@click.command()
@_server_options
@click.option("--processes", type=int, default=1, show_default=True, help="API processes sharing the port")
def api(host: str | None, port: int | None, data_dir: Path | None, database: str | None, processes: int) -> None:
    """Run only the HTTP API (scale out: several processes, several machines, one PostgreSQL)."""
    settings = load_settings(host=host, port=port, data_dir=data_dir, database=database)
    if processes <= 1:
        process.run(_serve(settings, demo=False, workers=False))
        return
    process.run(_migrate_when_available(settings))
    click.echo(f"mmsgate listening on http://{settings.host}:{settings.port} ({processes} processes)")
    process.serve_processes(settings, processes)


async def _migrate(settings: Settings) -> list[str]:
    return await create_store(settings).migrate()


async def _migrate_when_available(settings: Settings) -> None:
    from mmsgate.wiring import with_database

    await with_database(settings, create_store(settings).migrate)


@click.command()
@store_options
def migrate(as_json: bool) -> None:
    """Apply pending schema migrations."""
    settings = settings_of(click.get_current_context())
    applied = asyncio.run(_migrate(settings))
    emit(as_json, {"applied": applied}, f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")


@click.command()
@store_options
@with_store
async def prune(store: Store, as_json: bool) -> None:
    """Delete finished jobs, ended postbacks, old sandbox records and expired inbound MMS now (workers
    also do it every MMSGATE_PRUNE_INTERVAL seconds; MMSGATE_RETENTION_DAYS says what is old)."""
    from mmsgate.runtime import prune_once

    counts = await prune_once(store, settings_of(click.get_current_context()))
    emit(as_json, {"pruned": counts}, ", ".join(f"{n} {what}" for what, n in counts.items()) + " deleted")


@click.group()
def demo() -> None:
    """The demo account created by `serve`."""


@demo.command("env")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="data directory")
def demo_env(data_dir: Path | None) -> None:
    """Print shell lines that export the demo credentials (eval "$(mmsgate demo env)")."""
    from mmsgate.cli.demo import read_demo

    settings = load_settings(data_dir=data_dir)
    creds = read_demo(settings.data_dir)
    if creds is None:
        click.echo(f"error: no demo account in {settings.data_dir}; start `mmsgate serve` first", err=True)
        sys.exit(1)
    click.echo(
        f"export MMSGATE_KEY={creds.api_key} MMSGATE_SERVICE_ID={creds.service_id} "
        f"MMSGATE_FROM={creds.sender} MMSGATE_TO={creds.to}"
    )


@click.group()
def console() -> None:
    """The web console at /console (messages, virtual phones, test sends, templates)."""


@console.command("password")
@store_options
@with_store
async def console_password(store: Store, as_json: bool) -> None:
    """Set a new console password and print it (shown once; every console session ends)."""
    from mmsgate.web.console.auth import new_password, set_password

    password = new_password()
    await set_password(store.console, password)
    emit(as_json, {"password": password}, f"console password (shown once): {password}")


COMMANDS = (serve, worker, api, migrate, prune, demo, console)
