"""The console's template pages: the saved MMS templates (of one account or all) and one template with
its slides, timeline and postbacks.

(Not ``templates.py``: that name is the directory of the console's Jinja2 templates.)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mmsgate.core.codes import TEMPLATE_ACCEPTED_DETAILS
from mmsgate.core.model import Event
from mmsgate.core.roles import ConsoleState, Messages
from mmsgate.errors import NotFound
from mmsgate.web.console import pages
from mmsgate.web.console.auth import Session
from mmsgate.web.console.kit import Kit


class TemplatePages:
    """The template list and one template."""

    def __init__(self, kit: Kit, console: ConsoleState, messages: Messages) -> None:
        self.kit = kit
        self.console = console
        self.messages = messages

    async def template_list(self, request: Request, session: Session) -> Response:
        account = request.query_params.get("account", "").strip()
        return self.kit.render(
            "templates.html",
            section="templates",
            session=session,
            templates=await self.console.console_templates(account or None),
            accounts=await self.kit.accounts.list_accounts(),
            account=account,
        )

    async def template(self, request: Request, session: Session) -> Response:
        mms_id = request.path_params["mms_id"]
        try:
            template = await self.messages.find_template(mms_id)
        except NotFound:
            return self.kit.render("missing.html", 404, session=session, what=f"No template {mms_id}.")
        parts = await self.messages.list_parts(mms_id)
        events = [
            Event(None, "Processing", TEMPLATE_ACCEPTED_DETAILS, template.created_at),
            *await self.messages.list_events(mms_id),
        ]
        return self.kit.render(
            "template.html",
            section="templates",
            session=session,
            t=template,
            slides=pages.slide_views(mms_id, template.sending.slides, parts),
            parts=parts,
            events=events,
            postbacks=await self.console.console_postbacks(mms_id),
        )
