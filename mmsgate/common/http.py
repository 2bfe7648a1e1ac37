"""HTTP answers in the API's shape, for every part that serves HTTP: JSON bodies, and ``failure`` bodies
that carry the contract's E-code (``{"status": "failure", "error-code", "error-info"}``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.responses import Response

from mmsgate.core.codes import ErrorCode
from mmsgate.errors import ApiError

_encoder = msgspec.json.Encoder()

RETRY_AFTER_SECONDS = 5
"""What ``Retry-After`` asks of a client answered 503 because the database is away for the moment."""
RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type="application/json")


def failure_body(code: ErrorCode, info: str, status: int = 200) -> tuple[int, bytes]:
    """A failure answer's status and body, encoded (the API endpoint sends them without a Response)."""
    return status, _encoder.encode({"status": "failure", "error-code": code.value, "error-info": info})


def failure(code: ErrorCode, info: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    status, body = failure_body(code, info, status)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def api_key_of(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's ``x-api-key`` (None without one), from its raw headers. Given twice it is refused E104,
    even twice the same: a proxy in front may have read the other one, so neither is the caller's for sure."""
    key = None
    for name, value in headers:
        if name == b"x-api-key":
            if key is not None:
                raise ApiError(ErrorCode.INVALID_API_KEY, "the x-api-key header is given more than once")
            key = value.decode("latin-1")
    return key
