"""SMPP 3.4: fallback SMS to an SMSC, and the receipts and inbound SMS that come back.

``settings`` is a connection's checked settings; ``encoding`` turns a text into GSM 7-bit or UCS-2 segments
and back; ``pdus`` holds the command statuses and TLV tags and reads the PDUs we receive; ``link`` is one
bound TCP connection; ``connector`` is the :class:`~mmsgate.carriers.base.SmsConnector` that binds, submits
and supervises one or two links, and ``receiving`` answers what arrives on them (receipts, MO reassembled
from its segments); ``commands`` adds ``mmsgate smpp add``. aiosmpplib provides the classes that encode the
PDUs we send, and the SMPP enums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmsgate.carriers.base import SmsConnector
from mmsgate.carriers.plugin import CommandKit, Plugin, Ports
from mmsgate.carriers.smpp.settings import SMPP, SmppConnection, describe
from mmsgate.carriers.throttle import SendLimiter


def _sms(name: str, settings: SmppConnection, ports: Ports) -> SmsConnector:
    from mmsgate.carriers.smpp.connector import SmppConnector

    limiter = SendLimiter(ports.windows, f"smpp:{name}", settings.tps).acquire if settings.tps > 0 else None
    return SmppConnector(name, settings, limiter=limiter)


def _commands(kit: CommandKit) -> Sequence[Any]:
    from mmsgate.carriers.smpp.commands import commands

    return commands(kit)


PLUGIN = Plugin(
    kind=SMPP,
    summary="SMPP connections for fallback SMS: add, list, remove.",
    settings=SmppConnection,
    sms=_sms,
    describe=describe,
    commands=_commands,
)
