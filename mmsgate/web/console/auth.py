"""Who may use the console: one password (stored as a scrypt hash), sessions, CSRF tokens, login backoff.

A login makes a session: a random 256-bit token in a cookie (HttpOnly, SameSite=Strict, Path=/console,
Secure over HTTPS) of which the store keeps only the SHA-256, with an expiry. Every form carries the
session's CSRF token (an HMAC of the session token, so nothing more is stored); the login form, which
comes before any session, pairs a hidden field with a SameSite=Strict cookie of the same random value.
Failed logins slow the next ones down without ever locking the administrator out (:class:`LoginThrottle`):
the right password is always accepted, after at most ``LOGIN_DELAY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from mmsgate.common.guard import IPNetwork
from mmsgate.core.model import utcnow
from mmsgate.core.passwords import check_password, hash_password
from mmsgate.core.roles import ConsoleState

SESSION_COOKIE = "mmsgate_console"
LOGIN_COOKIE = "mmsgate_console_login"
COOKIE_PATH = "/console"
SESSION_LIFETIME = timedelta(hours=12)

CONSOLE_USER = "admin"
"""The one console account (one password); back-off is kept per account, so a name for it."""
FREE_FAILURES = 3
"""Failed logins a client address may make before its tries are slowed down."""
FREE_ACCOUNT_FAILURES = 10
"""Failed logins for the account, from any address, before every address's tries are slowed down."""
LOGIN_DELAY = 1.0
"""The longest a login waits before its password is checked, however many failures came before."""
MAX_WAIT = 30.0
"""The longest back-off, and so the longest a wrong password's answer is held."""
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


@dataclass(slots=True)
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class LoginThrottle:
    """Failed logins in memory, per client address and per account (the console user).

    After ``FREE_FAILURES`` failures from an address, or ``FREE_ACCOUNT_FAILURES`` for the account from
    anywhere, they back off: waits of 1, 2, 4, ... s (at most ``MAX_WAIT``). A try made while backing off
    waits ``LOGIN_DELAY`` at most before its password is checked, so the right password is accepted then,
    whoever failed before; a wrong one's answer is held for the whole wait. Tries from one address are
    taken one at a time, so while it backs off an address has at most one password checked per
    ``LOGIN_DELAY``, and one a back-off if it waits for its answers. A success forgets the address and the
    account.
    """

    def __init__(self) -> None:
        self._clients: dict[str, _Failures] = {}
        self._accounts: dict[str, _Failures] = {}
        self._turns: dict[str, _Turn] = {}

    @contextlib.asynccontextmanager
    async def turn(self, client: str) -> AsyncIterator[None]:
        """One try at a time per client address (a queue, never a refusal)."""
        turn = self._turns.get(client)
        if turn is None:
            turn = self._turns[client] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[client]

    def wait(self, client: str, account: str, now: float | None = None) -> float:
        """Seconds the address or the account is still backing off (0: neither is)."""
        moment = time.monotonic() if now is None else now
        found = [f.retry_at - moment for f in (self._clients.get(client), self._accounts.get(account)) if f]
        return max([0.0, *found])

    def delay(self, client: str, account: str, now: float | None = None) -> float:
        """Seconds a try waits before its password is checked: never more than ``LOGIN_DELAY``."""
        return min(LOGIN_DELAY, self.wait(client, account, now))

    def failed(self, client: str, account: str, now: float | None = None) -> float:
        """Count a wrong password; the seconds its answer is held (the back-off it started)."""
        moment = time.monotonic() if now is None else now
        _count(self._clients, client, FREE_FAILURES, moment)
        _count(self._accounts, account, FREE_ACCOUNT_FAILURES, moment)
        return self.wait(client, account, moment)

    def succeeded(self, client: str, account: str) -> None:
        self._clients.pop(client, None)
        self._accounts.pop(account, None)


def _count(failures: dict[str, _Failures], key: str, free: int, now: float) -> None:
    entry = failures.get(key)
    if entry is None:
        if len(failures) >= MAX_CLIENTS:  # many addresses: forget the oldest entry
            failures.pop(next(iter(failures)))
        entry = failures[key] = _Failures(0, now)
    entry.count += 1
    if entry.count >= free:
        entry.retry_at = now + min(MAX_WAIT, 2.0 ** (entry.count - free))


def client_address(request: Request, trusted: tuple[IPNetwork, ...]) -> str:
    """The address a login comes from: the socket's peer, or, when the peer is a trusted proxy, the last
    address in X-Forwarded-For that is not one (each proxy appends the address it was reached from, so what
    comes before the trusted ones is whatever the client wrote)."""
    address = request.client.host if request.client else "unknown"
    if not trusted or not _within(address, trusted):
        return address
    hops = [hop.strip() for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        address = _normal(hop)
        if not _within(hop, trusted):
            break
    return address


def _within(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _normal(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address[:64]  # not an address: a key of its own, bounded
