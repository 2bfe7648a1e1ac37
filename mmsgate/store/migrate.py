"""Schema migrations, applied with yoyo-migrations from the SQL files beside this module."""

from __future__ import annotations

from importlib import resources

from yoyo import get_backend, read_migrations


def yoyo_url(database_url: str) -> str:
    """yoyo names the psycopg 3 driver explicitly."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def apply_migrations(database_url: str, dialect: str) -> list[str]:
    """Apply what is pending under a lock (safe when several processes start at once); blocking."""
    folder = resources.files("mmsgate.store") / "migrations" / dialect
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(folder))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()
