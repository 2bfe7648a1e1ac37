"""Schema migrations, applied with yoyo-migrations from the SQL files beside this module."""

from __future__ import annotations

from importlib import resources
from urllib.parse import parse_qs, urlsplit

import psycopg
from yoyo import get_backend, read_migrations

from mmsgate.errors import StoreUnavailable

CONNECT_TIMEOUT = 10
"""Seconds a migration's connection may take to open (libpq waits without end by default: a server that
takes the connection and never answers would hold a process's start, and its stop, for ever)."""


def yoyo_url(database_url: str) -> str:
    """yoyo names the psycopg 3 driver explicitly; a connection that cannot open gives up in time."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            url = "postgresql+psycopg://" + database_url[len(prefix) :]
            if "connect_timeout" not in parse_qs(urlsplit(url).query):
                url += ("&" if urlsplit(url).query else "?") + f"connect_timeout={CONNECT_TIMEOUT}"
            return url
    return database_url


def apply_migrations(database_url: str, dialect: str) -> list[str]:
    """Apply what is pending under a lock (safe when several processes start at once); blocking. A
    server that cannot be reached (down, starting, restarting) is :class:`StoreUnavailable`."""
    folder = resources.files("mmsgate.store") / "migrations" / dialect
    try:
        backend = get_backend(yoyo_url(database_url))
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"PostgreSQL: {exc}".strip()) from exc
    try:
        migrations = read_migrations(str(folder))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    except psycopg.OperationalError as exc:  # the connection was lost on the way
        raise StoreUnavailable(f"PostgreSQL: {exc}".strip()) from exc
    finally:
        backend.connection.close()
