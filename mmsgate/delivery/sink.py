"""The delivery engine's sink: where carriers and SMS connectors hand what comes back to the gateway.

Delivery reports go to the engine (:class:`~mmsgate.delivery.engine.Delivery`), SMS receipts to the
fallback (:class:`~mmsgate.delivery.fallback.SmsFallback`), inbound MMS and SMS and the requests a carrier
posts to the inbound receiver (:class:`~mmsgate.delivery.inbound.InboundReceiver`), and notes on a message
(a read reply) become events. It is the :class:`mmsgate.carriers.plugin.Sink` every plug-in is given.
"""

from __future__ import annotations

import logging

from mmsgate.carriers.base import DeliveryReport, InboundFile, InboundMms, InboundSms, KeptRequest
from mmsgate.core.records import SmsReceipt
from mmsgate.core.roles import Lifecycle, Messages
from mmsgate.delivery.engine import Delivery
from mmsgate.delivery.fallback import SmsFallback
from mmsgate.delivery.inbound import InboundReceiver
from mmsgate.errors import InboundRefused, NotFound

log = logging.getLogger("mmsgate.delivery")


class EngineSink:
    """Takes what carriers receive and hands each kind to the part that records it."""

    def __init__(
        self,
        delivery: Delivery,
        fallback: SmsFallback,
        inbound: InboundReceiver,
        messages: Messages,
        lifecycle: Lifecycle,
    ) -> None:
        self.delivery = delivery
        self.fallback = fallback
        self.inbound = inbound
        self.messages = messages
        self.lifecycle = lifecycle

    async def report(self, report: DeliveryReport) -> bool:
        return await self.delivery.report(report)

    async def note(self, carrier: str, carrier_message_id: str, status: str, details: str) -> None:
        try:
            message = await self.messages.find_by_carrier_id(carrier, carrier_message_id)
        except NotFound:
            log.info("%s over %s for unknown message %s: %s", status.lower(), carrier, carrier_message_id, details)
            return
        await self.lifecycle.record_event(message.tracking_id, status, details)

    async def receive(self, message: InboundMms) -> str:
        return await self.inbound.receive(message)

    async def keep_request(self, connection: str, dedupe: str, kind: str, body: bytes, content_type: str) -> bool:
        return await self.inbound.keep_request(connection, dedupe, kind, body, content_type)

    async def kept_request(self, connection: str, dedupe: str) -> KeptRequest:
        return await self.inbound.kept_request(connection, dedupe)

    async def sms_receipt(self, receipt: SmsReceipt) -> None:
        await self.fallback.receipt(receipt)

    async def sms_inbound(self, message: InboundSms) -> None:
        """An SMS to one of an account's numbers: an N401 with the text as its one file. An SMS the
        gateway can never take (to no account's number) is logged and acknowledged, not refused: an
        SMSC would only send it again."""
        text = InboundFile("text/plain; charset=utf-8", message.text.encode(), "message.txt")
        try:
            await self.inbound.receive(
                InboundMms(
                    carrier=message.connector,
                    sender=message.sender,
                    recipients=(message.recipient,),
                    subject=None,
                    files=(text,),
                )
            )
        except InboundRefused as exc:
            log.warning("inbound SMS from %s over %s dropped: %s", message.sender, message.connector, exc)
