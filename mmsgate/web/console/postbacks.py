"""The console's postbacks page: per account, where its postbacks go, what waits in the outbox (since when,
how many are held behind a failing postback of their message, each failing one's last error and next try),
and two forms: change the postback URL, and send the failed and waiting postbacks now."""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from mmsgate.core.codes import EventCode
from mmsgate.core.roles import PostbackBacklog
from mmsgate.errors import NotFound
from mmsgate.web.console.auth import Session
from mmsgate.web.console.kit import Kit, read_form, redirect

MAX_URL = 2048
TEMPLATE_CODES = frozenset(
    code.value
    for code in (
        EventCode.TEMPLATE_READY,
        EventCode.TEMPLATE_AUDIO_FAILED,
        EventCode.TEMPLATE_VIDEO_FAILED,
        EventCode.TEMPLATE_IMAGE_FAILED,
    )
)


def subject_link(code: str, subject_id: str) -> str | None:
    """The console page of a postback's subject: a message's or a template's (an inbound MMS has none)."""
    if code == EventCode.INBOUND.value:
        return None
    section = "templates" if code in TEMPLATE_CODES else "messages"
    return f"/console/{section}/{quote(subject_id, safe='')}"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a postback URL (None when it can; empty clears it)."""
    if not url:
        return None
    if len(url) > MAX_URL:
        return f"the URL is longer than {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL with a host"
    return None


class PostbackPages:
    """The postbacks page and its two forms."""

    def __init__(self, kit: Kit, backlog: PostbackBacklog) -> None:
        self.kit = kit
        self.backlog = backlog

    async def postbacks(self, request: Request, session: Session, *, error: str = "", status: int = 200) -> Response:
        params = request.query_params
        accounts = await self.kit.accounts.list_accounts()
        rows = [(account, await self.backlog.postback_backlog(account.id)) for account in accounts]
        return self.kit.render(
            "postbacks.html",
            status,
            section="postbacks",
            session=session,
            rows=rows,
            link=subject_link,
            error=error,
            retried=params.get("retried", ""),
            failed=params.get("failed", ""),
            waiting=params.get("waiting", ""),
            changed=params.get("changed", ""),
        )

    async def retry(self, request: Request, session: Session) -> Response:
        """Make the account's failed and waiting postbacks due now (the form's CSRF token is checked)."""
        account_id = request.path_params["account_id"]
        try:
            await self.kit.accounts.get_account(account_id)
        except NotFound:
            return await self.postbacks(request, session, error=f"No account {account_id}.", status=404)
        failed, waiting = await self.backlog.retry_postbacks(account_id)
        query = urlencode({"retried": account_id, "failed": failed, "waiting": waiting})
        return redirect(f"/console/postbacks?{query}")

    async def set_url(self, request: Request, session: Session) -> Response:
        """Change where the account's postbacks go: the next attempt of every waiting one goes there."""
        account_id = request.path_params["account_id"]
        form = await read_form(request)
        url = form.get("url") if not isinstance(form, Response) else None
        text = url.strip() if isinstance(url, str) else ""
        problem = url_problem(text)
        if problem is not None:
            return await self.postbacks(request, session, error=problem, status=400)
        try:
            await self.kit.accounts.update_account(account_id, postback_url=text)
        except NotFound:
            return await self.postbacks(request, session, error=f"No account {account_id}.", status=404)
        return redirect(f"/console/postbacks?{urlencode({'changed': account_id})}")
