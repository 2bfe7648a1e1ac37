"""Caches of what the store says, for the many readers of a busy process.

:class:`RefreshingCache` keeps each answer for ``ttl`` seconds and refreshes an expired one with one load
at a time per key. :class:`AccountSettings` is the one cache of account settings every part shares: the
API's account configurations, whether an account allows transcoding, and where its postbacks go when an
event is recorded (which decides whether a postback is queued at all). Admin commands change them from
other processes; a change is seen within ``ttl`` (1 s by default). The postback sender does not read
them here: each attempt's URL and secret come with its claim, fresh from the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from mmsgate.core.model import Account, AccountConfig
from mmsgate.core.roles import Accounts
from mmsgate.errors import NotFound

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 100_000


class RefreshingCache(Generic[K, V]):
    """A TTL cache whose expired entries are refreshed by one loader call at a time (per key). With
    ``stale`` the previous answer is served while one caller refreshes it (a busy process then sends one
    query per key and period, not one per request in flight); without, every caller waits for the fresh
    answer once an entry has expired."""

    def __init__(self, ttl: float, *, stale: bool = True) -> None:
        self.ttl = ttl
        self.stale = stale
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}
        self._generation = 0
        """Counts :meth:`clear` calls: a load begun before one is not kept."""

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        if self.ttl <= 0:
            return await load()
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and entry[0] > now:
            return entry[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load))
            pending.add_done_callback(_retrieve)  # a refresh nobody waited for must not warn
            self._loading[key] = pending
        if self.stale and entry is not None and not pending.done():
            return entry[1]  # the previous answer, while one request refreshes it
        return await asyncio.shield(pending)

    def clear(self) -> None:
        """Forget every answer, and those being loaded now (they may predate the change that clears)."""
        self._generation += 1
        self._entries.clear()
        self._loading.clear()

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        generation = self._generation
        try:
            value = await load()
            if generation == self._generation:
                if len(self._entries) >= MAX_ENTRIES:  # guessed keys must not grow the cache without bound
                    self._entries.clear()
                self._entries[key] = (time.monotonic() + self.ttl, value)
            return value
        finally:
            if generation == self._generation:
                self._loading.pop(key, None)


def _retrieve(future: asyncio.Future[V]) -> None:
    if not future.cancelled():
        future.exception()


class AccountSettings:
    """Account settings, cached for ``ttl`` seconds per process and shared by every reader."""

    def __init__(self, accounts: Accounts, ttl: float = 1.0) -> None:
        self.accounts = accounts
        self._configs: RefreshingCache[str, AccountConfig] = RefreshingCache(ttl)
        self._accounts: RefreshingCache[str, Account | None] = RefreshingCache(ttl, stale=False)
        self._targets: RefreshingCache[tuple[str, str | None], str | None] = RefreshingCache(ttl, stale=False)

    async def config(self, account_id: str) -> AccountConfig:
        """What the API checks a request against (the previous answer while one request refreshes it)."""
        return await self._configs.get(account_id, lambda: self.accounts.account_config(account_id))

    async def _account(self, account_id: str) -> Account | None:
        return await self._accounts.get(account_id, lambda: self._find(account_id))

    async def _find(self, account_id: str) -> Account | None:
        try:
            return await self.accounts.get_account(account_id)
        except NotFound:
            return None

    async def transcoding(self, account_id: str) -> bool:
        """Whether the account lets the gateway adapt its content; :class:`NotFound` if it is gone."""
        account = await self._account(account_id)
        if account is None:
            raise NotFound(f"no account {account_id}")
        return account.transcoding

    async def postback_target(self, account_id: str, service_id: str | None) -> str | None:
        """Where an account's postbacks go: the campaign's URL, else the account's, else None."""
        return await self._targets.get(
            (account_id, service_id), lambda: self.accounts.postback_target(account_id, service_id)
        )
