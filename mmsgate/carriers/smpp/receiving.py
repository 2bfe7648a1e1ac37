"""What the SMSC sends on a connector's links: each deliver_sm handed to the sink, then answered.

A delivery receipt (TLVs receipted_message_id and message_state first, else the receipt text) goes to
``sink.sms_receipt``; an MO, reassembled from its UDH or SAR segments, to ``sink.sms_inbound``. The answer
is ESME_ROK once the sink returned, ESME_RX_T_APPN when it raised (so the SMSC resends), ESME_RX_P_APPN
when the PDU cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmpplib import DeliverSmResp, SmppCommandStatus

from mmsgate.carriers.base import InboundSms, SmsSink
from mmsgate.carriers.smpp.encoding import decode_segment
from mmsgate.carriers.smpp.link import Link, Lost, NotSent
from mmsgate.carriers.smpp.pdus import (
    ROK,
    RX_P_APPN,
    RX_T_APPN,
    TLV_MESSAGE_PAYLOAD,
    DeliverSm,
    parse_deliver_sm,
    parse_receipt,
    segment_info,
)

log = logging.getLogger("mmsgate.smpp")

_PARTIAL_MAX_AGE = 600.0


@dataclass
class _Partial:
    """The segments of one concatenated MO received so far."""

    total: int
    started: float
    parts: dict[int, str] = field(default_factory=dict)


class Receiver:
    """The receiving side of one connector (``name``): its links call :meth:`on_deliver`; ``sink`` is set
    when the connector starts, before any link is bound. ``tasks`` are the deliveries in hand."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sink: SmsSink | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._partial: dict[tuple[str, str, int, int], _Partial] = {}

    def on_deliver(self, link: Link, sequence: int, body: bytes) -> None:
        task = asyncio.create_task(self._deliver(link, sequence, body), name=f"smpp-deliver-{sequence}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, link: Link, sequence: int, body: bytes) -> None:
        """Hand a deliver_sm to the sink, then answer it: ESME_ROK once the sink returned, ESME_RX_T_APPN
        when it raised (the SMSC resends), ESME_RX_P_APPN when it cannot be read."""
        status = ROK
        try:
            message = parse_deliver_sm(body)
        except ValueError as exc:
            log.error("SMPP %s: unreadable deliver_sm (%s): %s", self.name, exc, body[:200].hex())
            status = RX_P_APPN
        else:
            try:
                await self._received(message)
            except ValueError as exc:
                log.error("SMPP %s: cannot read deliver_sm from %s: %s", self.name, message.source, exc)
                status = RX_P_APPN
            except Exception:
                log.exception("SMPP %s: storing a deliver_sm failed; answering ESME_RX_T_APPN", self.name)
                status = RX_T_APPN
        response = DeliverSmResp(sequence_num=sequence, command_status=SmppCommandStatus(status))
        with contextlib.suppress(NotSent, Lost):
            await link.send(bytes(response.pdu()))

    async def _received(self, message: DeliverSm) -> None:
        assert self.sink is not None
        kind = message.esm_class & 0x3C
        if kind == 0x04:
            receipt = parse_receipt(message, self.name)
            if receipt is None:
                log.warning("SMPP %s: delivery receipt without a message id: %r", self.name, message.short_message)
                return
            await self.sink.sms_receipt(receipt)
        elif kind == 0x00:
            complete = self._reassemble(message)
            if complete is None:
                return
            text, restore = complete
            try:
                await self.sink.sms_inbound(InboundSms(self.name, message.source, message.destination, text))
            except BaseException:
                restore()  # keep the segments: the SMSC resends the last one
                raise
        else:
            log.debug("SMPP %s: ignoring deliver_sm of message type 0x%02X", self.name, kind)

    def _reassemble(self, message: DeliverSm) -> tuple[str, Callable[[], None]] | None:
        """The MO's full text once every segment is in, with how to put its segments back (should the sink
        fail); None while segments are missing."""
        short_message = message.short_message or message.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
        udh, text = decode_segment(short_message, message.data_coding, has_udh=bool(message.esm_class & 0x40))
        info = segment_info(message, udh)
        if info is None:
            return text, lambda: None
        reference, total, seq = info
        now = time.monotonic()
        for stale in [k for k, p in self._partial.items() if now - p.started > _PARTIAL_MAX_AGE]:
            log.warning("SMPP %s: dropping an incomplete MO from %s (segments missing)", self.name, stale[0])
            del self._partial[stale]
        key = (message.source, message.destination, reference, total)
        partial = self._partial.setdefault(key, _Partial(total, now))
        partial.parts[seq] = text
        if len(partial.parts) < total:
            return None
        del self._partial[key]
        return "".join(partial.parts[i] for i in range(1, total + 1)), lambda: self._restore(key, partial)

    def _restore(self, key: tuple[str, str, int, int], partial: _Partial) -> None:
        self._partial.setdefault(key, partial)
