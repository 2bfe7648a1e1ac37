"""Shared fixtures: real stores (SQLite file, PostgreSQL database per test), the app, a provisioned account.

PostgreSQL: ``MMSGATE_TEST_POSTGRES_URL`` (default postgresql://postgres@127.0.0.1:5432/test). With
CI=true an unreachable server fails the run; elsewhere the PostgreSQL tests skip and say why.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from mmsgate.app import create_app
from mmsgate.config import Settings, load_settings
from mmsgate.core.model import NumberKind
from mmsgate.store import Store
from mmsgate.store.migrate import apply_migrations
from mmsgate.store.postgres import PostgresStore
from mmsgate.store.sqlite import SqliteStore

pytest_plugins = ("tests.browser_support",)

PG_URL = os.environ.get("MMSGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_TEMPLATE_DB = f"mmsgate_tpl_{os.getpid()}"


def _with_db(url: str, dbname: str) -> str:
    return urlsplit(url)._replace(path=f"/{dbname}").geturl()


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database that each test's database is copied from."""
    try:
        conn = _admin()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable and CI needs it: {exc}")
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable ({exc}); set MMSGATE_TEST_POSTGRES_URL to run these")
    with conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(_TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_TEMPLATE_DB)))
    apply_migrations(_with_db(PG_URL, _TEMPLATE_DB), "postgresql")
    yield _TEMPLATE_DB
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_TEMPLATE_DB)))


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"mmsgate_t_{secrets.token_hex(6)}"
    with _admin() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(pg_template))
        )
    yield _with_db(PG_URL, name)
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _settings(tmp_path: Path, database: str | None = None) -> Settings:
    return load_settings(data_dir=tmp_path / "data", database=database, auth_cache_seconds=0.0)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """An open, migrated store of each backend."""
    the_store: Store
    if backend == "sqlite":
        the_store = SqliteStore(tmp_path / "store.sqlite3")
    else:
        the_store = PostgresStore(request.getfixturevalue("pg_url"))
    await the_store.migrate()
    await the_store.open()
    yield the_store
    await the_store.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


def changed(base: Mapping[str, object], changes: Mapping[str, object]) -> dict[str, Any]:
    """``base`` with ``changes`` applied; ``_`` in a name becomes ``-`` and None removes the field."""
    out: dict[str, Any] = dict(base)
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class Caller:
    """An account provisioned for API calls."""

    account_id: str
    api_key: str
    service_id: str
    sender: str
    to: str = "15550100001"

    def body(self, **fields: object) -> dict[str, object]:
        """A valid sendmms body with the given fields changed (None removes a field)."""
        base: dict[str, object] = {
            "action": "sendmms",
            "service-id": self.service_id,
            "to": self.to,
            "from": self.sender,
            "fallback-sms-text": "See the picture",
            "slide": [{"message-text": "Hello", "image": {"url": "https://media.example.com/a.jpg"}}],
        }
        return changed(base, fields)


async def provision(store: Store, sender: str = "28444") -> Caller:
    account = await store.accounts.create_account(f"acct-{secrets.token_hex(3)}")
    _, api_key = await store.accounts.create_key(account.id)
    campaign = await store.numbers.create_campaign(account.id)
    await store.numbers.add_number(account.id, sender, NumberKind.SHORT_CODE, campaign.service_id)
    return Caller(account.id, api_key, campaign.service_id, sender)


@pytest.fixture
async def caller(store: Store) -> Caller:
    return await provision(store)


@pytest.fixture
async def client(store: Store, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client bound to the gateway app over the given store (in process, no network)."""
    app = create_app(settings, store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http
