"""SMS connections as stored (``mmsgate smpp add``): their settings checked once on the way in, and the
connector each becomes in a worker."""

from __future__ import annotations

from typing import Any

from mmsgate.core.model import Connection
from mmsgate.delivery.throttle import SendLimiter
from mmsgate.errors import ConfigError
from mmsgate.sms.base import SmsConnector
from mmsgate.store.base import Store

SMPP = "smpp"
BINDS = ("transceiver", "pair")


def smpp_config(
    *,
    host: str,
    port: int,
    system_id: str,
    password: str,
    system_type: str = "",
    bind: str = "transceiver",
    tps: int = 0,
    window: int = 10,
    route_prefixes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An SMPP connection's settings, checked: SMPP 3.4's field limits, a known bind, digits as prefixes."""
    if not host:
        raise ConfigError("the SMSC host is required")
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port")
    if not system_id or len(system_id) > 15:
        raise ConfigError("system_id must be 1 to 15 characters (SMPP 3.4)")
    if len(password) > 8:
        raise ConfigError("the password must be at most 8 characters (SMPP 3.4)")
    if len(system_type) > 12:
        raise ConfigError("system_type must be at most 12 characters (SMPP 3.4)")
    if bind not in BINDS:
        raise ConfigError(f"bind must be one of {', '.join(BINDS)}")
    if tps < 0 or window < 1:
        raise ConfigError("tps must be 0 (no limit) or more, and window at least 1")
    for prefix in route_prefixes:
        if not prefix.isdigit():
            raise ConfigError(f"route prefix {prefix!r} is not digits (numbers are stored without '+')")
    return {
        "host": host,
        "port": port,
        "system_id": system_id,
        "password": password,
        "system_type": system_type,
        "bind": bind,
        "tps": tps,
        "window": window,
        "route_prefixes": list(route_prefixes),
    }


def create_connector(connection: Connection, store: Store) -> SmsConnector:
    """The connector of a stored connection (raises ConfigError for a kind or settings it cannot use)."""
    if connection.kind != SMPP:
        raise ConfigError(f"unknown SMS connection kind {connection.kind!r}")
    from mmsgate.carriers.smpp.connector import SmppConnector, SmppSettings

    config = connection.config
    tps = int(config.get("tps", 0))
    limiter = SendLimiter(store, f"smpp:{connection.name}", tps).acquire if tps > 0 else None
    settings = SmppSettings(
        name=connection.name,
        host=str(config["host"]),
        port=int(config["port"]),
        system_id=str(config["system_id"]),
        password=str(config["password"]),
        system_type=str(config.get("system_type", "")),
        bind=config.get("bind", "transceiver"),
        window=int(config.get("window", 10)),
    )
    return SmppConnector(settings, limiter=limiter)
