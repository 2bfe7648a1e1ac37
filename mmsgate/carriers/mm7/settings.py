"""An MM7 connection's settings (``mmsgate mm7 add``): checked once, when they are built; stored as JSON
(the inbound password only as a hash); given as they are to the carrier a worker starts and to the VASP
endpoint that authenticates the MMSC."""

from __future__ import annotations

from typing import ClassVar

from mmsgate.carriers.mm7.status import DEFAULT_VERSION, VERSIONS
from mmsgate.carriers.plugin import ConnectionSettings
from mmsgate.errors import ConfigError

MM7 = "mm7"


class Mm7Connection(ConnectionSettings, frozen=True, kw_only=True):
    """One carrier MMSC: where to submit (``url``, as ``vasp_id``/``vas_id``, with optional HTTP Basic
    credentials) and the credentials it must give when it posts to ``POST /mm7/NAME``."""

    SECRETS: ClassVar[frozenset[str]] = frozenset({"password", "inbound_password_hash"})

    url: str
    vasp_id: str
    vas_id: str
    username: str | None = None
    password: str | None = None
    version: str = DEFAULT_VERSION
    max_size: int = 0
    """Largest MMS in bytes; 0: the carrier profile's."""
    inbound_username: str | None = None
    inbound_password_hash: str | None = None
    soap_action: str = ""
    timeout: float = 30.0
    """Seconds the MMSC has to answer a submit."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"the MMSC URL must be http:// or https://, not {self.url!r}")
        if self.version not in VERSIONS:
            raise ConfigError(f"unknown MM7 version {self.version!r}: one of {', '.join(VERSIONS)}")
        if not self.vasp_id or not self.vas_id:
            raise ConfigError("--vasp-id and --vas-id are required")
        if (self.username is None) != (self.password is None):
            raise ConfigError("give both --username and --password, or neither")
        if (self.inbound_username is None) != (self.inbound_password_hash is None):
            raise ConfigError("give both --inbound-username and --inbound-password, or neither")
        if self.tps < 0 or self.max_size < 0 or self.timeout <= 0:
            raise ConfigError("tps and max-size must be 0 (no limit) or more, and the timeout positive")
        super().__post_init__()


def describe(name: str, settings: Mm7Connection) -> str:
    """A connection as ``mmsgate mm7 list`` shows it."""
    return f"{name}  {settings.url}  {settings.version}  VASP {settings.vasp_id}/{settings.vas_id}"
