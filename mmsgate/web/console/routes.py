"""The console's routes under ``/console``: :class:`Console` assembles the page modules and guards them.

Every page but the login needs a session: without one a page redirects to the login and a file that
carries data answers 401. Two routes need none: ``/console/static/`` (the style sheet and the few lines
of script, which carry no data) and ``/console/uploads/{token}`` (files uploaded for a test send, which
the media stage fetches: 192-bit tokens, an hour's life).

The pages themselves are in :mod:`.login`, :mod:`.messages`, :mod:`.template_pages`, :mod:`.phones`,
:mod:`.send` and :mod:`.postbacks`; what they share (rendering, headers, forms, files) is in :mod:`.kit`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from mmsgate.api.endpoint import Endpoint
from mmsgate.carriers.base import InboundSink
from mmsgate.common.guard import IPNetwork
from mmsgate.core.roles import Accounts, Blobs, ConsoleState, Messages, Numbers, PostbackBacklog, SandboxState
from mmsgate.web.console.auth import Sessions, same
from mmsgate.web.console.kit import Handler, Kit, plain, read_form, redirect
from mmsgate.web.console.login import LoginPages
from mmsgate.web.console.messages import MessagePages
from mmsgate.web.console.phones import PhonePages
from mmsgate.web.console.postbacks import PostbackPages
from mmsgate.web.console.send import SendPages
from mmsgate.web.console.template_pages import TemplatePages


class Console:
    """The console's handlers over the roles they read, the API endpoint (test sends go through it) and the
    inbound sink (MMS sent from a virtual phone)."""

    def __init__(
        self,
        *,
        console: ConsoleState,
        messages: Messages,
        accounts: Accounts,
        numbers: Numbers,
        sandbox: SandboxState,
        backlog: PostbackBacklog,
        endpoint: Endpoint,
        inbound: InboundSink,
        blobs: Blobs,
        public_url: Callable[[], Awaitable[str]],
        trusted_proxies: tuple[IPNetwork, ...] = (),
    ) -> None:
        self.endpoint = endpoint
        self.inbound = inbound
        self.blobs = blobs
        self.public_url = public_url
        self.sessions = Sessions(console)
        kit = Kit(blobs, accounts, numbers)
        self.login = LoginPages(kit, self.sessions, trusted_proxies)
        self.messages = MessagePages(kit, console, messages)
        self.templates = TemplatePages(kit, console, messages)
        self.phones = PhonePages(kit, sandbox, inbound)
        self.send = SendPages(kit, console, endpoint, public_url)
        self.postbacks = PostbackPages(kit, backlog)

    def routes(self) -> Mount:
        """Everything under ``/console`` (a Mount: the console is pages for people, not part of the API
        that ``/openapi.json`` describes)."""
        page, data = self._page, self._data
        login, messages, templates, phones, send = self.login, self.messages, self.templates, self.phones, self.send
        return Mount(
            "/console",
            routes=[
                Route("/", login.home, methods=["GET"]),
                Route("/login", login.login, methods=["GET", "POST"]),
                Route("/logout", page(login.logout), methods=["POST"]),
                Route("/static/{name}", login.asset, methods=["GET"]),
                Route("/uploads/{token}", send.upload, methods=["GET"]),
                Route("/messages", page(messages.messages), methods=["GET"]),
                Route("/messages/{tracking_id}", page(messages.message), methods=["GET"]),
                Route("/media/{owner}/{position:int}", data(messages.media), methods=["GET"]),
                Route("/phones", page(phones.phones), methods=["GET"]),
                Route("/phones/{number}", page(phones.phone), methods=["GET"]),
                Route("/phones/{number}/settings", page(phones.phone_settings), methods=["POST"]),
                Route("/phones/{number}/send", page(phones.phone_send), methods=["POST"]),
                Route("/phones/{number}/inbox/{message}/{location}", data(phones.inbox_file), methods=["GET"]),
                Route("/phones/{number}/sent/{inbound}/{position:int}", data(phones.sent_file), methods=["GET"]),
                Route("/send", page(send.send), methods=["GET", "POST"]),
                Route("/templates", page(templates.template_list), methods=["GET"]),
                Route("/templates/{mms_id}", page(templates.template), methods=["GET"]),
                Route("/postbacks", page(self.postbacks.postbacks), methods=["GET"]),
                Route("/postbacks/{account_id}/retry", page(self.postbacks.retry), methods=["POST"]),
                Route("/postbacks/{account_id}/url", page(self.postbacks.set_url), methods=["POST"]),
            ],
        )

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A page: without a session, a redirect to the login; a form posted without the session's
        CSRF token is refused."""

        async def endpoint(request: Request) -> Response:
            session = await self.sessions.current(request)
            if session is None:
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = wanted if request.method == "GET" else "/console/messages"
                return redirect("/console/login?" + urlencode({"next": target}))
            if request.method == "POST":
                form = await read_form(request)
                if isinstance(form, Response):
                    return form
                if not same(form.get("csrf"), session.csrf):
                    return plain("the form's CSRF token is missing or wrong: reload the page\n", 403)
            return await handler(request, session)

        return endpoint

    def _data(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A file that carries data: 401 without a session."""

        async def endpoint(request: Request) -> Response:
            session = await self.sessions.current(request)
            if session is None:
                return plain("log in to the console first\n", 401)
            return await handler(request, session)

        return endpoint
