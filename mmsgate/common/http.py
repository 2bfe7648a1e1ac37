"""HTTP answers in the API's shape, for every part that serves HTTP: JSON bodies, and ``failure`` bodies
that carry the contract's E-code (``{"status": "failure", "error-code", "error-info"}``)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from mmsgate.core.codes import ErrorCode

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
