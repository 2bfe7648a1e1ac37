"""The sandbox's SMS connector: fallback SMS land in the virtual handset's SMS inbox.

Every handset takes SMS (a handset that cannot take MMS is the reason for a fallback). Each SMS is one
inbox entry whatever its length, with one id, and its receipt (delivered) is handed to the core at once:
the core keeps a receipt that overtakes the submit's record until the record comes.
"""

from __future__ import annotations

import secrets

from mmsgate.carriers.base import Sms, SmsConnector, SmsSink, SmsSubmitResult
from mmsgate.core.model import utcnow
from mmsgate.core.records import SandboxSms, SmsReceipt, SmsStatus
from mmsgate.core.roles import SandboxState

NAME = "sandbox-sms"


class SandboxSmsConnector(SmsConnector):
    name = NAME
    reconciles = True

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.sink: SmsSink | None = None

    async def start(self, sink: SmsSink) -> None:
        self.sink = sink

    async def submit(self, sms: Sms) -> SmsSubmitResult:
        message_id = f"sbs{secrets.token_hex(8)}"
        await self.state.sandbox_sms_receive(
            SandboxSms(sms.to, sms.sender, sms.text, message_id, sms.tracking_id, utcnow())
        )
        if self.sink is not None:
            await self.sink.sms_receipt(SmsReceipt(NAME, message_id, SmsStatus.DELIVERED, "stat:DELIVRD err:000"))
        return SmsSubmitResult((message_id,))

    async def reconcile(self, sms: Sms) -> SmsSubmitResult | None:
        sent = await self.state.sandbox_sms_sent(sms.tracking_id)
        return SmsSubmitResult(tuple(sent)) if sent else None
