"""The parts every kind of process builds the same way from its settings and its store: the account
settings cache, the blob store, the inbound receiver, where content URLs point, the ports the carrier
plug-ins' routes and commands are given, and the wait for the database at start. The HTTP app
(:mod:`mmsgate.app`), the worker runtime (:mod:`mmsgate.runtime`) and the command line build on these."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mmsgate.carriers.plugin import EdgePorts
from mmsgate.common.cache import AccountSettings
from mmsgate.common.waiting import Outage, until_available
from mmsgate.config import Settings
from mmsgate.core.model import AccountConfig
from mmsgate.core.roles import Values
from mmsgate.delivery.inbound import InboundReceiver
from mmsgate.postbacks.events import PostbackBuilder
from mmsgate.store import Store
from mmsgate.store.blobs import BlobStore

T = TypeVar("T")
log = logging.getLogger("mmsgate")

PUBLIC_URL = "public_url"
"""The gateway value holding the URL a running gateway announced (``serve`` and ``api`` do at start)."""


def public_url_resolver(settings: Settings, values: Values) -> Callable[[], Awaitable[str]]:
    """Where content URLs point: the configured public URL, else the one the running gateway announced
    in the store, else the configured host and port."""

    async def resolve() -> str:
        if settings.public_url:
            return settings.public_url
        announced = await values.get_value(PUBLIC_URL)
        return announced or f"http://{settings.host}:{settings.port}"

    return resolve


def blob_store(settings: Settings) -> BlobStore:
    return BlobStore(settings.data_dir / "blobs")


def account_settings(settings: Settings, store: Store) -> AccountSettings:
    return AccountSettings(store.accounts, settings.auth_cache_seconds)


def inbound_receiver(settings: Settings, store: Store, accounts: AccountSettings, blobs: BlobStore) -> InboundReceiver:
    """What takes inbound MMS and carriers' requests; enough for a process without workers."""
    return InboundReceiver(
        store.incoming,
        blobs,
        PostbackBuilder(accounts),
        public_url_resolver(settings, store.values),
        retention_seconds=settings.inbound_retention_seconds,
        max_bytes=settings.inbound_max_bytes,
    )


def edge_ports(
    settings: Settings,
    store: Store,
    inbound: InboundReceiver,
    blobs: BlobStore,
    authenticate: Callable[[str | None], Awaitable[AccountConfig]],
) -> EdgePorts:
    return EdgePorts(settings, inbound, blobs, store.connections, store.sandbox, authenticate)


def database_named(settings: Settings) -> str:
    """The database as messages name it: "the database at HOST:PORT" (or at its SQLite file)."""
    return f"the database at {settings.database_address}"


async def with_database(settings: Settings, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``'s result, waiting for the database while it is starting or unreachable, for as long as
    it takes: a database that is not there yet never makes a process exit. The wait is said in the log
    at once and then every 30 s; a stop signal ends it."""
    return await until_available(call, Outage(log, database_named(settings)))


async def open_store(settings: Settings, store: Store, *, migrate: bool = True) -> None:
    """Migrate (when ``migrate``) and open ``store``, waiting for its database (see :func:`with_database`)."""
    if migrate:
        await with_database(settings, store.migrate)
    await with_database(settings, store.open)
