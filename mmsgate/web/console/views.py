"""The console's routes under ``/console``: login, messages, phones, send, templates, and their files.

Every page but the login needs a session: without one a page redirects to the login and a file that
carries data answers 401. Two routes need none: ``/console/static/`` (the style sheet and the few lines
of script, which carry no data) and ``/console/uploads/{token}`` (files uploaded for a test send, which
the media stage fetches: 192-bit tokens, an hour's life).

Pages are rendered by Jinja2 (autoescaped) and sent with a strict Content-Security-Policy: nothing but
the gateway's own style sheet, script, pictures and media, no inline code, forms posting only here.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import msgspec
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from mmsgate.api.contract import normalise_number
from mmsgate.api.endpoint import Endpoint
from mmsgate.carriers.base import InboundFile
from mmsgate.carriers.sandbox import HandsetMms, send_from_handset
from mmsgate.core.codes import ACCEPTED_DETAILS, TEMPLATE_ACCEPTED_DETAILS, MessageState
from mmsgate.core.compose import extension_for
from mmsgate.core.model import Account, Behaviour, Campaign, Event, Handset, MediaKind, utcnow
from mmsgate.delivery.inbound import InboundReceiver, InboundRefused
from mmsgate.errors import NotFound
from mmsgate.media.blobs import BlobStore
from mmsgate.media.uploads import UPLOADS_PATH, upload_token_hash
from mmsgate.store.base import ConsoleUpload, MessageQuery, Store
from mmsgate.web.console import pages
from mmsgate.web.console.auth import Session, Sessions, same
from mmsgate.web.sandbox import inbox_part

PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
FILE_POLICY = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"
_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
PAGE_SIZE = 50
MAX_FORM_BYTES = 64 * 1024 * 1024
"""The largest form (with its files) the console takes."""
UPLOAD_LIFETIME = timedelta(hours=1)
SLIDES_IN_FORM = 3
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}

Handler = Callable[[Request, Session], Awaitable[Response]]


def _environment() -> jinja2.Environment:
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


def _static(name: str) -> bytes:
    return (resources.files("mmsgate.web.console") / "static" / name).read_bytes()


class Console:
    """The console's handlers over the gateway's store, API endpoint and inbound receiver."""

    def __init__(
        self,
        store: Store,
        endpoint: Endpoint,
        inbound: InboundReceiver,
        blobs: BlobStore,
        public_url: Callable[[], Awaitable[str]],
    ) -> None:
        self.store = store
        self.endpoint = endpoint
        self.inbound = inbound
        self.blobs = blobs
        self.public_url = public_url
        self.sessions = Sessions(store)
        self.templates = _environment()
        self.static = {name: _static(name) for name in STATIC}

    def routes(self) -> Mount:
        """Everything under ``/console`` (a Mount: the console is pages for people, not part of the API
        that ``/openapi.json`` describes)."""
        page, data = self._page, self._data
        return Mount(
            "/console",
            routes=[
                Route("/", self.home, methods=["GET"]),
                Route("/login", self.login, methods=["GET", "POST"]),
                Route("/logout", page(self.logout), methods=["POST"]),
                Route("/static/{name}", self.asset, methods=["GET"]),
                Route("/uploads/{token}", self.upload, methods=["GET"]),
                Route("/messages", page(self.messages), methods=["GET"]),
                Route("/messages/{tracking_id}", page(self.message), methods=["GET"]),
                Route("/media/{owner}/{position:int}", data(self.media), methods=["GET"]),
                Route("/phones", page(self.phones), methods=["GET"]),
                Route("/phones/{number}", page(self.phone), methods=["GET"]),
                Route("/phones/{number}/settings", page(self.phone_settings), methods=["POST"]),
                Route("/phones/{number}/send", page(self.phone_send), methods=["POST"]),
                Route("/phones/{number}/inbox/{message}/{location}", data(self.inbox_file), methods=["GET"]),
                Route("/phones/{number}/sent/{inbound}/{position:int}", data(self.sent_file), methods=["GET"]),
                Route("/send", page(self.send), methods=["GET", "POST"]),
                Route("/templates", page(self.template_list), methods=["GET"]),
                Route("/templates/{mms_id}", page(self.template), methods=["GET"]),
            ],
        )

    # plumbing ---------------------------------------------------------------------------------
    def _render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("session", None)
        context.setdefault("section", "")
        html = self.templates.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers={**_COMMON, "Content-Security-Policy": PAGE_POLICY})

    @staticmethod
    def _redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers=dict(_COMMON))

    @staticmethod
    def _plain(text: str, status: int) -> Response:
        return Response(text, status_code=status, media_type="text/plain", headers=dict(_COMMON))

    async def _form(self, request: Request) -> FormData | Response:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            return self._plain("a form needs a Content-Length\n", 411)
        if int(declared) > MAX_FORM_BYTES:
            return self._plain(f"the form is larger than {MAX_FORM_BYTES} bytes\n", 413)
        return await request.form(max_files=20, max_fields=100)

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A page: without a session, a redirect to the login; a form posted without the session's
        CSRF token is refused."""

        async def endpoint(request: Request) -> Response:
            session = await self.sessions.current(request)
            if session is None:
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = wanted if request.method == "GET" else "/console/messages"
                return self._redirect("/console/login?" + urlencode({"next": target}))
            if request.method == "POST":
                form = await self._form(request)
                if isinstance(form, Response):
                    return form
                if not same(form.get("csrf"), session.csrf):
                    return self._plain("the form's CSRF token is missing or wrong: reload the page\n", 403)
            return await handler(request, session)

        return endpoint

    def _data(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A file that carries data: 401 without a session."""

        async def endpoint(request: Request) -> Response:
            session = await self.sessions.current(request)
            if session is None:
                return self._plain("log in to the console first\n", 401)
            return await handler(request, session)

        return endpoint

    async def _file(self, sha256: str, content_type: str, name: str) -> Response:
        path = self.blobs.path(sha256)
        try:
            stat = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return self._plain("the file is no longer here\n", 404)
        inline = content_type.split(";", 1)[0].strip().lower() in pages.INLINE_TYPES or content_type.lower().startswith(
            ("audio/", "video/")
        )
        return FileResponse(
            path,
            media_type=content_type,
            filename=name,
            content_disposition_type="inline" if inline else "attachment",
            stat_result=stat,
            headers={**_COMMON, "Cache-Control": "private, no-cache", "Content-Security-Policy": FILE_POLICY},
        )

    # login ------------------------------------------------------------------------------------
    async def home(self, request: Request) -> Response:
        return self._redirect("/console/messages")

    async def login(self, request: Request) -> Response:
        next_url = request.query_params.get("next", "")
        if (
            not next_url.startswith("/console/")
            or next_url.startswith("/console/login")
            or ".." in next_url
            or "\\" in next_url
        ):
            next_url = "/console/messages"
        token = Sessions.login_token(request)
        error = ""
        status = 200
        if request.method == "POST":
            form = await self._form(request)
            if isinstance(form, Response):
                return form
            client = request.client.host if request.client else "unknown"
            wait = self.sessions.throttle.wait(client)
            if wait > 0:
                response = self._render(
                    "login.html",
                    429,
                    token=token,
                    next=next_url,
                    error=f"Too many failed logins: try again in {wait:.0f} s.",
                )
                response.headers["Retry-After"] = str(max(1, round(wait)))
                return response
            if not same(form.get("token"), token) or request.cookies.get("mmsgate_console_login") != token:
                error, status = "The login form expired: please try again.", 400
            elif await self.sessions.password_matches(str(form.get("password") or "")):
                self.sessions.throttle.succeeded(client)
                redirect = self._redirect(next_url)
                await self.sessions.start(request, redirect)
                return redirect
            else:
                self.sessions.throttle.failed(client)
                error, status = "Wrong password.", 401
        response = self._render("login.html", status, token=token, next=next_url, error=error)
        Sessions.remember_login_token(request, response, token)
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        response = self._redirect("/console/login")
        await self.sessions.end(session, response)
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return self._plain("no such file\n", 404)
        return Response(
            self.static[name],
            media_type=STATIC[name],
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    # messages ---------------------------------------------------------------------------------
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
        rows = await self.store.console_messages(query, PAGE_SIZE + 1)
        shown, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
        given = {"state": state, "number": number_text, "account": account, "since": since, "until": until}
        filters = {k: v for k, v in given.items() if v}
        next_url = None
        if more:
            next_url = "/console/messages?" + urlencode({**filters, "before": pages.cursor_of(shown[-1])})
        return self._render(
            "messages.html",
            section="messages",
            session=session,
            messages=shown,
            filters=filters,
            states=[s.value for s in MessageState],
            accounts=await self.store.list_accounts(),
            next_url=next_url,
            first_url="/console/messages" + (f"?{urlencode(filters)}" if filters else ""),
            paged=before is not None,
            errors=errors,
        )

    async def message(self, request: Request, session: Session) -> Response:
        tracking_id = request.path_params["tracking_id"]
        try:
            message = await self.store.find_message(tracking_id)
        except NotFound:
            return self._render("missing.html", 404, session=session, what=f"No message {tracking_id}.")
        parts = await self.store.list_parts(tracking_id)
        events = [
            Event(None, "Accepted", ACCEPTED_DETAILS, message.created_at),
            *await self.store.list_events(tracking_id),
        ]
        try:
            account_name = (await self.store.get_account(message.account_id)).name
        except NotFound:
            account_name = "(deleted)"
        return self._render(
            "message.html",
            section="messages",
            session=session,
            m=message,
            account_name=account_name,
            request_json=pages.request_of(message),
            slides=pages.slide_views(tracking_id, message.sending.slides, parts),
            events=events,
            postbacks=await self.store.console_postbacks(tracking_id),
            segments=await self.store.sms_segments(tracking_id),
        )

    async def media(self, request: Request, session: Session) -> Response:
        owner, position = request.path_params["owner"], request.path_params["position"]
        part = next((p for p in await self.store.list_parts(owner) if p.position == position), None)
        if part is None:
            return self._plain("no such part\n", 404)
        name = f"part{part.position}.{extension_for(part.content_type)}"
        return await self._file(part.sha256, part.content_type, name)

    # templates --------------------------------------------------------------------------------
    async def template_list(self, request: Request, session: Session) -> Response:
        account = request.query_params.get("account", "").strip()
        return self._render(
            "templates.html",
            section="templates",
            session=session,
            templates=await self.store.console_templates(account or None),
            accounts=await self.store.list_accounts(),
            account=account,
        )

    async def template(self, request: Request, session: Session) -> Response:
        mms_id = request.path_params["mms_id"]
        try:
            template = await self.store.find_template(mms_id)
        except NotFound:
            return self._render("missing.html", 404, session=session, what=f"No template {mms_id}.")
        parts = await self.store.list_parts(mms_id)
        events = [
            Event(None, "Processing", TEMPLATE_ACCEPTED_DETAILS, template.created_at),
            *await self.store.list_events(mms_id),
        ]
        return self._render(
            "template.html",
            section="templates",
            session=session,
            t=template,
            slides=pages.slide_views(mms_id, template.sending.slides, parts),
            parts=parts,
            events=events,
            postbacks=await self.store.console_postbacks(mms_id),
        )

    # phones -----------------------------------------------------------------------------------
    async def phones(self, request: Request, session: Session) -> Response:
        wanted = request.query_params.get("number", "").strip()
        error = ""
        if wanted:
            number = normalise_number(wanted)
            if number is not None:
                return self._redirect(f"/console/phones/{number}")
            error = f"{wanted!r} is not a number: digits in international format, such as 15550100001."
        return self._render(
            "phones.html",
            400 if error else 200,
            section="phones",
            session=session,
            handsets=await self.store.console_handsets(),
            error=error,
            wanted=wanted,
        )

    async def _account_numbers(self) -> list[tuple[str, str, str]]:
        """Every account's numbers: (number, account id, account name)."""
        out: list[tuple[str, str, str]] = []
        for account in await self.store.list_accounts():
            out.extend((n.number, account.id, account.name) for n in await self.store.list_numbers(account.id))
        return out

    async def phone(self, request: Request, session: Session, *, error: str = "", status: int = 200) -> Response:
        number = normalise_number(request.path_params["number"])
        if number is None:
            return self._render("missing.html", 404, session=session, what="A phone number is digits only.")
        inbox = await self.store.sandbox_inbox(number, 50)
        sms = await self.store.sandbox_sms_inbox(number, 50)
        sent = await self.store.console_sent_by(number, 50)
        texts: dict[str, bytes] = {}
        for inbound in sent:
            for part in inbound.parts:
                if part.content_type.lower().startswith("text/plain") and part.size <= 64 * 1024:
                    try:
                        texts[part.sha256] = await asyncio.to_thread(self.blobs.get, part.sha256)
                    except FileNotFoundError:
                        continue
        bubbles = [
            *(pages.received_mms(number, *row) for row in inbox),
            *(pages.received_sms(s) for s in sms),
            *(pages.sent_mms(number, inbound, texts) for inbound in sent),
        ]
        bubbles.sort(key=lambda b: b.at)
        numbers = await self._account_numbers()
        reply_to = next((b.peer for b in reversed(bubbles) if b.direction == "in"), None)
        return self._render(
            "phone.html",
            status,
            section="phones",
            session=session,
            number=number,
            handset=await self.store.get_handset(number),
            behaviours=[b.value for b in Behaviour],
            bubbles=bubbles[-60:],
            numbers=numbers,
            reply_to=reply_to,
            sent=request.query_params.get("sent", ""),
            error=error,
        )

    async def phone_settings(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"])
        if number is None:
            return self._render("missing.html", 404, session=session, what="A phone number is digits only.")
        form = await request.form()
        try:
            behaviour = Behaviour(str(form.get("behaviour", "")))
            delay = float(str(form.get("delay") or 0))
        except ValueError:
            return await self.phone(request, session, error="Choose a behaviour and a delay in seconds.", status=400)
        if not 0 <= delay <= 86400:
            return await self.phone(request, session, error="The delay is 0 to 86400 seconds.", status=400)
        await self.store.set_handset(Handset(number, behaviour, delay))
        return self._redirect(f"/console/phones/{number}")

    async def phone_send(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"])
        if number is None:
            return self._render("missing.html", 404, session=session, what="A phone number is digits only.")
        form = await request.form()
        to = normalise_number(str(form.get("to", "")))
        if to is None:
            return await self.phone(request, session, error="Choose the number to send to.", status=400)
        files: list[InboundFile] = []
        for item in form.getlist("files"):
            if isinstance(item, UploadFile) and item.filename:
                data = await item.read()
                if data:
                    content_type = item.content_type or "application/octet-stream"
                    files.append(InboundFile(content_type, data, item.filename))
        subject = str(form.get("subject") or "").strip() or None
        text = str(form.get("text") or "") or None
        try:
            tracking_id = await send_from_handset(self.inbound, HandsetMms(number, to, subject, text, tuple(files)))
        except InboundRefused as exc:
            return await self.phone(request, session, error=str(exc), status=400)
        return self._redirect(f"/console/phones/{number}?" + urlencode({"sent": tracking_id}))

    async def inbox_file(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"]) or ""
        part = await inbox_part(self.store, number, request.path_params["message"], request.path_params["location"])
        if part is None:
            return self._plain("no such part in this phone's inbox\n", 404)
        if part.data is not None:
            return Response(
                part.data,
                media_type=part.content_type,
                headers={**_COMMON, "Content-Security-Policy": FILE_POLICY, "Content-Disposition": "attachment"},
            )
        return await self._file(part.sha256 or "", part.content_type, request.path_params["location"])

    async def sent_file(self, request: Request, session: Session) -> Response:
        number = normalise_number(request.path_params["number"]) or ""
        wanted, position = request.path_params["inbound"], request.path_params["position"]
        for inbound in await self.store.console_sent_by(number, 200):
            if inbound.id == wanted:
                part = next((p for p in inbound.parts if p.position == position), None)
                if part is not None:
                    return await self._file(part.sha256, part.content_type, part.name)
        return self._plain("no such file sent by this phone\n", 404)

    # send a test MMS --------------------------------------------------------------------------
    async def _send_form(
        self, session: Session, *, values: dict[str, str], error: str = "", status: int = 200
    ) -> Response:
        accounts = await self.store.list_accounts()
        campaigns: list[tuple[Account, Campaign]] = []
        for account in accounts:
            campaigns.extend((account, c) for c in await self.store.list_campaigns(account.id))
        return self._render(
            "send.html",
            status,
            section="send",
            session=session,
            accounts=accounts,
            campaigns=campaigns,
            numbers=await self._account_numbers(),
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
            return self._redirect(f"/console/messages/{quote(str(result['tracking-id']), safe='')}")
        detail = (
            f"{result.get('error-code', '')}: {result.get('error-info', '')}"
            if isinstance(result, dict)
            else "the API gave no answer"
        )
        return await self._send_form(session, values=values, error=detail, status=422)

    async def _keep_upload(self, data: bytes, content_type: str, name: str) -> str:
        """Keep an uploaded file for the media stage; the token of its URL."""
        token = secrets.token_urlsafe(24)
        digest = await asyncio.to_thread(self.blobs.put, data)
        now = utcnow()
        await self.store.add_console_upload(
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
        token = request.path_params["token"]
        found = await self.store.console_upload(upload_token_hash(token)) if len(token) <= 64 else None
        if found is None:
            return self._plain("no such upload\n", 404)
        if utcnow() >= found.expires_at:
            return self._plain("this upload has expired\n", 410)
        path = self.blobs.path(found.sha256)
        try:
            stat = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return self._plain("no such upload\n", 404)
        return FileResponse(
            path,
            media_type=found.content_type,
            filename=found.name,
            content_disposition_type="attachment",
            stat_result=stat,
            headers={**_COMMON, "Content-Security-Policy": FILE_POLICY},
        )
