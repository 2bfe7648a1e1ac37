"""The console's test send: a form that builds a ``sendmms`` request and posts it through the API endpoint
as the chosen account, and the files uploaded with it.

An uploaded file is kept for an hour under a random URL (``/console/uploads/{token}``, 192-bit tokens,
the store keeping only their hash) that the request's slide points at: the media stage fetches it like any
other URL, so it needs no session.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import msgspec
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from mmsgate.api.endpoint import Endpoint
from mmsgate.core.model import Account, Campaign, MediaKind, utcnow
from mmsgate.core.records import UPLOADS_PATH, ConsoleUpload, upload_token_hash
from mmsgate.core.roles import ConsoleState
from mmsgate.web.console import pages
from mmsgate.web.console.auth import Session
from mmsgate.web.console.kit import COMMON_HEADERS, FILE_POLICY, Kit, plain, redirect

UPLOAD_LIFETIME = timedelta(hours=1)
SLIDES_IN_FORM = 3


class SendPages:
    """The test-send form and the uploads it makes, over the API endpoint and the gateway's public URL."""

    def __init__(
        self, kit: Kit, console: ConsoleState, endpoint: Endpoint, public_url: Callable[[], Awaitable[str]]
    ) -> None:
        self.kit = kit
        self.console = console
        self.endpoint = endpoint
        self.public_url = public_url

    async def _send_form(
        self, session: Session, *, values: dict[str, str], error: str = "", status: int = 200
    ) -> Response:
        accounts = await self.kit.accounts.list_accounts()
        campaigns: list[tuple[Account, Campaign]] = []
        for account in accounts:
            campaigns.extend((account, c) for c in await self.kit.numbers.list_campaigns(account.id))
        return self.kit.render(
            "send.html",
            status,
            section="send",
            session=session,
            accounts=accounts,
            campaigns=campaigns,
            numbers=await self.kit.account_numbers(),
            kinds=[k.value for k in MediaKind],
            slide_count=SLIDES_IN_FORM,
            values=values,
            error=error,
        )

    async def send(self, request: Request, session: Session) -> Response:
        if request.method == "GET":
            values = {
                "to": request.query_params.get("to", "15550100001"),
                "message-subject": "Hello from mmsgate",
                "fallback-sms-text": "You have a picture message",
                "slide1-text": "It works!",
            }
            return await self._send_form(session, values=values)
        form = await request.form()
        values = {k: v for k, v in form.multi_items() if isinstance(v, str) and k != "csrf"}
        account_id = values.get("account", "")
        body: dict[str, Any] = {
            "action": "sendmms",
            "service-id": values.get("service-id", ""),
            "to": values.get("to", "").strip(),
            "from": values.get("from", ""),
        }
        for field in ("message-subject", "fallback-sms-text", "client-reference"):
            if values.get(field, "").strip():
                body[field] = values[field]
        slides: list[dict[str, Any]] = []
        base = (await self.public_url()).rstrip("/")
        for n in range(1, SLIDES_IN_FORM + 1):
            slide: dict[str, Any] = {}
            text = values.get(f"slide{n}-text", "")
            if text.strip():
                slide["message-text"] = text
            upload = form.get(f"slide{n}-file")
            url = values.get(f"slide{n}-url", "").strip()
            kind_name = values.get(f"slide{n}-kind", MediaKind.IMAGE.value)
            if isinstance(upload, UploadFile) and upload.filename:
                data = await upload.read()
                content_type = upload.content_type or "application/octet-stream"
                kind = pages.kind_of_file(content_type, upload.filename)
                if kind is None:
                    return await self._send_form(
                        session,
                        values=values,
                        error=f"slide {n}: {upload.filename} ({content_type}) is not a picture, sound, video, "
                        "contact card, calendar event or PDF",
                        status=400,
                    )
                if data:
                    url = base + UPLOADS_PATH + await self._keep_upload(data, content_type, upload.filename)
                    kind_name = kind.value
            if url:
                slide[kind_name if kind_name in {k.value for k in MediaKind} else MediaKind.IMAGE.value] = {"url": url}
            if slide:
                slides.append(slide)
        body["slide"] = slides
        _, answer = await self.endpoint.answer_as(account_id, msgspec.json.encode(body))
        result = msgspec.json.decode(answer) if answer else {}
        if isinstance(result, dict) and result.get("status") == "success":
            return redirect(f"/console/messages/{quote(str(result['tracking-id']), safe='')}")
        detail = (
            f"{result.get('error-code', '')}: {result.get('error-info', '')}"
            if isinstance(result, dict)
            else "the API gave no answer"
        )
        return await self._send_form(session, values=values, error=detail, status=422)

    async def _keep_upload(self, data: bytes, content_type: str, name: str) -> str:
        """Keep an uploaded file for the media stage; the token of its URL."""
        token = secrets.token_urlsafe(24)
        digest = await asyncio.to_thread(self.kit.blobs.put, data)
        now = utcnow()
        await self.console.add_console_upload(
            ConsoleUpload(
                token_hash=upload_token_hash(token),
                sha256=digest,
                content_type=content_type,
                name=name[:200],
                size=len(data),
                created_at=now,
                expires_at=now + UPLOAD_LIFETIME,
            )
        )
        return token

    async def upload(self, request: Request) -> Response:
        """An uploaded file, by its token (no session: the media stage fetches it)."""
        token = request.path_params["token"]
        found = await self.console.console_upload(upload_token_hash(token)) if len(token) <= 64 else None
        if found is None:
            return plain("no such upload\n", 404)
        if utcnow() >= found.expires_at:
            return plain("this upload has expired\n", 410)
        path = self.kit.blobs.path(found.sha256)
        try:
            stat = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return plain("no such upload\n", 404)
        return FileResponse(
            path,
            media_type=found.content_type,
            filename=found.name,
            content_disposition_type="attachment",
            stat_result=stat,
            headers={**COMMON_HEADERS, "Content-Security-Policy": FILE_POLICY},
        )
