"""The console's message pages: the filtered, paged list, one message (its request, slides, timeline,
postbacks, SMS segments and a report pending until its submit is recorded), and the stored media of a
message or template."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from mmsgate.contract import normalise_number
from mmsgate.core.codes import ACCEPTED_DETAILS, MessageState
from mmsgate.core.lifecycle import is_final
from mmsgate.core.mms import extension_for
from mmsgate.core.model import Event
from mmsgate.core.records import MessageQuery
from mmsgate.core.roles import ConsoleState, Messages
from mmsgate.errors import NotFound
from mmsgate.web.console import pages
from mmsgate.web.console.auth import Session
from mmsgate.web.console.kit import Kit, plain

PAGE_SIZE = 50


class MessagePages:
    """The message list, one message and the media of messages and templates."""

    def __init__(self, kit: Kit, console: ConsoleState, messages: Messages) -> None:
        self.kit = kit
        self.console = console
        self.records = messages

    async def messages(self, request: Request, session: Session) -> Response:
        params = request.query_params
        state = params.get("state", "")
        number_text = params.get("number", "").strip()
        account = params.get("account", "").strip()
        since, until = params.get("since", ""), params.get("until", "")
        errors: list[str] = []
        if state and state not in {s.value for s in MessageState}:
            errors.append(f"{state!r} is not a message state")
            state = ""
        number = normalise_number(number_text) if number_text else None
        if number_text and number is None:
            errors.append(f"{number_text!r} is not a number")
        try:
            start, end = pages.day_range(since, until)
        except ValueError:
            errors.append("dates are YYYY-MM-DD")
            start = end = None
        before = pages.parse_cursor(params.get("before", "")) if params.get("before") else None
        query = MessageQuery(
            state=state or None, number=number, account_id=account or None, since=start, until=end, before=before
        )
        rows = await self.console.console_messages(query, PAGE_SIZE + 1)
        shown, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
        last = await self.console.console_last_events([m.tracking_id for m in shown])
        reasons = {m.tracking_id: pages.reason_of(m, last.get(m.tracking_id)) for m in shown}
        given = {"state": state, "number": number_text, "account": account, "since": since, "until": until}
        filters = {k: v for k, v in given.items() if v}
        next_url = None
        if more:
            next_url = "/console/messages?" + urlencode({**filters, "before": pages.cursor_of(shown[-1])})
        return self.kit.render(
            "messages.html",
            section="messages",
            session=session,
            messages=shown,
            reasons=reasons,
            filters=filters,
            states=[s.value for s in MessageState],
            accounts=await self.kit.accounts.list_accounts(),
            next_url=next_url,
            first_url="/console/messages" + (f"?{urlencode(filters)}" if filters else ""),
            paged=before is not None,
            errors=errors,
        )

    async def message(self, request: Request, session: Session) -> Response:
        tracking_id = request.path_params["tracking_id"]
        try:
            message = await self.records.find_message(tracking_id)
        except NotFound:
            return self.kit.render("missing.html", 404, session=session, what=f"No message {tracking_id}.")
        parts = await self.records.list_parts(tracking_id)
        events = [
            Event(None, "Accepted", ACCEPTED_DETAILS, message.created_at),
            *await self.records.list_events(tracking_id),
        ]
        try:
            account_name = (await self.kit.accounts.get_account(message.account_id)).name
        except NotFound:
            account_name = "(deleted)"
        return self.kit.render(
            "message.html",
            section="messages",
            session=session,
            m=message,
            account_name=account_name,
            request_json=pages.request_of(message),
            slides=pages.slide_views(tracking_id, message.sending.slides, parts),
            events=events,
            retrying=pages.retrying(message, events),
            postbacks=await self.console.console_postbacks(tracking_id),
            segments=await self.records.sms_segments(tracking_id),
            pending=None if is_final(message.state) else await self.records.pending_report(tracking_id),
        )

    async def media(self, request: Request, session: Session) -> Response:
        """A stored part of a message or template (``owner`` is its tracking id or mms id)."""
        owner, position = request.path_params["owner"], request.path_params["position"]
        part = next((p for p in await self.records.list_parts(owner) if p.position == position), None)
        if part is None:
            return plain("no such part\n", 404)
        name = f"part{part.position}.{extension_for(part.content_type)}"
        return await self.kit.file(part.sha256, part.content_type, name)
