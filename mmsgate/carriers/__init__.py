"""Carriers, chosen by name from the settings through :data:`CARRIERS` (adding a protocol adds a line)."""

from __future__ import annotations

from collections.abc import Callable

from mmsgate.carriers.base import Carrier
from mmsgate.config import Settings
from mmsgate.errors import ConfigError
from mmsgate.store.base import Store


def _sandbox(settings: Settings, store: Store) -> Carrier:
    from mmsgate.carriers.sandbox import SandboxCarrier

    return SandboxCarrier(store)


CARRIERS: dict[str, Callable[[Settings, Store], Carrier]] = {
    "sandbox": _sandbox,
}


def create_carrier(settings: Settings, store: Store) -> Carrier:
    factory = CARRIERS.get(settings.carrier)
    if factory is None:
        raise ConfigError(f"unknown carrier {settings.carrier!r}: one of {', '.join(sorted(CARRIERS))}")
    return factory(settings, store)


__all__ = ["CARRIERS", "Carrier", "create_carrier"]
