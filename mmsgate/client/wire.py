"""What the client sends and what it makes of the answers: one request value per call, and its result.

Each call of :class:`~mmsgate.client.async_client.AsyncClient` builds one :class:`ApiRequest` (method, path,
JSON body, and how the answer's JSON object becomes the call's result) and hands it to the one method that
sends it. An action's request is checked with the contract's
:func:`~mmsgate.contract.precheck.precheck` as it is built, so a request the server would refuse for a rule
that needs no knowledge of the account is refused before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx

from mmsgate.client.errors import ApiFailure, ClientError
from mmsgate.contract.precheck import precheck
from mmsgate.errors import ApiError

T = TypeVar("T")

API_PATH = "/ep/v2/"
_SHOWN = 200
"""Characters of an unexpected answer quoted in an error."""


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


@dataclass(frozen=True, slots=True)
class ApiRequest(Generic[T]):
    """One call to the server: ``method`` and ``path`` (below the base URL), the JSON ``body`` (None for a GET),
    and ``result``, which turns the answer (a 2xx JSON object that is not a failure) into the call's result."""

    method: str
    path: str
    body: dict[str, Any] | None
    result: Callable[[httpx.Response, dict[str, Any]], T]


def action(name: str, fields: Mapping[str, Any]) -> ApiRequest[Accepted]:
    """``POST /ep/v2/`` of the action ``name``, its body the action and every field that is not None, in the
    order given; an :class:`ApiFailure` with ``status == 0`` if the contract's precheck refuses it."""
    body: dict[str, Any] = {"action": name}
    body.update((field, value) for field, value in fields.items() if value is not None)
    try:
        precheck(body, datetime.now(UTC))
    except ApiError as exc:
        raise ApiFailure(exc.code.value, exc.info, 0) from None
    return ApiRequest("POST", API_PATH, body, _accepted)


def view(path: str) -> ApiRequest[dict[str, Any]]:
    """``GET path``: a status view, whose result is the answer's JSON object as it is."""
    return ApiRequest("GET", path, None, _as_is)


def timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 UTC to the second, ``YYYY-MM-DDTHH:MM:SSZ``; a naive datetime is taken as UTC (as the server does)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_answer(response: httpx.Response) -> dict[str, Any]:
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
        raise ClientError(f"{where} answered with a body that is not a JSON object ({kind}): {_show(response.text)}")
    return data


def _accepted(response: httpx.Response, data: dict[str, Any]) -> Accepted:
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


def _as_is(response: httpx.Response, data: dict[str, Any]) -> dict[str, Any]:
    return data


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
