"""MM7 (3GPP TS 23.140): the SOAP-over-HTTP interface between the gateway (a VASP) and a carrier's MMSC.

``settings`` is a connection's checked settings; ``connection`` the carrier that submits over it;
``endpoint`` the VASP endpoint (``POST /mm7/NAME``) that keeps what the MMSC posts, and ``requests`` the
job handler that hands it on; ``commands`` adds ``mmsgate mm7 add``. The pure codec builds and parses every
MM7 message the gateway sends or receives: ``status`` (versions, namespaces, status codes and what they
mean), ``records`` (the values built from and parsed into), ``mime`` (the multipart/related around the
SOAP), ``build`` (what the gateway sends) and ``parse`` (what it reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmsgate.carriers.base import Carrier
from mmsgate.carriers.mm7.settings import MM7, Mm7Connection, describe
from mmsgate.carriers.plugin import CommandKit, EdgePorts, Plugin, Ports, Sink
from mmsgate.carriers.throttle import SendLimiter
from mmsgate.core.codes import JobKind
from mmsgate.core.model import JobHandler


def _mms(name: str, settings: Mm7Connection, ports: Ports) -> Carrier:
    from mmsgate.carriers.mm7.connection import Mm7Carrier

    limiter = SendLimiter(ports.windows, f"mm7:{name}", settings.tps).acquire if settings.tps > 0 else None
    return Mm7Carrier(name, settings, ports.blobs, limiter=limiter)


def _handlers(ports: Ports, sink: Sink) -> Mapping[JobKind, JobHandler]:
    from mmsgate.carriers.mm7.requests import KeptRequests

    return {JobKind.MM7_INBOUND: KeptRequests(sink)}


def _routes(ports: EdgePorts) -> Sequence[Any]:
    from starlette.routing import Route

    from mmsgate.carriers.mm7.endpoint import VaspEndpoint

    vasp = VaspEndpoint(ports.connections, ports.inbound, max_bytes=2 * ports.settings.inbound_max_bytes + 65536)
    return [Route("/mm7/{name}", vasp.handle, methods=["POST"])]


def _commands(kit: CommandKit) -> Sequence[Any]:
    from mmsgate.carriers.mm7.commands import commands

    return commands(kit)


PLUGIN = Plugin(
    kind=MM7,
    summary="MM7 connections to carrier MMSCs: add, list, remove.",
    settings=Mm7Connection,
    mms=_mms,
    describe=describe,
    handlers=_handlers,
    routes=_routes,
    commands=_commands,
)
