"""The sandbox carrier: virtual handsets, kept in the store, that behave as told (deliver, reject, stay
unreachable, take no MMS, throttle), take fallback SMS, and send MMS to an account's numbers. It is the
default carrier (``MMSGATE_CARRIER=sandbox``), so the whole flow runs on one machine.

``carrier`` submits and reports, ``sms`` takes fallback SMS, ``inbox`` shows what a handset holds, ``api``
serves ``/v1/sandbox/`` and ``commands`` the ``mmsgate sandbox`` commands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmsgate.carriers.base import Carrier, SmsConnector
from mmsgate.carriers.plugin import CommandKit, EdgePorts, Plugin, Ports, Sink
from mmsgate.core.codes import JobKind
from mmsgate.core.model import JobHandler

KIND = "sandbox"


def _default(ports: Ports) -> tuple[Carrier, SmsConnector]:
    from mmsgate.carriers.sandbox.carrier import SandboxCarrier
    from mmsgate.carriers.sandbox.sms import SandboxSmsConnector

    return SandboxCarrier(ports.sandbox), SandboxSmsConnector(ports.sandbox)


def _handlers(ports: Ports, sink: Sink) -> Mapping[JobKind, JobHandler]:
    from mmsgate.carriers.sandbox.carrier import SandboxReports

    return {JobKind.SANDBOX_REPORT: SandboxReports(ports.sandbox, sink)}


def _routes(ports: EdgePorts) -> Sequence[Any]:
    # the handsets are served where the sandbox is the gateway's carrier, unless turned off
    if not ports.settings.sandbox_api or ports.settings.carrier != KIND:
        return []
    from mmsgate.carriers.sandbox.api import SandboxApi

    return SandboxApi(ports).routes()


def _commands(kit: CommandKit) -> Sequence[Any]:
    from mmsgate.carriers.sandbox.commands import commands

    return commands(kit)


PLUGIN = Plugin(
    kind=KIND,
    summary="Virtual handsets of the sandbox carrier: behaviour, inbox, send.",
    default=_default,
    handlers=_handlers,
    routes=_routes,
    commands=_commands,
)
