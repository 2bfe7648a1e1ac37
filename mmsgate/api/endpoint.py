"""``POST /ep/v2/``: authenticate, check against the contract, commit, answer.

Every answer to an API call is HTTP 200 with ``status`` success or failure. The only other statuses
are for things that are not API calls: 405 (wrong method, from the router), 413 (body over the
limit) and 503 with ``Retry-After`` (shutting down, or the database away for the moment: nothing was
accepted, the same call can be made again). A success is sent only after the message or template, its
first event and its job are committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import msgspec
from starlette.types import Receive, Scope, Send

from mmsgate import contract
from mmsgate.api.auth import Authenticator
from mmsgate.common.http import RETRY_AFTER_SECONDS, api_key_of, failure_body
from mmsgate.core.codes import ACCEPTED_DETAILS, TEMPLATE_ACCEPTED_DETAILS, ErrorCode
from mmsgate.core.model import AccountConfig, Sending, utcnow
from mmsgate.core.roles import Accepting
from mmsgate.errors import ApiError, NotFound, StoreError, StoreUnavailable

log = logging.getLogger("mmsgate.api")

_encoder = msgspec.json.Encoder()
_RETRY_AFTER = str(RETRY_AFTER_SECONDS).encode()


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its body arrived: nothing was accepted."""


def _texts(sending: Sending) -> Iterator[tuple[str, ErrorCode, str | None]]:
    """The free-text fields of a sending, in the contract's order, with the code each one fails with."""
    yield "message-subject", ErrorCode.SUBJECT_INVALID, sending.subject
    yield "fallback-sms-text", ErrorCode.INVALID_REQUEST, sending.fallback_sms_text
    yield "client-reference", ErrorCode.INVALID_REQUEST, sending.client_reference
    for n, slide in enumerate(sending.slides, 1):
        yield f"slide {n}: message-text", ErrorCode.INVALID_REQUEST, slide.text


def refuse_nul(fields: Iterable[tuple[str, ErrorCode, str | None]]) -> None:
    """A NUL character cannot be stored by every backend (PostgreSQL text refuses it), so no backend
    takes one: the request fails naming the field, instead of failing in the store as an internal error."""
    for name, code, value in fields:
        if value is not None and "\x00" in value:
            raise ApiError(code, f"{name} contains a NUL character (\\u0000), which is not allowed")


async def read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The whole body, refusing (before reading it) one whose Content-Length passes ``limit``."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Endpoint:
    """The ep/v2 handler, bound to what it commits and an authenticator."""

    def __init__(self, accepting: Accepting, auth: Authenticator, max_body: int) -> None:
        self.accepting = accepting
        self.auth = auth
        self.max_body = max_body
        self.shutting_down = False
        self.after_accept: Callable[[], None] | None = None
        """Called after each commit (the embedded worker uses it to start at once)."""
        self._actions: dict[str, Callable[[contract.Request, AccountConfig], Awaitable[dict[str, Any]]]] = {
            "sendmms": self._sendmms,
            "savemms": self._savemms,
            "sendsavedmms": self._sendsavedmms,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a bare ASGI app: the hot path, without a framework's layers around it."""
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value.decode("latin-1")
        status, body = await self.answer(scope["headers"], declared, receive)
        headers = [(b"content-length", str(len(body)).encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        if status == 503:
            headers.append((b"retry-after", _RETRY_AFTER))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def answer(
        self, headers: Iterable[tuple[bytes, bytes]], declared: str | None, receive: Receive
    ) -> tuple[int, bytes]:
        """HTTP status and JSON body for one call with the request's raw ``headers``."""
        if self.shutting_down:
            return failure_body(ErrorCode.INTERNAL, "the gateway is shutting down; retry on another instance", 503)
        try:
            body = await read_body(receive, declared, self.max_body)
        except ClientGone:
            return 400, b""
        except BodyTooLarge:
            return failure_body(ErrorCode.INVALID_REQUEST, f"the body is larger than {self.max_body} bytes", 413)
        return await self._answer(body, self._caller(headers))

    async def _caller(self, headers: Iterable[tuple[bytes, bytes]]) -> AccountConfig:
        return await self.auth.account_for(api_key_of(headers))

    async def answer_as(self, account_id: str, body: bytes) -> tuple[int, bytes]:
        """HTTP status and JSON body for one call made as ``account_id``, without a key: for callers in
        this process only (the console's test sends), never reachable over HTTP. Everything else is as
        for a call with one of the account's keys (a disabled account is refused, its rate limit holds)."""
        if self.shutting_down:
            return failure_body(ErrorCode.INTERNAL, "the gateway is shutting down; retry on another instance", 503)
        return await self._answer(body, self.auth.account_as(account_id))

    async def _answer(self, body: bytes, caller: Awaitable[AccountConfig]) -> tuple[int, bytes]:
        try:
            config = await caller
            parsed = contract.parse_body(body)
            answer = await self._actions[parsed.action](parsed, config)
            if self.after_accept is not None:
                self.after_accept()
            return 200, _encoder.encode(answer)
        except ApiError as exc:
            return failure_body(exc.code, exc.info)
        except StoreUnavailable as exc:
            log.warning("the database is unavailable during an API call: %s", exc)
            return failure_body(
                ErrorCode.INTERNAL,
                f"the database is unavailable: the request was not accepted; retry in {RETRY_AFTER_SECONDS} s",
                503,
            )
        except StoreError as exc:
            log.warning("store failed during an API call: %s", exc)
            return failure_body(ErrorCode.INTERNAL, "internal error: the request was not accepted; please retry")
        except Exception:
            log.exception("unexpected error during an API call")
            return failure_body(ErrorCode.INTERNAL, "internal error: the request was not accepted; please retry")

    async def _sendmms(self, request: contract.Request, config: AccountConfig) -> dict[str, Any]:
        data = request.data
        message = contract.check_sendmms(data, config, utcnow())
        if request.may_hold_nul:
            refuse_nul(_texts(message.sending))
        await self.accepting.accept_message(message)
        return {
            "status": "success",
            "to": message.to,
            "tracking-id": message.tracking_id,
            "status-details": ACCEPTED_DETAILS,
        }

    async def _savemms(self, request: contract.Request, config: AccountConfig) -> dict[str, Any]:
        data = request.data
        template = contract.check_savemms(data, config.account.id, utcnow())
        if request.may_hold_nul:
            refuse_nul([("name", ErrorCode.NAME_INVALID, template.name), *_texts(template.sending)])
        await self.accepting.accept_template(template)
        return {
            "status": "success",
            "tracking-id": template.tracking_id,
            "mms-id": template.mms_id,
            "status-details": TEMPLATE_ACCEPTED_DETAILS,
        }

    async def _sendsavedmms(self, request: contract.Request, config: AccountConfig) -> dict[str, Any]:
        data = request.data
        mms_id = contract.mms_id_of(data)
        if request.may_hold_nul and "\x00" in mms_id:  # no template has one, and not every backend can look one up
            raise ApiError(ErrorCode.MMS_ID_UNKNOWN, "mms-id contains a NUL character and does not exist")
        try:
            saved = await self.accepting.get_template(config.account.id, mms_id)
        except NotFound:
            raise ApiError(ErrorCode.MMS_ID_UNKNOWN, f"mms-id {mms_id!r} does not exist") from None
        contract.check_template_usable(saved)
        message = contract.check_sendsavedmms(data, saved, config, utcnow())
        if request.may_hold_nul:
            refuse_nul(_texts(message.sending))
        await self.accepting.accept_message(message)
        return {
            "status": "success",
            "mms-id": saved.mms_id,
            "tracking-id": message.tracking_id,
            "to": message.to,
            "from": message.sender,
            "status-details": ACCEPTED_DETAILS,
        }
