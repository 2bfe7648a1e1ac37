"""The asynchronous client, :class:`AsyncClient`: the API's three actions and mmsgate's two status views.

Each call builds one request value (:mod:`mmsgate.client.wire`) and hands it to :meth:`AsyncClient._send`,
which sends it and reads the answer. A connection that could not be opened is tried again a few times; a
request that may have reached the server is never sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from mmsgate import __version__
from mmsgate.client.errors import ClientError, TransportFailure
from mmsgate.client.slides import Slide
from mmsgate.client.wire import Accepted, ApiRequest, action, read_answer, timestamp, view

T = TypeVar("T")

_BACKOFF = 0.1
"""Seconds before the first new attempt at a connection; doubled for each further one."""
_MAX_BACKOFF = 2.0


class AsyncClient:
    """An asynchronous client of one server, with one API key.

    ``base_url`` is the server's address without ``/ep/v2/`` (a path prefix is kept); ``timeout`` applies
    to connecting, writing, reading and waiting for a pooled connection, each; a connection that cannot
    be opened is tried ``connect_retries`` more times with a short backoff. ``transport`` replaces httpx's
    own (for tests, proxies or custom TLS). Close it with :meth:`aclose` or use it as ``async with``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = "http://127.0.0.1:8080",
        *,
        timeout: float = 10.0,
        connect_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if connect_retries < 0:
            raise ValueError("connect_retries must be 0 or more")
        self.base_url = base_url.rstrip("/")
        self.connect_retries = connect_retries
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "x-api-key": api_key,
                "accept": "application/json",
                "user-agent": f"mmsgate-client/{__version__}",
            },
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._http.aclose()

    # -- the API's actions -----------------------------------------------------------------------------

    async def send_mms(
        self,
        *,
        service_id: str,
        to: str,
        sender: str,
        slides: Sequence[Slide],
        subject: str | None = None,
        fallback_sms_text: str | None = None,
        disable_fallback_sms: bool | None = None,
        disable_fallback_sms_link: bool | None = None,
        fallback_sms_link_expiration: datetime | None = None,
        mms_expiry: datetime | None = None,
        client_reference: str | None = None,
        from_mask: str | None = None,
        cache_content: bool | None = None,
    ) -> Accepted:
        """``sendmms``: send an MMS of ``slides`` to ``to`` from ``sender``; ``Accepted.tracking_id`` names it.

        ``fallback_sms_text`` is required unless ``disable_fallback_sms`` is True. Media is fetched after
        the answer: its failures arrive by postback and in :meth:`message`, not here."""
        request = action(
            "sendmms",
            {
                "service-id": service_id,
                "to": to,
                "from": sender,
                "from-mask": from_mask,
                "message-subject": subject,
                "fallback-sms-text": fallback_sms_text,
                "disable-fallback-sms-link": disable_fallback_sms_link,
                "disable-fallback-sms": disable_fallback_sms,
                "fallback-sms-link-expiration": timestamp(fallback_sms_link_expiration),
                "mms-expiry-timestamp": timestamp(mms_expiry),
                "client-reference": client_reference,
                "cache-content": cache_content,
                "slide": [slide.to_wire() for slide in slides],
            },
        )
        return await self._send(request)

    async def save_mms(
        self,
        *,
        name: str,
        slides: Sequence[Slide],
        subject: str | None = None,
        fallback_sms_text: str | None = None,
        disable_fallback_sms: bool | None = None,
        disable_fallback_sms_link: bool | None = None,
        fallback_sms_link_expiration: datetime | None = None,
        client_reference: str | None = None,
    ) -> Accepted:
        """``savemms``: store a template to send later with :meth:`send_saved_mms`; ``Accepted.mms_id`` names it.

        The server then fetches and prepares the content: the template can be sent once :meth:`template`
        shows ``"state": "ready"`` (or the N003 postback arrives)."""
        request = action(
            "savemms",
            {
                "name": name,
                "message-subject": subject,
                "fallback-sms-text": fallback_sms_text,
                "disable-fallback-sms": disable_fallback_sms,
                "disable-fallback-sms-link": disable_fallback_sms_link,
                "fallback-sms-link-expiration": timestamp(fallback_sms_link_expiration),
                "client-reference": client_reference,
                "slide": [slide.to_wire() for slide in slides],
            },
        )
        return await self._send(request)

    async def send_saved_mms(
        self,
        *,
        mms_id: str,
        service_id: str,
        to: str,
        sender: str,
        custom_slides: Mapping[int, str] | None = None,
        subject: str | None = None,
        fallback_sms_text: str | None = None,
        disable_fallback_sms: bool | None = None,
        disable_fallback_sms_link: bool | None = None,
        fallback_sms_link_expiration: datetime | None = None,
        mms_expiry: datetime | None = None,
        client_reference: str | None = None,
        from_mask: str | None = None,
    ) -> Accepted:
        """``sendsavedmms``: send the template ``mms_id``; fields given here override the template's.

        ``custom_slides`` maps a slide number (1-based) to the text that replaces that slide's text."""
        custom = (
            None
            if custom_slides is None
            else [
                {"custom-slide": number, "custom-message-text": text} for number, text in sorted(custom_slides.items())
            ]
        )
        request = action(
            "sendsavedmms",
            {
                "mms-id": mms_id,
                "service-id": service_id,
                "to": to,
                "from": sender,
                "from-mask": from_mask,
                "message-subject": subject,
                "fallback-sms-text": fallback_sms_text,
                "disable-fallback-sms": disable_fallback_sms,
                "disable-fallback-sms-link": disable_fallback_sms_link,
                "fallback-sms-link-expiration": timestamp(fallback_sms_link_expiration),
                "mms-expiry-timestamp": timestamp(mms_expiry),
                "client-reference": client_reference,
                "custom-slides": custom,
            },
        )
        return await self._send(request)

    # -- mmsgate's status views ------------------------------------------------------------------------

    async def message(self, tracking_id: str) -> dict[str, Any]:
        """``GET /v1/messages/{tracking-id}`` (an mmsgate extension): the message's state, fields and events."""
        return await self._send(view(f"/v1/messages/{quote(tracking_id, safe='')}"))

    async def template(self, mms_id: str) -> dict[str, Any]:
        """``GET /v1/templates/{mms-id}`` (an mmsgate extension): the template's state, fields and events."""
        return await self._send(view(f"/v1/templates/{quote(mms_id, safe='')}"))

    # -- internals -------------------------------------------------------------------------------------

    async def _send(self, request: ApiRequest[T]) -> T:
        """Send once, and read the answer into the request's result. The connection is opened again only
        when it could not be opened (nothing was sent)."""
        method, path = request.method, request.path
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, json=request.body)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt >= self.connect_retries:
                    raise TransportFailure(
                        f"could not connect to {self.base_url} ({_attempts(attempt + 1)}): {exc or type(exc).__name__}",
                        may_have_been_accepted=False,
                    ) from exc
                await asyncio.sleep(min(_BACKOFF * 2**attempt, _MAX_BACKOFF))
                attempt += 1
            except (httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:  # never left the client
                raise TransportFailure(
                    f"{method} {self.base_url}{path} was not sent: {exc or type(exc).__name__}",
                    may_have_been_accepted=False,
                ) from exc
            except httpx.HTTPError as exc:
                raise TransportFailure(
                    f"{method} {self.base_url}{path} got no usable answer ({type(exc).__name__}: {exc}); "
                    "the server may have received it",
                    may_have_been_accepted=True,
                ) from exc
            except httpx.InvalidURL as exc:
                raise ClientError(f"invalid URL {self.base_url}{path}: {exc}") from exc
        return request.result(response, read_answer(response))


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"
