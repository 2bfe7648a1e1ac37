"""The console's way in and out: the home redirect, the login form, the logout, and the static assets.

The static assets (the style sheet and the few lines of script, which carry no data) need no session:
the login page loads them too.
"""

from __future__ import annotations

import asyncio
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from mmsgate.common.guard import IPNetwork
from mmsgate.web.console.auth import CONSOLE_USER, Session, Sessions, client_address, same
from mmsgate.web.console.kit import Kit, plain, read_form, redirect

STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}


def _static(name: str) -> bytes:
    return (resources.files("mmsgate.web.console") / "static" / name).read_bytes()


class LoginPages:
    """Login, logout and the static assets, over the console's sessions."""

    def __init__(self, kit: Kit, sessions: Sessions, trusted_proxies: tuple[IPNetwork, ...] = ()) -> None:
        self.kit = kit
        self.sessions = sessions
        self.trusted_proxies = trusted_proxies
        """Reverse proxies whose X-Forwarded-For names the client (:func:`client_address`)."""
        self.static = {name: _static(name) for name in STATIC}

    async def home(self, request: Request) -> Response:
        return redirect("/console/messages")

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
            form = await read_form(request)
            if isinstance(form, Response):
                return form
            if not same(form.get("token"), token) or request.cookies.get("mmsgate_console_login") != token:
                error, status = "The login form expired: please try again.", 400
            else:
                client = client_address(request, self.trusted_proxies)
                throttle = self.sessions.throttle
                async with throttle.turn(client):
                    await asyncio.sleep(throttle.delay(client, CONSOLE_USER))
                    right = await self.sessions.password_matches(str(form.get("password") or ""))
                    if right:
                        throttle.succeeded(client, CONSOLE_USER)
                    else:
                        held = throttle.failed(client, CONSOLE_USER)
                if right:
                    answer = redirect(next_url)
                    await self.sessions.start(request, answer)
                    return answer
                await asyncio.sleep(held)  # after its turn: the next try from here waits at most LOGIN_DELAY
                error, status = "Wrong password.", 401
        response = self.kit.render("login.html", status, token=token, next=next_url, error=error)
        Sessions.remember_login_token(request, response, token)
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        response = redirect("/console/login")
        await self.sessions.end(session, response)
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return plain("no such file\n", 404)
        return Response(
            self.static[name],
            media_type=STATIC[name],
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )
