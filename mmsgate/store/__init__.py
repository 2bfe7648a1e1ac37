"""Durable state: every role of :mod:`mmsgate.core.roles`, implemented once in SQL for SQLite and
PostgreSQL. :func:`create_store` picks the backend from the database URL through a registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmsgate.config import Settings
from mmsgate.errors import ConfigError
from mmsgate.store.backend import Store


def _sqlite(url: str, settings: Settings) -> Store:
    from mmsgate.store.sqlite import SqliteStore

    return SqliteStore(
        Path(url.removeprefix("sqlite:///")),
        synchronous=settings.sqlite_synchronous,
        group_commit_max=settings.group_commit_max,
    )


def _postgres(url: str, settings: Settings) -> Store:
    from mmsgate.store.postgres import PostgresStore

    return PostgresStore(url, pool_size=settings.pg_pool_size, group_commit_max=settings.group_commit_max)


BACKENDS: dict[str, Callable[[str, Settings], Store]] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def create_store(settings: Settings) -> Store:
    """The store named by ``settings.database_url`` (not yet opened)."""
    url = settings.database_url
    scheme = url.split(":", 1)[0]
    factory = BACKENDS.get(scheme)
    if factory is None:
        raise ConfigError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")
    return factory(url, settings)


__all__ = ["BACKENDS", "Store", "create_store"]
