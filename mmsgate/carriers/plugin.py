"""The one shape of a carrier plug-in.

Every protocol the gateway speaks with carriers (the built-in sandbox, MM7 to an MMSC, SMPP to an SMSC) is a
folder under ``mmsgate/carriers/`` whose package exports one :class:`Plugin` value, listed once in the
registry (:data:`mmsgate.carriers.PLUGINS`). The wiring (the worker runtime, the app, the ``mmsgate``
command) iterates the registry; nothing checks a carrier's name or type. A plug-in gives what it has:

- ``settings``: for a protocol whose connections are configured and stored (``mmsgate mm7 add``), its
  settings struct, validated once when it is built (:class:`ConnectionSettings`), stored as JSON and given
  back to the connector;
- ``mms`` or ``sms``: the connector of one stored connection, a :class:`~mmsgate.carriers.base.Carrier`
  (MMS) or an :class:`~mmsgate.carriers.base.SmsConnector` (fallback SMS), given only narrow ports
  (:class:`Ports`);
- ``default``: for a protocol that can be the gateway's default carrier (``MMSGATE_CARRIER``), its carrier
  and the SMS connector that goes with it;
- ``handlers``: job handlers of its own job kinds, given the ports and the delivery engine's sink;
- ``routes``: HTTP routes it serves (the MM7 VASP endpoint, the sandbox's handsets);
- ``commands``: ``mmsgate KIND ...`` commands beyond ``list`` and ``remove`` of its connections.
Everything heavy (an HTTP client, an XML parser, an SMPP library) is imported by these functions when they
run, never by the plug-in's package itself: an API process lists the registry without loading them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import msgspec

from mmsgate.carriers.base import Carrier, CarrierSink, InboundSink, SmsConnector, SmsSink
from mmsgate.config import Settings
from mmsgate.core.codes import JobKind
from mmsgate.core.model import AccountConfig, JobHandler
from mmsgate.core.roles import Blobs, Connections, SandboxState, SendWindows
from mmsgate.errors import ConfigError


class ConnectionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the settings of every stored connection have; a plug-in's settings struct extends it and checks
    its own fields in ``__post_init__`` (raising :class:`~mmsgate.errors.ConfigError`)."""

    SECRETS: ClassVar[frozenset[str]] = frozenset({"password"})
    """Fields never shown (``mmsgate KIND list``)."""

    tps: int = 0
    """Most submits per second over every process; 0: no limit."""
    route_prefixes: tuple[str, ...] = ()
    """Numbers starting with one of these go to this connection; none: every number."""

    def __post_init__(self) -> None:
        if self.tps < 0:
            raise ConfigError("tps must be 0 (no limit) or more")
        for prefix in self.route_prefixes:
            if not prefix.isdigit():
                raise ConfigError(f"route prefix {prefix!r} is not digits (numbers are stored without '+')")

    def stored(self) -> dict[str, object]:
        """The settings as the store keeps them (JSON)."""
        stored: dict[str, object] = msgspec.to_builtins(self)
        return stored


class Sink(CarrierSink, SmsSink, Protocol):
    """Everything a running connector hands back: reports, inbound MMS and SMS, receipts, kept requests."""


@dataclass(frozen=True, slots=True)
class Ports:
    """What a worker gives a plug-in's connectors and job handlers: narrow ports, never the store. What a
    connector receives comes back through the sink it is started with (``start(sink)``)."""

    windows: SendWindows
    """Throughput windows shared by every process (a connection's ``tps``)."""
    blobs: Blobs
    sandbox: SandboxState
    """The sandbox carrier's own state."""


@dataclass(frozen=True, slots=True)
class EdgePorts:
    """What the HTTP app and the command line give a plug-in's routes and commands."""

    settings: Settings
    inbound: InboundSink
    blobs: Blobs
    connections: Connections
    sandbox: SandboxState
    authenticate: Callable[[str | None], Awaitable[AccountConfig]]
    """The account of an API key (``x-api-key``); raises :class:`mmsgate.errors.ApiError` (E104, E105)."""


Shown = tuple[dict[str, Any], str]
"""What a command prints: a JSON object (with ``--json``), else a line of text."""


class CommandKit(Protocol):
    """What the ``mmsgate`` command gives a plug-in to build its commands with (click is theirs to use)."""

    def admin(self, fn: Callable[..., Awaitable[Shown]]) -> Callable[..., None]:
        """Make ``fn(ports: EdgePorts, **options)`` a command body: it gets ``--data-dir``, ``--database``
        and ``--json``, runs against the open store, and prints what ``fn`` returns (a JSON object, and the
        text shown without ``--json``)."""
        ...

    def number(self, value: str) -> str:
        """A phone number given on the command line, as digits; a usage error if it is not one."""
        ...

    async def add_connection(self, ports: EdgePorts, kind: str, name: str, settings: ConnectionSettings) -> Shown:
        """Store a connection (its settings are checked already) and say so, secrets left out."""
        ...


@dataclass(frozen=True, slots=True)
class Plugin:
    """One carrier protocol. See the module's docstring."""

    kind: str
    """The protocol's name: a connection's ``kind``, the ``mmsgate KIND`` command group."""
    summary: str
    """One line: what it is, for help texts."""
    settings: type[ConnectionSettings] | None = None
    mms: Callable[[str, Any, Ports], Carrier] | None = None
    """The MMS carrier of a stored connection, given its name, settings and the ports."""
    sms: Callable[[str, Any, Ports], SmsConnector] | None = None
    """The SMS connector of a stored connection, likewise."""
    describe: Callable[[str, Any], str] | None = None
    """One line describing a stored connection (``mmsgate KIND list``), given its name and settings."""
    default: Callable[[Ports], tuple[Carrier, SmsConnector | None]] | None = None
    handlers: Callable[[Ports, Sink], Mapping[JobKind, JobHandler]] | None = None
    """Handlers of its job kinds, which hand what they find to the sink."""
    routes: Callable[[EdgePorts], Sequence[Any]] | None = None
    """Starlette routes (typed loosely so that the registry does not import Starlette)."""
    commands: Callable[[CommandKit], Sequence[Any]] | None = None
    """Click commands added to ``mmsgate KIND``."""

    def load(self, config: Mapping[str, object]) -> ConnectionSettings:
        """A stored connection's settings, checked (:class:`~mmsgate.errors.ConfigError` when they cannot
        be used)."""
        if self.settings is None:
            raise ConfigError(f"{self.kind} has no stored connections")
        try:
            return msgspec.convert(config, self.settings)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{self.kind} connection settings: {exc}") from exc
