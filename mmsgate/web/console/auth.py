"""Who may use the console: one password (stored as a scrypt hash), sessions, CSRF tokens, login backoff.

A login makes a session: a random 256-bit token in a cookie (HttpOnly, SameSite=Strict, Path=/console,
Secure over HTTPS) of which the store keeps only the SHA-256, with an expiry. Every form carries the
session's CSRF token (an HMAC of the session token, so nothing more is stored); the login form, which
comes before any session, pairs a hidden field with a SameSite=Strict cookie of the same random value.
Failed logins are counted per client address: after a few, each further try must wait twice as long as
the one before (up to five minutes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from mmsgate.core.model import utcnow
from mmsgate.core.passwords import check_password, hash_password
from mmsgate.core.roles import ConsoleState

SESSION_COOKIE = "mmsgate_console"
LOGIN_COOKIE = "mmsgate_console_login"
COOKIE_PATH = "/console"
SESSION_LIFETIME = timedelta(hours=12)

FREE_FAILURES = 3
"""Failed logins a client may make before it has to wait."""
MAX_WAIT = 300.0
MAX_CLIENTS = 10_000


def new_password() -> str:
    """A console password: 144 random bits, easy to paste."""
    return secrets.token_urlsafe(18)


async def set_password(console: ConsoleState, password: str, *, only_if_unset: bool = False) -> bool:
    """Store ``password`` hashed (every session ends); with ``only_if_unset``, only if there is none yet."""
    hashed = await asyncio.to_thread(hash_password, password)
    return await console.set_console_password(hashed, only_if_unset=only_if_unset)


async def ensure_password(console: ConsoleState) -> str | None:
    """At a first start: make a password and return it (to be shown once); None if there is one already."""
    if await console.console_password_hash() is not None:
        return None
    password = new_password()
    return password if await set_password(console, password, only_if_unset=True) else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_for(token: str) -> str:
    return hmac.new(token.encode("utf-8", "surrogatepass"), b"mmsgate console csrf", hashlib.sha256).hexdigest()


def same(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    csrf: str
    expires_at: datetime


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


class Sessions:
    """Logins, logouts and the session of a request."""

    def __init__(self, console: ConsoleState) -> None:
        self.console = console
        self.throttle = LoginThrottle()

    async def current(self, request: Request) -> Session | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 128:
            return None
        hashed = token_hash(token)
        expires_at = await self.console.console_session(hashed, utcnow())
        return None if expires_at is None else Session(hashed, csrf_for(token), expires_at)

    async def password_matches(self, password: str) -> bool:
        stored = await self.console.console_password_hash()
        if stored is None or not password:
            return False
        return await asyncio.to_thread(check_password, password, stored)

    async def start(self, request: Request, response: Response) -> None:
        token = secrets.token_urlsafe(32)
        await self.console.create_console_session(token_hash(token), utcnow() + SESSION_LIFETIME)
        _cookie(response, request, SESSION_COOKIE, token, int(SESSION_LIFETIME.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)

    async def end(self, session: Session, response: Response) -> None:
        await self.console.end_console_session(session.token_hash)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)

    @staticmethod
    def login_token(request: Request) -> str:
        """The login form's anti-forgery value: the one in the browser's cookie, or a new one."""
        token = request.cookies.get(LOGIN_COOKIE)
        return token if token and len(token) <= 64 else secrets.token_urlsafe(24)

    @staticmethod
    def remember_login_token(request: Request, response: Response, token: str) -> None:
        _cookie(response, request, LOGIN_COOKIE, token, 3600)


@dataclass(slots=True)
class _Failures:
    count: int
    retry_at: float


class LoginThrottle:
    """Failed logins per client, in memory: after ``FREE_FAILURES``, waits of 1, 2, 4, ... s (at most
    ``MAX_WAIT``) between tries. A success forgets the client."""

    def __init__(self) -> None:
        self._clients: dict[str, _Failures] = {}

    def wait(self, client: str, now: float | None = None) -> float:
        """Seconds ``client`` must still wait before it may try again (0: it may now)."""
        failures = self._clients.get(client)
        if failures is None:
            return 0.0
        return max(0.0, failures.retry_at - (time.monotonic() if now is None else now))

    def failed(self, client: str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        failures = self._clients.get(client)
        if failures is None:
            if len(self._clients) >= MAX_CLIENTS:  # many addresses: forget the oldest entry
                self._clients.pop(next(iter(self._clients)))
            failures = self._clients[client] = _Failures(0, moment)
        failures.count += 1
        if failures.count >= FREE_FAILURES:
            failures.retry_at = moment + min(MAX_WAIT, 2.0 ** (failures.count - FREE_FAILURES))

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)
