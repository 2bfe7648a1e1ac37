"""Who is calling: the API key, its account, and the account's configuration, cached briefly.

Admin commands change keys and accounts from other processes; the cache keeps each answer for
``auth_cache_seconds`` (1 s by default), so a revoked key or a disabled account stops working within
that time on every API process. A key revoked or removed through this process's own store is refused
from the next request on: the store tells the cache, which forgets every key. When an entry expires,
one lookup refreshes it while concurrent requests keep using the previous answer, so a busy process
sends one query per key per period, not one per request in flight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mmsgate.common.cache import AccountSettings, RefreshingCache
from mmsgate.core.codes import ErrorCode
from mmsgate.core.model import AccountConfig
from mmsgate.core.roles import Accounts
from mmsgate.errors import ApiError, NotFound


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


_KeyAnswer = tuple[str | None, ApiError | None]


class Authenticator:
    """Turns an ``x-api-key`` into the caller's account configuration, or an E104/E103/E113 error."""

    def __init__(self, accounts: Accounts, settings: AccountSettings, ttl: float) -> None:
        self._accounts = accounts
        self._settings = settings
        self._keys: RefreshingCache[str, _KeyAnswer] = RefreshingCache(ttl)
        accounts.watch_keys(self._keys.clear)
        self._buckets: dict[str, _Bucket] = {}

    async def account_for(self, api_key: str | None) -> AccountConfig:
        if not api_key:
            raise ApiError(ErrorCode.INVALID_API_KEY, "the x-api-key header is missing")
        account_id, error = await self._keys.get(api_key, lambda: self._lookup(api_key))
        if error is not None:
            raise error
        assert account_id is not None
        return self._admit(await self.config(account_id))

    async def account_as(self, account_id: str) -> AccountConfig:
        """The account's configuration for a call made as it without a key (in-process callers only: the
        console), with the same checks as a keyed call: disabled accounts and rate limits."""
        try:
            config = await self.config(account_id)
        except NotFound:
            raise ApiError(ErrorCode.INVALID_API_KEY, f"there is no account {account_id}") from None
        return self._admit(config)

    def _admit(self, config: AccountConfig) -> AccountConfig:
        if config.account.disabled:
            raise ApiError(ErrorCode.ACCESS_BLOCKED, "API access is blocked: the account is disabled")
        if config.account.rate_limit > 0:
            self._take_token(config.account.id, config.account.rate_limit, time.monotonic())
        return config

    async def config(self, account_id: str) -> AccountConfig:
        return await self._settings.config(account_id)

    async def _lookup(self, api_key: str) -> _KeyAnswer:
        found = await self._accounts.authenticate(api_key)
        if found is None:
            return None, ApiError(ErrorCode.INVALID_API_KEY, "the API key is not valid")
        if found[0].revoked:
            return None, ApiError(ErrorCode.INVALID_API_KEY, "the API key has been revoked")
        return found[1].id, None

    def _take_token(self, account_id: str, rate: int, now: float) -> None:
        bucket = self._buckets.get(account_id)
        if bucket is None:
            bucket = self._buckets[account_id] = _Bucket(tokens=float(rate), updated=now)
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            raise ApiError(
                ErrorCode.THROUGHPUT_EXCEEDED, f"throughput exceeded: this account may send {rate} requests per second"
            )
        bucket.tokens -= 1
