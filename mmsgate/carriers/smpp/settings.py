"""An SMPP connection's settings (``mmsgate smpp add``): checked once, when they are built, within SMPP
3.4's field limits; stored as JSON; given as they are to the connector a worker starts."""

from __future__ import annotations

from mmsgate.carriers.plugin import ConnectionSettings
from mmsgate.errors import ConfigError

SMPP = "smpp"
BINDS = ("transceiver", "pair")


class SmppConnection(ConnectionSettings, frozen=True, kw_only=True):
    """One SMSC. ``bind``: one transceiver bind, or a transmitter and a receiver ("pair")."""

    host: str
    port: int = 2775
    system_id: str
    password: str
    system_type: str = ""
    bind: str = "transceiver"
    window: int = 10
    """submit_sm PDUs outstanding at most (per connector)."""

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("the SMSC host is required")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is not a TCP port")
        if not self.system_id or len(self.system_id) > 15:
            raise ConfigError("system_id must be 1 to 15 characters (SMPP 3.4)")
        if len(self.password) > 8:
            raise ConfigError("the password must be at most 8 characters (SMPP 3.4)")
        if len(self.system_type) > 12:
            raise ConfigError("system_type must be at most 12 characters (SMPP 3.4)")
        if self.bind not in BINDS:
            raise ConfigError(f"bind must be one of {', '.join(BINDS)}")
        if self.window < 1:
            raise ConfigError("window must be at least 1")
        super().__post_init__()


def describe(name: str, settings: SmppConnection) -> str:
    """A connection as ``mmsgate smpp list`` shows it."""
    return f"{name}  {settings.host}:{settings.port}  {settings.system_id}  {settings.bind}"
