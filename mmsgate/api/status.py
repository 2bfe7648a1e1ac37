"""``GET /v1/messages/{tracking-id}`` and ``GET /v1/templates/{mms-id}``: state, slides and history (and,
while a message's work is retried, the failed attempt it is retried after).

Authenticated by ``x-api-key`` and scoped to its account: another account's message is "not found".
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mmsgate.api.auth import Authenticator
from mmsgate.common.http import api_key_of, failure, json_response
from mmsgate.core.codes import ACCEPTED_DETAILS, TEMPLATE_ACCEPTED_DETAILS, ErrorCode, MessageState
from mmsgate.core.lifecycle import is_final
from mmsgate.core.model import AccountConfig, Event, Message, Sending, iso, slides_to_wire
from mmsgate.core.retry import RETRYING, FailedAttempt
from mmsgate.core.roles import Messages
from mmsgate.errors import ApiError, NotFound

_AUTH_STATUS = {
    ErrorCode.INVALID_API_KEY: 401,
    ErrorCode.ACCESS_BLOCKED: 403,
    ErrorCode.THROUGHPUT_EXCEEDED: 429,
}


def _events(events: list[Event]) -> list[dict[str, Any]]:
    return [
        {"code": e.code, "status": e.status, "status-details": e.details, "timestamp": iso(e.created_at)}
        for e in events
    ]


async def _pending(messages: Messages, m: Message) -> dict[str, Any] | None:
    """A report kept until the record of the submit it reports on exists (see docs/delivery.md)."""
    kept = None if is_final(m.state) else await messages.pending_report(m.tracking_id)
    if kept is None:
        return None
    return {
        "kind": kept.kind.value,
        "carrier": kept.carrier,
        "status": kept.status,
        "status-details": kept.details,
        "received": iso(kept.received_at),
        "kept-until": iso(kept.expires_at),
    }


def _retry(state: MessageState, events: list[Event]) -> dict[str, Any] | None:
    """The failed attempt the message's work is being retried after: its last event, while it is not final."""
    if is_final(state) or not events or events[-1].status != RETRYING:
        return None
    failed = FailedAttempt.parse(events[-1].details)
    if failed is None:
        return None
    return {
        "attempt": failed.attempt,
        "max-attempts": failed.max_attempts,
        "status-details": failed.reason,
        "next-try-at": iso(failed.next_try_at),
    }


def _sending(s: Sending) -> dict[str, Any]:
    return {
        "message-subject": s.subject,
        "fallback-sms-text": s.fallback_sms_text,
        "disable-fallback-sms": s.disable_fallback_sms,
        "disable-fallback-sms-link": s.disable_fallback_sms_link,
        "fallback-sms-link-expiration": iso(s.fallback_link_expires_at) if s.fallback_link_expires_at else None,
        "client-reference": s.client_reference,
        "slide": slides_to_wire(s.slides),
    }


class StatusView:
    """Read-only views of a caller's own messages and templates."""

    def __init__(self, messages: Messages, auth: Authenticator) -> None:
        self.messages = messages
        self.auth = auth

    async def _caller(self, request: Request) -> AccountConfig | Response:
        try:
            return await self.auth.account_for(api_key_of(request.headers.raw))
        except ApiError as exc:
            return failure(exc.code, exc.info, _AUTH_STATUS.get(exc.code, 400))

    async def message(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        tracking_id = request.path_params["tracking_id"]
        try:
            m = await self.messages.get_message(caller.account.id, tracking_id)
        except NotFound:
            return failure(ErrorCode.INVALID_REQUEST, f"no message with tracking-id {tracking_id}", 404)
        events = [
            Event(None, "Accepted", ACCEPTED_DETAILS, m.created_at),
            *await self.messages.list_events(m.tracking_id),
        ]
        return json_response(
            {
                "tracking-id": m.tracking_id,
                "state": m.state.value,
                "mms-id": m.mms_id,
                "service-id": m.service_id,
                "to": m.to,
                "from": m.sender,
                "from-mask": m.from_mask,
                "mms-expiry-timestamp": iso(m.expires_at),
                "cache-content": m.cache_content,
                **_sending(m.sending),
                "created": iso(m.created_at),
                "events": _events(events),
                "retry": _retry(m.state, events),
                "carrier": ({"name": m.carrier, "message-id": m.carrier_message_id} if m.carrier_message_id else None),
                "pending-report": await _pending(self.messages, m),
                "postbacks": [
                    {"event-id": event_id, "code": code, "state": state, "attempts": attempts}
                    for event_id, code, state, attempts in await self.messages.list_postbacks(m.tracking_id)
                ],
            }
        )

    async def template(self, request: Request) -> Response:
        caller = await self._caller(request)
        if isinstance(caller, Response):
            return caller
        mms_id = request.path_params["mms_id"]
        try:
            t = await self.messages.get_template(caller.account.id, mms_id)
        except NotFound:
            return failure(ErrorCode.MMS_ID_UNKNOWN, f"no template with mms-id {mms_id}", 404)
        events = [
            Event(None, "Processing", TEMPLATE_ACCEPTED_DETAILS, t.created_at),
            *await self.messages.list_events(t.mms_id),
        ]
        return json_response(
            {
                "mms-id": t.mms_id,
                "tracking-id": t.tracking_id,
                "name": t.name,
                "state": t.state.value,
                **_sending(t.sending),
                "created": iso(t.created_at),
                "events": _events(events),
            }
        )
