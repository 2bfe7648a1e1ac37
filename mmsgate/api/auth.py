"""Who is calling: the API key, its account, and the account's configuration, cached briefly.

Admin commands change keys and accounts from other processes; the cache keeps each answer for
``auth_cache_seconds`` (1 s by default), so a revoked key or a disabled account stops working within
that time on every API process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mmsgate.core.codes import ErrorCode
from mmsgate.core.model import AccountConfig
from mmsgate.errors import ApiError
from mmsgate.store.base import Store


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class Authenticator:
    """Turns an ``x-api-key`` into the caller's account configuration, or an E104/E103/E113 error."""

    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._keys: dict[str, tuple[float, str | None, ApiError | None]] = {}
        self._configs: dict[str, tuple[float, AccountConfig]] = {}
        self._buckets: dict[str, _Bucket] = {}

    async def account_for(self, api_key: str | None) -> AccountConfig:
        if not api_key:
            raise ApiError(ErrorCode.INVALID_API_KEY, "the x-api-key header is missing")
        now = time.monotonic()
        cached = self._keys.get(api_key)
        if cached is None or cached[0] <= now:
            cached = await self._lookup(api_key, now)
        _, account_id, error = cached
        if error is not None:
            raise error
        assert account_id is not None
        config = await self.config(account_id, now)
        if config.account.disabled:
            raise ApiError(ErrorCode.ACCESS_BLOCKED, "API access is blocked: the account is disabled")
        if config.account.rate_limit > 0:
            self._take_token(config.account.id, config.account.rate_limit, now)
        return config

    async def config(self, account_id: str, now: float | None = None) -> AccountConfig:
        now = time.monotonic() if now is None else now
        cached = self._configs.get(account_id)
        if cached is None or cached[0] <= now:
            config = await self._store.account_config(account_id)
            cached = (now + self._ttl, config)
            if self._ttl > 0:
                self._configs[account_id] = cached
        return cached[1]

    async def _lookup(self, api_key: str, now: float) -> tuple[float, str | None, ApiError | None]:
        found = await self._store.authenticate(api_key)
        entry: tuple[float, str | None, ApiError | None]
        if found is None:
            entry = (now + self._ttl, None, ApiError(ErrorCode.INVALID_API_KEY, "the API key is not valid"))
        elif found[0].revoked:
            entry = (
                now + self._ttl,
                None,
                ApiError(ErrorCode.INVALID_API_KEY, "the API key has been revoked"),
            )
        else:
            entry = (now + self._ttl, found[1].id, None)
        if self._ttl > 0:
            if len(self._keys) > 100_000:  # keep guessed keys from growing the cache without bound
                self._keys.clear()
            self._keys[api_key] = entry
        return entry

    def _take_token(self, account_id: str, rate: int, now: float) -> None:
        bucket = self._buckets.get(account_id)
        if bucket is None:
            bucket = self._buckets[account_id] = _Bucket(tokens=float(rate), updated=now)
        bucket.tokens = min(float(rate), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            raise ApiError(
                ErrorCode.THROUGHPUT_EXCEEDED,
                f"throughput exceeded: this account may send {rate} requests per second",
            )
        bucket.tokens -= 1
