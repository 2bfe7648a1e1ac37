"""A small typed client for the MMS JSON API (``POST {base}/ep/v2/``), for mmsgate or any server of the same API.

Every request is first checked with :func:`mmsgate.contract.precheck.precheck`, the rules of the contract that need no
knowledge of the account, so a request the server would refuse for those rules is refused here, before anything is
sent (an :class:`ApiFailure` with ``status == 0``). A connection that could not be opened is tried again a few
times; a request that may have reached the server is never sent twice.

Usage::

    from mmsgate.client import Client, Slide

    with Client("mmsk_...", "http://127.0.0.1:8080") as client:
        accepted = client.send_mms(
            service_id="8040779936",
            to="15550100001",
            sender="28444",
            fallback_sms_text="You have a new picture message",
            slides=[Slide.image("https://example.com/cat.jpg", text="Hello")],
        )
        print(accepted.tracking_id, client.message(accepted.tracking_id)["state"])

In asynchronous code, use :class:`AsyncClient` the same way (``async with``, ``await client.send_mms(...)``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from mmsgate import __version__
from mmsgate.contract.precheck import precheck
from mmsgate.core.model import MediaKind
from mmsgate.errors import ApiError

__all__ = ["Accepted", "ApiFailure", "AsyncClient", "Client", "ClientError", "Slide", "TransportFailure"]

T = TypeVar("T")

_KINDS = tuple(kind.value for kind in MediaKind)
_API_PATH = "/ep/v2/"
_BACKOFF = 0.1
"""Seconds before the first new attempt at a connection; doubled for each further one."""
_MAX_BACKOFF = 2.0
_SHOWN = 200
"""Characters of an unexpected answer quoted in an error."""


class ClientError(Exception):
    """Base of the client's errors; raised as such for an answer the client cannot make sense of."""


class ApiFailure(ClientError):
    """The server answered ``"status": "failure"`` (or a non-2xx status with an E-code), or the client
    refused the request before sending it because the server would have.

    ``code`` is the contract's E-code (``"E110"``), ``info`` the sentence naming the field and the problem,
    ``status`` the HTTP status of the answer: 200 for a failure answered by the server's API endpoint,
    0 when the client refused the request and nothing was sent."""

    def __init__(self, code: str, info: str, status: int) -> None:
        where = "refused before sending" if status == 0 else f"HTTP {status}"
        super().__init__(f"{code}: {info} ({where})")
        self.code = code
        self.info = info
        self.status = status


class TransportFailure(ClientError):
    """No answer was received.

    ``may_have_been_accepted`` is True when the request may have reached the server: for a send, the
    message may then have been accepted, and the client does not send it again (check with
    :meth:`AsyncClient.message` or a postback before sending it again yourself). It is False when the
    connection could not be opened at all (after the configured attempts), so nothing was sent. (For the
    status views, which change nothing, asking again is always safe.)"""

    def __init__(self, message: str, *, may_have_been_accepted: bool) -> None:
        super().__init__(message)
        self.may_have_been_accepted = may_have_been_accepted


@dataclass(frozen=True, slots=True)
class Slide:
    """One slide: optional text and up to the contract's media objects, each ``(kind, url)``.

    ``kind`` is one of image, audio, video, contact, calendar, pdf; a slide carries each kind at most once.
    Which combinations are allowed (image with audio, video only with text, ...) is the contract's to say:
    a slide that breaks those rules is refused with the contract's E-code when it is sent."""

    text: str | None = None
    media: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        kinds = [kind for kind, _ in self.media]
        for kind in kinds:
            if kind not in _KINDS:
                raise ValueError(f"unknown media kind {kind!r}: use one of {', '.join(_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"a slide carries each media kind at most once, not {', '.join(kinds)}")

    @classmethod
    def of_text(cls, text: str) -> Slide:
        """A slide with text only."""
        return cls(text=text)

    @classmethod
    def image(cls, url: str, text: str | None = None) -> Slide:
        """A slide with an image (JPEG, PNG or GIF) and optional text."""
        return cls(text, (("image", url),))

    @classmethod
    def audio(cls, url: str, text: str | None = None) -> Slide:
        """A slide with audio (MP3, WAV or AMR) and optional text."""
        return cls(text, (("audio", url),))

    @classmethod
    def video(cls, url: str, text: str | None = None) -> Slide:
        """A slide with a video and optional text."""
        return cls(text, (("video", url),))

    @classmethod
    def contact(cls, url: str, text: str | None = None) -> Slide:
        """A slide with a vCard and optional text."""
        return cls(text, (("contact", url),))

    @classmethod
    def calendar(cls, url: str, text: str | None = None) -> Slide:
        """A slide with an iCalendar file and optional text."""
        return cls(text, (("calendar", url),))

    @classmethod
    def pdf(cls, url: str, text: str | None = None) -> Slide:
        """A slide with a PDF and optional text."""
        return cls(text, (("pdf", url),))

    def with_media(self, kind: str, url: str) -> Slide:
        """A copy of this slide with one more media object, e.g. ``Slide.image(u).with_media("audio", v)``."""
        return Slide(self.text, (*self.media, (kind, url)))

    def to_wire(self) -> dict[str, Any]:
        """The slide as the contract's JSON object: ``{"message-text": ..., "image": {"url": ...}, ...}``."""
        wire: dict[str, Any] = {}
        if self.text is not None:
            wire["message-text"] = self.text
        for kind, url in self.media:
            wire[kind] = {"url": url}
        return wire


@dataclass(frozen=True, slots=True)
class Accepted:
    """A success answer: the request was accepted and queued.

    ``tracking_id`` names the message (or, for ``savemms``, the template's processing) in the status views
    and postbacks; ``to`` is the recipient as the server normalised it (sends); ``mms_id`` names the
    template (``savemms`` and ``sendsavedmms``; mmsgate returns it at once, other servers may not)."""

    tracking_id: str
    status_details: str
    to: str | None = None
    mms_id: str | None = None


def _timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 UTC to the second, ``YYYY-MM-DDTHH:MM:SSZ``; a naive datetime is taken as UTC (as the server does)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(action: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body: the action and every field that is not None, in the order given."""
    body: dict[str, Any] = {"action": action}
    body.update((name, value) for name, value in fields.items() if value is not None)
    return body


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


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
        body = _body(
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
                "fallback-sms-link-expiration": _timestamp(fallback_sms_link_expiration),
                "mms-expiry-timestamp": _timestamp(mms_expiry),
                "client-reference": client_reference,
                "cache-content": cache_content,
                "slide": [slide.to_wire() for slide in slides],
            },
        )
        return await self._call(body)

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
        body = _body(
            "savemms",
            {
                "name": name,
                "message-subject": subject,
                "fallback-sms-text": fallback_sms_text,
                "disable-fallback-sms": disable_fallback_sms,
                "disable-fallback-sms-link": disable_fallback_sms_link,
                "fallback-sms-link-expiration": _timestamp(fallback_sms_link_expiration),
                "client-reference": client_reference,
                "slide": [slide.to_wire() for slide in slides],
            },
        )
        return await self._call(body)

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
        body = _body(
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
                "fallback-sms-link-expiration": _timestamp(fallback_sms_link_expiration),
                "mms-expiry-timestamp": _timestamp(mms_expiry),
                "client-reference": client_reference,
                "custom-slides": custom,
            },
        )
        return await self._call(body)

    # -- mmsgate's status views ------------------------------------------------------------------------

    async def message(self, tracking_id: str) -> dict[str, Any]:
        """``GET /v1/messages/{tracking-id}`` (an mmsgate extension): the message's state, fields and events."""
        return await self._get(f"/v1/messages/{quote(tracking_id, safe='')}")

    async def template(self, mms_id: str) -> dict[str, Any]:
        """``GET /v1/templates/{mms-id}`` (an mmsgate extension): the template's state, fields and events."""
        return await self._get(f"/v1/templates/{quote(mms_id, safe='')}")

    # -- internals -------------------------------------------------------------------------------------

    async def _call(self, body: dict[str, Any]) -> Accepted:
        try:
            precheck(body, datetime.now(UTC))
        except ApiError as exc:
            raise ApiFailure(exc.code.value, exc.info, 0) from None
        response = await self._request("POST", _API_PATH, body)
        data = self._answer(response)
        tracking_id = data.get("tracking-id")
        if data.get("status") != "success" or not isinstance(tracking_id, str) or not tracking_id:
            raise ClientError(
                f"unexpected answer from POST {response.url} (HTTP {response.status_code}): {_show(response.text)}"
            )
        details, to, mms_id = data.get("status-details"), data.get("to"), data.get("mms-id")
        return Accepted(
            tracking_id=tracking_id,
            status_details=details if isinstance(details, str) else "",
            to=to if isinstance(to, str) else None,
            mms_id=mms_id if isinstance(mms_id, str) else None,
        )

    async def _get(self, path: str) -> dict[str, Any]:
        return self._answer(await self._request("GET", path, None))

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        """Send once; open the connection again only when it could not be opened (nothing was sent)."""
        attempt = 0
        while True:
            try:
                return await self._http.request(method, path, json=body)
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

    @staticmethod
    def _answer(response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object; an :class:`ApiFailure` for a failure answer, a :class:`ClientError` for
        anything else that is not a 2xx JSON object."""
        where = f"{response.request.method} {response.url}"
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if isinstance(data, dict):
            code = data.get("error-code")
            if isinstance(code, str) and (data.get("status") == "failure" or not response.is_success):
                info = data.get("error-info")
                raise ApiFailure(code, info if isinstance(info, str) else "", response.status_code)
        if not response.is_success:
            raise ClientError(f"{where} answered HTTP {response.status_code}: {_show(response.text)}")
        if not isinstance(data, dict):
            kind = response.headers.get("content-type", "no content type")
            raise ClientError(
                f"{where} answered with a body that is not a JSON object ({kind}): {_show(response.text)}"
            )
        return data


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"


class Client:
    """The blocking client: :class:`AsyncClient`'s methods, run on a private event loop.

    Call it from code that is not running an event loop (in asynchronous code, use :class:`AsyncClient`,
    or this one through ``asyncio.to_thread``), and from one thread at a time. Close it with :meth:`close`
    or use it as ``with``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = "http://127.0.0.1:8080",
        *,
        timeout: float = 10.0,
        connect_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = AsyncClient(
            api_key, base_url, timeout=timeout, connect_retries=connect_retries, transport=transport
        )
        self._runner = asyncio.Runner()
        self._closed = False

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._runner.run(coroutine)
        coroutine.close()
        raise RuntimeError(
            "Client blocks, and this thread is running an event loop: use AsyncClient, or asyncio.to_thread"
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections and its event loop (closing it again does nothing)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._client.aclose())
        finally:
            self._runner.close()

    def send_mms(
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
        """``sendmms``: see :meth:`AsyncClient.send_mms`."""
        return self._run(
            self._client.send_mms(
                service_id=service_id,
                to=to,
                sender=sender,
                slides=slides,
                subject=subject,
                fallback_sms_text=fallback_sms_text,
                disable_fallback_sms=disable_fallback_sms,
                disable_fallback_sms_link=disable_fallback_sms_link,
                fallback_sms_link_expiration=fallback_sms_link_expiration,
                mms_expiry=mms_expiry,
                client_reference=client_reference,
                from_mask=from_mask,
                cache_content=cache_content,
            )
        )

    def save_mms(
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
        """``savemms``: see :meth:`AsyncClient.save_mms`."""
        return self._run(
            self._client.save_mms(
                name=name,
                slides=slides,
                subject=subject,
                fallback_sms_text=fallback_sms_text,
                disable_fallback_sms=disable_fallback_sms,
                disable_fallback_sms_link=disable_fallback_sms_link,
                fallback_sms_link_expiration=fallback_sms_link_expiration,
                client_reference=client_reference,
            )
        )

    def send_saved_mms(
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
        """``sendsavedmms``: see :meth:`AsyncClient.send_saved_mms`."""
        return self._run(
            self._client.send_saved_mms(
                mms_id=mms_id,
                service_id=service_id,
                to=to,
                sender=sender,
                custom_slides=custom_slides,
                subject=subject,
                fallback_sms_text=fallback_sms_text,
                disable_fallback_sms=disable_fallback_sms,
                disable_fallback_sms_link=disable_fallback_sms_link,
                fallback_sms_link_expiration=fallback_sms_link_expiration,
                mms_expiry=mms_expiry,
                client_reference=client_reference,
                from_mask=from_mask,
            )
        )

    def message(self, tracking_id: str) -> dict[str, Any]:
        """``GET /v1/messages/{tracking-id}``: see :meth:`AsyncClient.message`."""
        return self._run(self._client.message(tracking_id))

    def template(self, mms_id: str) -> dict[str, Any]:
        """``GET /v1/templates/{mms-id}``: see :meth:`AsyncClient.template`."""
        return self._run(self._client.template(mms_id))
