"""Postback bodies in the contract's shape (section 4), built when the event is recorded.

The body is stored in the outbox with the event, so every retry sends the same bytes with the same
``event-id``; only the signature's timestamp changes between attempts.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from mmsgate.common.cache import AccountSettings
from mmsgate.core.codes import EventCode
from mmsgate.core.ids import new_id
from mmsgate.core.model import Message, Outgoing, Template, iso, utcnow

SENT_AS_CODES = frozenset(
    {
        EventCode.SENT,
        EventCode.DELIVERED,
        EventCode.EXPIRED,
        EventCode.REJECTED,
        EventCode.FAILED,
        EventCode.SMS_DELIVERED,
        EventCode.SMS_FAILED,
    }
)
"""Codes about delivery, which say how the message went out (``sent-as``)."""

_encoder = msgspec.json.Encoder()


def _event_id() -> str:
    return f"evt_{new_id().replace('-', '')}"


class PostbackBuilder:
    """Makes outbox entries for events, knowing where each account's (or campaign's) postbacks go."""

    def __init__(self, settings: AccountSettings) -> None:
        self.settings = settings

    async def target(self, account_id: str, service_id: str | None) -> str | None:
        return await self.settings.postback_target(account_id, service_id)

    async def for_message(
        self,
        message: Message,
        code: EventCode,
        details: str,
        *,
        sent_as: str = "MMS",
        extra: Mapping[str, str] | None = None,
    ) -> Outgoing | None:
        url = await self.target(message.account_id, message.service_id)
        if url is None:
            return None
        body: dict[str, object] = {"origin": "MMS_MT", "code": code.value}
        if code in SENT_AS_CODES:
            body["sent-as"] = sent_as
        body["status"] = code.status
        body["status-details"] = details
        body["tracking-id"] = message.tracking_id
        if message.sending.client_reference is not None:
            body["client-reference"] = message.sending.client_reference
        if message.mms_id is not None:
            body["mms-id"] = message.mms_id
        body["to"] = message.to
        body["from"] = message.sender
        if extra:
            body.update(extra)
        return self._outgoing(message.account_id, message.tracking_id, code, url, body)

    async def for_template(self, template: Template, code: EventCode, details: str) -> Outgoing | None:
        url = await self.target(template.account_id, None)
        if url is None:
            return None
        body: dict[str, object] = {
            "origin": "MMS_MT",
            "code": code.value,
            "status": code.status,
            "status-details": details,
            "tracking-id": template.tracking_id,
            "mms-id": template.mms_id,
        }
        if template.sending.client_reference is not None:
            body["client-reference"] = template.sending.client_reference
        return self._outgoing(template.account_id, template.mms_id, code, url, body)

    async def for_inbound(self, account_id: str, subject_id: str, fields: Mapping[str, object]) -> Outgoing | None:
        url = await self.target(account_id, None)
        if url is None:
            return None
        body: dict[str, object] = {"origin": "MMS_MO", "code": EventCode.INBOUND.value, **fields}
        return self._outgoing(account_id, subject_id, EventCode.INBOUND, url, body)

    def _outgoing(
        self, account_id: str, subject_id: str, code: EventCode, url: str, body: dict[str, object]
    ) -> Outgoing:
        event_id = _event_id()
        body.setdefault("timestamp", iso(utcnow()))
        body["event-id"] = event_id
        return Outgoing(
            event_id=event_id,
            account_id=account_id,
            subject_id=subject_id,
            code=code.value,
            url=url,
            body=_encoder.encode(body).decode(),
        )
