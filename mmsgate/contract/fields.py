"""The contract's limits and its rules for single fields (section 1 of the API contract), as pure functions.

Each ``read_*`` function takes a field from a parsed body, checks it and returns its value, or raises
:class:`~mmsgate.errors.ApiError` with the field's E-code and a sentence naming the field and the problem.
JSON ``null`` counts as "not given" for every optional field. The numbers' rules are in
:mod:`mmsgate.contract.numbers`, the slides' in :mod:`mmsgate.contract.slides`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from mmsgate.core.codes import ErrorCode
from mmsgate.core.model import AccountConfig
from mmsgate.errors import ApiError

MAX_SLIDES = 8
MAX_TEXT = 5000
MAX_SUBJECT = 80
MAX_CLIENT_REFERENCE = 64
MAX_NAME = 255
MAX_FALLBACK_TEXT = 1600
MAX_URL = 2048
MMS_EXPIRY_MAX = timedelta(days=3)
CLOCK_GRACE = timedelta(minutes=1)
ACTIONS = ("sendmms", "savemms", "sendsavedmms")

_MASK = re.compile(r"[A-Za-z0-9_-]{1,11}")


def fail(code: ErrorCode, info: str) -> ApiError:
    return ApiError(code, info)


def show(value: Any) -> str:
    """A value as an error sentence quotes it: JSON (a string in quotes), cut to 40 characters."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_string(data: dict[str, Any], field: str, code: ErrorCode, *, max_len: int, required: bool) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise fail(code, f"{field} is required")
        return None
    if not isinstance(value, str):
        raise fail(code, f"{field} must be a string, not {show(value)}")
    if required and not value.strip():
        raise fail(code, f"{field} must not be empty")
    if len(value) > max_len:
        raise fail(code, f"{field} is {len(value)} characters long; at most {max_len} are allowed")
    return value


def read_boolean(data: dict[str, Any], field: str, default: bool) -> bool:
    value = data.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(ErrorCode.INVALID_REQUEST, f"{field} must be true or false, not {show(value)}")


def read_quiet_boolean(data: dict[str, Any], field: str, default: bool) -> bool:
    """The value to decide by before the field's own turn comes (its errors are reported then)."""
    try:
        return read_boolean(data, field, default)
    except ApiError:
        return default


def one_year_after(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def _moment(data: dict[str, Any], field: str, now: datetime, latest: datetime, limit: str) -> datetime | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(ErrorCode.INVALID_REQUEST, f"{field} must be an ISO 8601 date-time string, not {show(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(
            ErrorCode.INVALID_REQUEST,
            f"{field} {show(value)} is not an ISO 8601 date-time (e.g. 2026-06-07T12:00:00Z)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        raise fail(ErrorCode.INVALID_REQUEST, f"{field} {value} is not in the future")
    if moment > latest + CLOCK_GRACE:
        raise fail(ErrorCode.INVALID_REQUEST, f"{field} {value} is more than {limit} ahead")
    return moment.astimezone(UTC)


def read_service_id(data: dict[str, Any], config: AccountConfig | None) -> str:
    value = data.get("service-id")
    if value is None:
        raise fail(ErrorCode.SERVICE_ID_INVALID, "service-id is required")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise fail(ErrorCode.SERVICE_ID_INVALID, f"service-id must be a campaign id, not {show(value)}")
    if config is not None and value not in config.service_ids:
        raise fail(ErrorCode.SERVICE_ID_INVALID, f"service-id {show(value)} is not a campaign of this account")
    return value


def read_from_mask(data: dict[str, Any]) -> str | None:
    value = data.get("from-mask")
    if value is None:
        return None
    if not isinstance(value, str) or not _MASK.fullmatch(value) or value.isdigit():
        raise fail(
            ErrorCode.INVALID_SENDER_MASK,
            f"from-mask {show(value)} must be 1-11 characters of A-Z, a-z, 0-9, _ or -, not all digits",
        )
    return value


def read_fallback_text(data: dict[str, Any], disabled: bool) -> str | None:
    value = data.get("fallback-sms-text")
    if value is not None and not isinstance(value, str):
        raise fail(ErrorCode.FALLBACK_TEXT_REQUIRED, f"fallback-sms-text must be a string, not {show(value)}")
    if not disabled and (value is None or not value.strip()):
        raise fail(
            ErrorCode.FALLBACK_TEXT_REQUIRED,
            "fallback-sms-text is required unless disable-fallback-sms is true",
        )
    if value is not None and len(value) > MAX_FALLBACK_TEXT:
        raise fail(
            ErrorCode.INVALID_REQUEST,
            f"fallback-sms-text is {len(value)} characters long; at most {MAX_FALLBACK_TEXT} are allowed",
        )
    return value


def read_link_expiration(data: dict[str, Any], now: datetime) -> datetime | None:
    return _moment(data, "fallback-sms-link-expiration", now, one_year_after(now), "1 year")


def read_mms_expiry(data: dict[str, Any], now: datetime) -> datetime:
    moment = _moment(data, "mms-expiry-timestamp", now, now + MMS_EXPIRY_MAX, "3 days")
    return moment or now + MMS_EXPIRY_MAX


def read_client_reference(data: dict[str, Any]) -> str | None:
    return read_string(
        data, "client-reference", ErrorCode.INVALID_REQUEST, max_len=MAX_CLIENT_REFERENCE, required=False
    )


def read_subject(data: dict[str, Any]) -> str | None:
    return read_string(data, "message-subject", ErrorCode.SUBJECT_INVALID, max_len=MAX_SUBJECT, required=False)
