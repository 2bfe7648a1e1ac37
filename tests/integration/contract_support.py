"""Helpers shared by the contract tests (``test_contract_*.py``): calls, answers and dates."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

API = "/ep/v2/"
MIB = 1024 * 1024
ACCEPTED = "MMS request accepted and queued for processing and delivery."
SAVE_ACCEPTED = "Save MMS request accepted and queued for processing."
SEND_KEYS = {"status", "to", "tracking-id", "status-details"}
SAVE_KEYS = {"status", "tracking-id", "mms-id", "status-details"}
SEND_SAVED_KEYS = {"status", "mms-id", "tracking-id", "to", "from", "status-details"}
EVENT_KEYS = {"code", "status", "status-details", "timestamp"}

IMAGE = {"url": "https://media.example.com/a.jpg"}
AUDIO = {"url": "https://media.example.com/a.mp3"}
VIDEO = {"url": "https://media.example.com/a.mp4"}
CONTACT = {"url": "https://media.example.com/a.vcf"}
CALENDAR = {"url": "https://media.example.com/a.ics"}
PDF = {"url": "https://media.example.com/a.pdf"}
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

Json = dict[str, Any]


async def call(
    client: httpx.AsyncClient,
    api_key: str | None,
    body: Mapping[str, object] | bytes,
    *,
    path: str = API,
    params: Mapping[str, str] | None = None,
) -> Json:
    """POST an API call; every API answer is HTTP 200 with a JSON object."""
    headers = {"content-type": "application/json"}
    if api_key is not None:
        headers["x-api-key"] = api_key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = await client.post(path, content=content, headers=headers, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    answer = r.json()
    assert isinstance(answer, dict)
    return answer


async def view(client: httpx.AsyncClient, api_key: str, path: str) -> tuple[int, Json]:
    r = await client.get(path, headers={"x-api-key": api_key})
    answer = r.json()
    assert isinstance(answer, dict)
    return r.status_code, answer


def names(info: str, field: str) -> bool:
    """Whether ``info`` names ``field`` as a word of its own (``disable-fallback-sms`` is not in
    ``disable-fallback-sms-link``)."""
    return re.search(rf"(?<![\w-]){re.escape(field)}(?![\w-])", info) is not None


def assert_failure(answer: Json, code: str, *fields: str) -> None:
    """A failure answer with ``code`` whose error-info names each of ``fields``."""
    assert answer.get("status") == "failure", answer
    assert set(answer) == {"status", "error-code", "error-info"}, answer
    assert answer["error-code"] == code, answer
    info = answer["error-info"]
    assert isinstance(info, str)
    assert info.strip()
    for field in fields:
        assert names(info, field), f"error-info {info!r} does not name {field!r}"


def assert_sent(answer: Json, to: str) -> str:
    """A sendmms success answer, exactly as the contract shows it; returns the tracking-id."""
    assert answer.get("status") == "success", answer
    assert set(answer) == SEND_KEYS, answer
    assert answer["to"] == to
    assert answer["status-details"] == ACCEPTED
    tracking_id = answer["tracking-id"]
    assert isinstance(tracking_id, str)
    assert tracking_id
    return tracking_id


def assert_saved(answer: Json) -> str:
    """A savemms success answer; returns the mms-id."""
    assert answer.get("status") == "success", answer
    assert set(answer) == SAVE_KEYS, answer
    assert answer["status-details"] == SAVE_ACCEPTED
    for key in ("tracking-id", "mms-id"):
        assert isinstance(answer[key], str)
        assert answer[key]
    mms_id: str = answer["mms-id"]
    return mms_id


def assert_sent_saved(answer: Json, mms_id: str, to: str, sender: str) -> str:
    """A sendsavedmms success answer; returns the tracking-id."""
    assert answer.get("status") == "success", answer
    assert set(answer) == SEND_SAVED_KEYS, answer
    assert (answer["mms-id"], answer["to"], answer["from"]) == (mms_id, to, sender)
    assert answer["status-details"] == ACCEPTED
    tracking_id = answer["tracking-id"]
    assert isinstance(tracking_id, str)
    assert tracking_id
    return tracking_id


def now() -> datetime:
    return datetime.now(UTC)


def at(delta: timedelta) -> str:
    """now + ``delta`` as ISO 8601 UTC with a Z."""
    return (now() + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    assert ISO_Z.fullmatch(value), value
    return datetime.fromisoformat(value)


def text_slides(n: int) -> list[Json]:
    return [{"message-text": f"slide {i}"} for i in range(1, n + 1)]
