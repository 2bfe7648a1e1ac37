"""What every console page shares: its security headers, the page renderer, form reading and file serving.

Pages are rendered by Jinja2 (autoescaped) and sent with a strict Content-Security-Policy: nothing but
the gateway's own style sheet, script, pictures and media, no inline code, forms posting only here.
Files the console serves (stored media, a phone's inbox, uploads) get a sandboxing policy of their own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from mmsgate.core.roles import Accounts, Blobs, Numbers
from mmsgate.web.console import pages
from mmsgate.web.console.auth import Session

PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
FILE_POLICY = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_FORM_BYTES = 64 * 1024 * 1024
"""The largest form (with its files) the console takes."""

Handler = Callable[[Request, Session], Awaitable[Response]]
"""A handler of a route that needs a session (given it once checked)."""


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the console's templates, with the filters they use."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mmsgate.web.console", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = pages.when
    env.filters["size"] = pages.human_size
    env.filters["state_class"] = pages.state_class
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


def redirect(url: str) -> RedirectResponse:
    """A 303 to ``url`` (after a form's POST, the browser GETs the page it is sent to)."""
    return RedirectResponse(url, status_code=303, headers=dict(COMMON_HEADERS))


def plain(text: str, status: int) -> Response:
    """A short plain-text answer, for errors where there is no page to show."""
    return Response(text, status_code=status, media_type="text/plain", headers=dict(COMMON_HEADERS))


async def read_form(request: Request) -> FormData | Response:
    """The posted form, or the answer refusing it (no declared length, or larger than the console takes)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return plain("a form needs a Content-Length\n", 411)
    if int(declared) > MAX_FORM_BYTES:
        return plain(f"the form is larger than {MAX_FORM_BYTES} bytes\n", 413)
    return await request.form(max_files=20, max_fields=100)


class Kit:
    """The blobs, templates and account lists the page modules share, with the helpers they answer through."""

    def __init__(self, blobs: Blobs, accounts: Accounts, numbers: Numbers) -> None:
        self.blobs = blobs
        self.accounts = accounts
        self.numbers = numbers
        self.templates = environment()

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """The page of template ``name``: every page's template may use ``session`` and ``section``."""
        context.setdefault("session", None)
        context.setdefault("section", "")
        html = self.templates.get_template(name).render(**context)
        return HTMLResponse(
            html, status_code=status, headers={**COMMON_HEADERS, "Content-Security-Policy": PAGE_POLICY}
        )

    async def file(self, sha256: str, content_type: str, name: str) -> Response:
        """A stored file: pictures, sound and video inline, anything else as a download."""
        path = self.blobs.path(sha256)
        try:
            stat = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return plain("the file is no longer here\n", 404)
        inline = content_type.split(";", 1)[0].strip().lower() in pages.INLINE_TYPES or content_type.lower().startswith(
            ("audio/", "video/")
        )
        return FileResponse(
            path,
            media_type=content_type,
            filename=name,
            content_disposition_type="inline" if inline else "attachment",
            stat_result=stat,
            headers={**COMMON_HEADERS, "Cache-Control": "private, no-cache", "Content-Security-Policy": FILE_POLICY},
        )

    async def account_numbers(self) -> list[tuple[str, str, str]]:
        """Every account's numbers: (number, account id, account name)."""
        out: list[tuple[str, str, str]] = []
        for account in await self.accounts.list_accounts():
            out.extend((n.number, account.id, account.name) for n in await self.numbers.list_numbers(account.id))
        return out
