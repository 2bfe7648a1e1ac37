"""Hostile input never yields a 500, and every answer is a contract answer.

A *contract answer* (contract sections 1 and 6) is HTTP 200 with a JSON object whose ``status`` is
``success`` or ``failure``; a failure carries an ``error-code`` of the form ``E\\d{3}`` that is one of
section 6's codes and a non-empty ``error-info``; a success carries a ``tracking-id``. The one other
answer an API call may get here is 413, and only for a body over the configured limit.

Hostile input must also never reach the catch-all: E503 ("internal error") is a contract code, but the
endpoint answers it only when an unexpected exception escaped the checks, so it counts as a failure here.

Two parts:

* explicit cases (parametrised, on both store backends through the ``client``/``caller`` fixtures);
* property tests with hypothesis (SQLite only, marked ``sqlite_only`` in their names and docstrings):
  arbitrary JSON values, near-valid bodies of the three actions and raw bytes. Each is driven from a
  sync test on a module-scoped event loop, gateway and store, and every success answer is checked to
  be in the store (nothing answered success is lost).
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import string
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsgate.app import create_app
from mmsgate.config import Settings, load_settings
from mmsgate.core.codes import TemplateState
from mmsgate.errors import NotFound
from mmsgate.store import Store
from mmsgate.store.sqlite import SqliteStore
from tests.conftest import Caller, provision
from tests.store_support import message_ids

# ---------------------------------------------------------------------------------------------
# the contract answer

# Section 6 of the contract, every code it lists (E334 and E354 are "-" there: no such kind).
CONTRACT_CODES = frozenset(
    {
        *("E100", "E103", "E104", "E105", "E106", "E107", "E108", "E112", "E113", "E503"),
        *("E110", "E111", "E114", "E115"),
        *("E223", "E224", "E225", "E226", "E227", "E228", "E229"),
        *("E241", "E311", "E312", "E313", "E314"),
        *("E331", "E332", "E333", "E335", "E336", "E337", "E341"),
        *("E351", "E352", "E353", "E355", "E356", "E357"),
        *("E618", "E619", "E620", "E622", "E626", "E627", "E628", "E629"),
    }
)
CODE_PATTERN = re.compile(r"E\d{3}")
INTERNAL = "E503"
ENDPOINT = "/ep/v2/"


def contract_answer(response: httpx.Response, what: str = "") -> dict[str, Any]:
    """The answer's JSON object, after asserting it is a contract answer (see the module docstring)."""
    where = f" [{what}]" if what else ""
    assert response.status_code == 200, f"HTTP {response.status_code}{where}: {response.text[:500]}"
    try:
        data = json.loads(response.content)
    except ValueError:
        pytest.fail(f"the answer is not JSON{where}: {response.content[:500]!r}")
    assert isinstance(data, dict), f"the answer is not a JSON object{where}: {data!r:.500}"
    status = data.get("status")
    assert status in ("success", "failure"), f"status {status!r}{where}: {data!r:.500}"
    if status == "failure":
        code = data.get("error-code")
        info = data.get("error-info")
        assert isinstance(code, str), f"error-code {code!r}{where}: {data!r:.500}"
        assert CODE_PATTERN.fullmatch(code), f"error-code {code!r} is not E + 3 digits{where}"
        assert code in CONTRACT_CODES, f"error-code {code} is not a contract code{where}: {data!r:.500}"
        assert code != INTERNAL, f"hostile input reached the catch-all (E503){where}: {data!r:.500}"
        assert isinstance(info, str), f"error-info {info!r}{where}"
        assert info.strip(), f"empty error-info{where}: {data!r:.500}"
    else:
        tracking_id = data.get("tracking-id")
        assert isinstance(tracking_id, str), f"tracking-id {tracking_id!r}{where}: {data!r:.500}"
        assert tracking_id, f"empty tracking-id{where}"
    return data


def outcome(data: dict[str, Any]) -> str:
    """``success`` or the error code of a contract answer."""
    return "success" if data["status"] == "success" else str(data["error-code"])


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def headers(caller: Caller) -> dict[str, str]:
    return {"x-api-key": caller.api_key, "content-type": "application/json"}


async def post(client: httpx.AsyncClient, caller: Caller, content: bytes) -> httpx.Response:
    return await client.post(ENDPOINT, content=content, headers=headers(caller))


def replace_marker(body: dict[str, Any], literal: str) -> bytes:
    """The body encoded, with the string "__X__" replaced by ``literal`` (for non-JSON literals)."""
    text = json.dumps(body)
    assert '"__X__"' in text
    return text.replace('"__X__"', literal).encode()


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


def savemms_body() -> dict[str, Any]:
    return {
        "action": "savemms",
        "name": "promo",
        "fallback-sms-text": "See the picture",
        "slide": [{"message-text": "Hello", "image": {"url": "https://media.example.com/a.jpg"}}],
    }


def sendsavedmms_body(caller: Caller, mms_id: str) -> dict[str, Any]:
    return {
        "action": "sendsavedmms",
        "mms-id": mms_id,
        "service-id": caller.service_id,
        "to": caller.to,
        "from": caller.sender,
        "custom-slides": [{"custom-slide": "1", "custom-message-text": "Hi again"}],
    }


@pytest.fixture
async def ready_mms_id(client: httpx.AsyncClient, caller: Caller, store: Store) -> str:
    """A saved template of the caller's account, ready to send."""
    data = contract_answer(await post(client, caller, encode(savemms_body())))
    mms_id = str(data["mms-id"])
    await store.lifecycle.set_template_state(mms_id, TemplateState.READY, code="N003", details="ready")
    return mms_id


# ---------------------------------------------------------------------------------------------
# 1. explicit cases, both backends


@dataclass(frozen=True)
class Case:
    """A hostile body (built for the caller) and the outcome expected: success, an E-code, or None
    for any contract answer."""

    id: str
    make: Callable[[Caller], bytes]
    expect: str | None = None


def _body(**changes: Any) -> Callable[[Caller], bytes]:
    return lambda c: encode(c.body(**changes))


def _raw(content: bytes) -> Callable[[Caller], bytes]:
    return lambda _: content


def _marker(literal: str, **changes: Any) -> Callable[[Caller], bytes]:
    return lambda c: replace_marker(c.body(**changes), literal)


def _with_slide(slide: Any) -> Callable[[Caller], bytes]:
    return lambda c: encode(c.body(slide=slide))


def _dup(fragment: str) -> Callable[[Caller], bytes]:
    """The valid body with ``fragment`` (raw JSON members) inserted first in the object."""
    return lambda c: ("{" + fragment + "," + json.dumps(c.body())[1:]).encode()


def _dup_slide(slide_json: str) -> Callable[[Caller], bytes]:
    return lambda c: replace_marker(c.body(slide="__X__"), "[" + slide_json + "]")


def _huge(field_name: str, size: int) -> Callable[[Caller], bytes]:
    return lambda c: encode(c.body(**{field_name: "9" * size}))


BIG = 900 * 1024  # inside the 1 MiB limit, far over every field's own limit
URL = {"url": "https://media.example.com/a.jpg"}

GROUPS: dict[str, list[Case]] = {
    "malformed-json": [
        Case("truncated-object", _raw(b'{"action": "sendmms",'), "E108"),
        Case("single-quotes", _raw(b"{'action': 'sendmms'}"), "E108"),
        Case("missing-colon", _raw(b'{"action" "sendmms"}'), "E108"),
        Case("trailing-comma", _raw(b'{"action": "sendmms",}'), "E108"),
        Case("bare-word-value", _raw(b'{"action": sendmms}'), "E108"),
        Case("comment", _raw(b'/* hi */ {"action": "sendmms"}'), "E108"),
        Case("trailing-garbage", lambda c: encode(c.body()) + b" trailing", "E108"),
        Case("two-objects", lambda c: encode(c.body()) + encode(c.body()), "E108"),
        Case("unterminated-string", _raw(b'{"action": "sendmms'), "E108"),
        Case("bad-escape", _raw(b'{"action": "send\\qmms"}'), "E108"),
        Case("control-char-in-string", _raw(b'{"action": "send\x01mms"}'), "E108"),
        Case("nul-byte", _raw(b"\x00"), "E108"),
        Case("lone-brace", _raw(b"}"), "E108"),
    ],
    "not-an-object": [
        Case("empty-array", _raw(b"[]"), "E108"),
        Case("array-of-body", lambda c: encode([c.body()]), "E108"),
        Case("json-string", _raw(b'"sendmms"'), "E108"),
        Case("json-number", _raw(b"42"), "E108"),
        Case("json-float", _raw(b"-1.5e3"), "E108"),
        Case("json-null", _raw(b"null"), "E108"),
        Case("json-true", _raw(b"true"), "E108"),
        Case("json-false", _raw(b"false"), "E108"),
    ],
    "empty-body": [
        Case("empty-body", _raw(b""), "E108"),
        Case("whitespace-body", _raw(b" \n\t\r "), "E108"),
    ],
    "invalid-utf8": [
        Case("invalid-utf8-ff", lambda c: encode(c.body()).replace(b"Hello", b"Hel\xfflo"), "E108"),
        Case("invalid-utf8-overlong", lambda c: encode(c.body()).replace(b"Hello", b"Hel\xc0\xaflo"), "E108"),
        Case("invalid-utf8-cesu-surrogate", lambda c: encode(c.body()).replace(b"Hello", b"\xed\xa0\x80"), "E108"),
        Case("invalid-utf8-truncated", lambda c: encode(c.body()).replace(b"Hello", b"\xe2\x82"), "E108"),
        Case("invalid-utf8-in-key", _raw(b'{"act\xfeion": "sendmms"}'), "E108"),
        Case(
            "latin1-body",
            lambda c: json.dumps(c.body(slide=[{"message-text": "café"}]), ensure_ascii=False).encode("latin-1"),
            "E108",
        ),
        Case("utf16-body", lambda c: json.dumps(c.body()).encode("utf-16"), "E108"),
        Case("utf8-bom", lambda c: b"\xef\xbb\xbf" + encode(c.body())),
    ],
    "unknown-fields-ignored": [
        Case("unknown-field", _body(foo=1), "success"),
        Case("unknown-fields-many", lambda c: encode({**c.body(), **{f"x{i}": i for i in range(1000)}}), "success"),
        Case("unknown-field-nested", _body(extra={"a": [1, {"b": None}], "c": "d"}), "success"),
        Case("unknown-field-case", lambda c: encode({**c.body(), "Action": "nope", "TO": "x"}), "success"),
        Case("unknown-field-api-key", lambda c: encode({**c.body(), "x-api-key": "nope"}), "success"),
        Case("unknown-field-empty-name", lambda c: encode({**c.body(), "": 1}), "success"),
    ],
    "big-inside-limit": [
        Case("ten-thousand-slides", _with_slide([{"message-text": "x", "image": URL}] * 10_000), "E225"),
        Case("big-message-text", _with_slide([{"message-text": "x" * BIG}]), "E228"),
        Case("big-to", _huge("to", BIG), "E110"),
        Case("big-from", _huge("from", BIG), "E111"),
        Case("big-service-id", _huge("service-id", BIG), "E627"),
        Case("big-action", lambda c: encode(c.body(action="x" * BIG)), "E107"),
        Case("big-subject", lambda c: encode(c.body(message_subject="s" * BIG)), "E314"),
        Case("big-client-reference", lambda c: encode(c.body(client_reference="r" * BIG)), "E100"),
        Case("big-fallback-text", lambda c: encode(c.body(fallback_sms_text="f" * BIG)), "E100"),
        Case("big-unknown-key", lambda c: encode({**c.body(), "k" * BIG: 1}), "success"),
        Case("big-url", _with_slide([{"image": {"url": "https://e.com/" + "a" * BIG}}]), "E100"),
        Case("many-small-strings", _body(extra=["a"] * 150_000), "success"),
    ],
    "deep-nesting": [
        Case("nested-arrays-100k", _raw(nested(100_000).encode()), "E108"),
        Case("nested-objects-100k", _raw(nested(100_000, '{"a":', "}").encode()), "E108"),
        Case("nested-arrays-100k-in-slide", _marker(nested(100_000), slide="__X__"), "E108"),
        Case("nested-arrays-100k-in-unknown-field", _marker(nested(100_000), extra="__X__"), "E108"),
        Case("nested-arrays-900-in-slide", _marker(nested(900), slide="__X__"), "E100"),
        Case(
            "nested-objects-900-with-media-keys",
            _marker(nested(900, '{"image":', "}", '{"url": "https://e.com/a.jpg"}'), extra="__X__"),
        ),
        Case("nested-arrays-5000-in-unknown-field", _marker(nested(5_000), extra="__X__")),
    ],
    "duplicate-keys": [
        Case("dup-action-last-valid", _dup('"action": "bogus"'), "success"),
        Case("dup-to-last-valid", _dup('"to": "not a number"'), "success"),
        Case("dup-to-last-invalid", lambda c: (json.dumps(c.body())[:-1] + ', "to": "abc"}').encode(), "E110"),
        Case("dup-slide", _dup('"slide": 7'), "success"),
        Case(
            "dup-image-in-slide",
            _dup_slide('{"image": {"url": "https://a/1.jpg"}, "image": {"url": "https://a/2.jpg"}}'),
            "E223",
        ),
        Case("dup-message-text-in-slide", _dup_slide('{"message-text": "a", "message-text": "b"}'), "success"),
        Case("dup-pdf-null-then-set", _dup_slide('{"pdf": null, "pdf": {"url": "https://a/1.pdf"}}')),
        Case("dup-url-in-media", _dup_slide('{"image": {"url": 1, "url": "https://a/1.jpg"}}'), "success"),
        Case("media-key-in-text", _with_slide([{"message-text": '"image" "image"', "image": URL}]), "success"),
    ],
    "slide-shapes": [
        Case("slide-number", _with_slide([1]), "E100"),
        Case("slide-string", _with_slide(["x"]), "E100"),
        Case("slide-null-item", _with_slide([None]), "E100"),
        Case("slide-array-item", _with_slide([[]]), "E100"),
        Case("slide-bool-item", _with_slide([True]), "E100"),
        Case("slide-mixed-items", _with_slide([{"message-text": "a"}, 7]), "E100"),
        Case("slide-object", _with_slide({"message-text": "hi"}), "E100"),
        Case("slide-empty-object", _with_slide({}), "E100"),
        Case("slide-string-value", _with_slide("hi"), "E100"),
        Case("slide-empty-string", _with_slide(""), "E100"),
        Case("slide-empty-array", _with_slide([]), "E312"),
        Case("slide-empty-slide", _with_slide([{}]), "E313"),
        Case("slide-unknown-key", _with_slide([{"message-text": "a", "sound": URL}]), "E229"),
        Case("slide-key-like-internal-mark", _with_slide([{"message-text": "a", "\u0000repeated": "image"}]), "E229"),
        Case(
            "slide-key-like-internal-mark-big-value",
            _with_slide([{"message-text": "a", "\u0000repeated": "v" * BIG}]),
            "E229",
        ),
        Case("slide-key-nul", _with_slide([{"message-text": "a", "\u0000": 1}]), "E229"),
    ],
    "huge-numbers": [
        Case("huge-int-to", _body(to=10**400), "E110"),
        Case("huge-int-from", _body(**{"from": 10**400}), "E111"),
        Case("huge-int-service-id", _body(service_id=10**400), "E627"),
        Case("huge-negative-int-to", _body(to=-(10**400)), "E110"),
        Case("huge-int-4000-digits-to", _marker("9" * 4000, to="__X__"), "E110"),
        Case("huge-int-4400-digits-to", _marker("9" * 4400, to="__X__")),
        Case("huge-int-10000-digits-to", _marker("9" * 10_000, to="__X__")),
        Case("huge-int-10000-digits-unknown", _marker("9" * 10_000, extra="__X__")),
        Case("huge-int-cache-content", _body(cache_content=10**400), "E100"),
        Case("huge-int-subject", _body(message_subject=10**400), "E314"),
        Case("huge-int-message-text", _with_slide([{"message-text": 10**400}]), "E100"),
        Case("float-overflow-to", _marker("1e400", to="__X__")),
        Case("float-underflow-to", _marker("1e-400", to="__X__"), "E110"),
        Case("float-to", _body(to=15550100001.0), "E110"),
        Case("negative-zero-to", _marker("-0", to="__X__"), "E110"),
        Case("long-fraction-to", _marker("1." + "0" * 5000, to="__X__"), "E110"),
    ],
    "nan-infinity": [
        Case("nan-to", _marker("NaN", to="__X__"), "E108"),
        Case("infinity-to", _marker("Infinity", to="__X__"), "E108"),
        Case("minus-infinity-unknown", _marker("-Infinity", extra="__X__"), "E108"),
        Case("nan-in-slide", lambda c: replace_marker(c.body(slide=[{"message-text": "__X__"}]), "NaN"), "E108"),
        Case("nan-body", _raw(b"NaN"), "E108"),
    ],
    "lone-surrogates": [
        Case("lone-high-surrogate-in-text", _with_slide([{"message-text": "a\ud800b"}])),
        Case("lone-low-surrogate-in-text", _with_slide([{"message-text": "\udc00"}])),
        Case("reversed-surrogates-in-text", _with_slide([{"message-text": "\udc00\ud800"}])),
        Case("lone-surrogate-in-to", _body(to="1555\ud8000100001")),
        Case("lone-surrogate-in-action", _body(action="sendmms\ud800")),
        Case("lone-surrogate-in-client-reference", _body(client_reference="\ud800")),
        Case("lone-surrogate-top-level-key", lambda c: encode({**c.body(), "\ud800": 1})),
        Case("lone-surrogate-slide-key", _with_slide([{"message-text": "a", "\udfff": 1}])),
        Case("lone-surrogate-unknown-value", _body(extra=["\ud800", {"\udbff": "\udc00"}])),
        Case("surrogate-pair-emoji", _with_slide([{"message-text": "\U0001f600"}]), "success"),
    ],
    "nul-and-controls": [
        # PostgreSQL text cannot hold NUL: every backend refuses it, naming the field
        Case("nul-in-message-text", _with_slide([{"message-text": "a\u0000b"}]), "E100"),
        Case("nul-in-fallback-text", _body(fallback_sms_text="a\u0000b"), "E100"),
        Case("nul-in-subject", _body(message_subject="\u0000"), "E314"),
        Case("nul-in-client-reference", _body(client_reference="ref\u0000"), "E100"),
        Case("nul-in-url", _with_slide([{"image": {"url": "https://e.com/a\u0000.jpg"}}]), "E100"),
        Case("nul-in-service-id", _body(service_id="\u0000"), "E627"),
        Case("nul-in-to", _body(to="1555010000\u0000"), "E110"),
        Case("nul-in-from-mask", _body(from_mask="Shop\u0000"), "E115"),
        Case("nul-in-savemms-name", lambda _: encode({**savemms_body(), "name": "pro\u0000mo"}), "E311"),
        Case(
            "nul-in-savemms-text", lambda _: encode({**savemms_body(), "slide": [{"message-text": "\u0000"}]}), "E100"
        ),
        Case("nul-in-mms-id", lambda c: encode(sendsavedmms_body(c, "\u0000")), "E241"),
        Case("nul-in-unknown-field", _body(extra="\u0000", **{"\u0000": "\u0000"}), "success"),
        Case(
            "controls-in-text",
            _with_slide([{"message-text": "".join(map(chr, range(1, 32))) + "\u2028\u2029"}]),
            "success",
        ),
    ],
    "number-forms": [
        Case("to-fullwidth-digits", _body(to="１５５５０１０００１"), "E110"),
        Case("to-arabic-digits", _body(to="١٥٥٥٠١٠٠٠٠١"), "E110"),
        Case("to-plus-only", _body(to="+"), "E110"),
        Case("to-double-plus", _body(to="++15550100001"), "E110"),
        Case("to-plus-prefixed", _body(to="+15550100001"), "success"),
        Case("to-spaces", _body(to=" 15550100001 "), "E110"),
    ],
    "timestamp-edges": [
        Case("expiry-year-1", _body(mms_expiry_timestamp="0001-01-01T00:00:00+01:00"), "E100"),
        Case("expiry-year-9999", _body(mms_expiry_timestamp="9999-12-31T23:59:59-01:00"), "E100"),
        Case("link-expiry-year-9999", _body(fallback_sms_link_expiration="9999-12-31T23:59:59+14:00"), "E100"),
        Case("expiry-garbage", _body(mms_expiry_timestamp="2026-13-45T99:99:99Z"), "E100"),
        Case("expiry-huge-offset", _body(mms_expiry_timestamp="2030-01-01T00:00:00+99:00"), "E100"),
    ],
}


async def check_case(client: httpx.AsyncClient, caller: Caller, case: Case) -> None:
    content = case.make(caller)
    started = time.perf_counter()
    data = contract_answer(await post(client, caller, content), case.id)
    elapsed = time.perf_counter() - started
    if case.expect is not None:
        assert outcome(data) == case.expect, f"expected {case.expect}, answered {data!r:.300}"
    if data["status"] == "failure":
        # the answer names the problem without echoing the hostile input back
        assert len(data["error-info"]) < 1000, f"error-info of {len(data['error-info'])} characters"
    # answered quickly, not by work that grows with something hostile
    assert elapsed < 5.0, f"took {elapsed:.2f} s"


def first_line(exc: AssertionError) -> str:
    return (str(exc).splitlines() or ["AssertionError"])[0]


@pytest.mark.parametrize("group", list(GROUPS))
async def test_explicit_hostile_bodies(client: httpx.AsyncClient, caller: Caller, group: str) -> None:
    """Every case of the group is sent (one test per group keeps the per-test store setup affordable);
    all cases that fail are reported together, by case id."""
    problems: list[str] = []
    for case in GROUPS[group]:
        try:
            await check_case(client, caller, case)
        except AssertionError as exc:
            problems.append(f"{case.id}: {first_line(exc)}")
    assert not problems, "\n".join(problems)


async def test_ten_thousand_slides_is_fast(client: httpx.AsyncClient, caller: Caller) -> None:
    content = encode(caller.body(slide=[{"message-text": "x", "image": URL}] * 10_000))
    started = time.perf_counter()
    data = contract_answer(await post(client, caller, content))
    elapsed = time.perf_counter() - started
    assert outcome(data) == "E225"
    assert elapsed < 2.0, f"10,000 slides took {elapsed:.2f} s"


# wrong types for every field -----------------------------------------------------------------

WRONG: list[Any] = [
    0,
    12345,
    -1,
    1.5,
    1e300,
    10**30,
    True,
    False,
    "yes",
    "no",
    "TRUE ",
    "",
    " ",
    "\u0000",
    "null",
    None,
    {},
    {"a": 1},
    {"url": 1},
    [],
    ["x"],
    [None],
    [[]],
]

Path_ = tuple[str | int, ...]


def set_path(body: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the value at ``path`` replaced (None removes it, as 'not given')."""
    copy: Any = json.loads(json.dumps(body))
    target = copy
    for step in path[:-1]:
        target = target[step]
    last = path[-1]
    if value is None and isinstance(last, str):
        target.pop(last, None)
    else:
        target[last] = value
    return dict(copy)


def _paths(*names: str) -> list[Path_]:
    return [(n,) for n in names]


SENDMMS_FIELDS = (
    "action",
    "service-id",
    "to",
    "from",
    "from-mask",
    "message-subject",
    "fallback-sms-text",
    "disable-fallback-sms-link",
    "disable-fallback-sms",
    "fallback-sms-link-expiration",
    "mms-expiry-timestamp",
    "client-reference",
    "cache-content",
    "slide",
)
SENDMMS_SLIDES: list[dict[str, Any]] = [
    {"message-text": "Hello", "image": URL, "audio": {"url": "https://e.com/a.mp3"}},
    {"message-text": "Watch", "video": {"url": "https://e.com/a.mp4"}},
    {"contact": {"url": "https://e.com/a.vcf"}},
    {"calendar": {"url": "https://e.com/a.ics"}},
    {"pdf": {"url": "https://e.com/a.pdf"}},
]
SENDMMS_PATHS: list[Path_] = [
    *_paths(*SENDMMS_FIELDS),
    ("slide", 0),
    ("slide", 0, "message-text"),
    ("slide", 0, "image"),
    ("slide", 0, "image", "url"),
    ("slide", 0, "audio"),
    ("slide", 1, "video"),
    ("slide", 1, "video", "url"),
    ("slide", 2, "contact"),
    ("slide", 3, "calendar"),
    ("slide", 4, "pdf"),
    ("slide", 4, "pdf", "url"),
]
SAVEMMS_PATHS: list[Path_] = [
    *_paths(
        "action",
        "name",
        "message-subject",
        "fallback-sms-text",
        "disable-fallback-sms",
        "disable-fallback-sms-link",
        "fallback-sms-link-expiration",
        "client-reference",
        "slide",
    ),
    ("slide", 0),
    ("slide", 0, "message-text"),
    ("slide", 0, "image"),
    ("slide", 0, "image", "url"),
]
SENDSAVEDMMS_PATHS: list[Path_] = [
    *_paths(
        "action",
        "mms-id",
        "service-id",
        "to",
        "from",
        "from-mask",
        "message-subject",
        "fallback-sms-text",
        "disable-fallback-sms",
        "disable-fallback-sms-link",
        "fallback-sms-link-expiration",
        "mms-expiry-timestamp",
        "client-reference",
        "custom-slides",
    ),
    ("custom-slides", 0),
    ("custom-slides", 0, "custom-slide"),
    ("custom-slides", 0, "custom-message-text"),
]


def _path_id(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def full_sendmms_body(caller: Caller) -> dict[str, Any]:
    """A valid sendmms body giving every field, and a slide of every kind."""
    return caller.body(
        from_mask="Shop",
        message_subject="Hi",
        disable_fallback_sms_link=False,
        disable_fallback_sms=False,
        fallback_sms_link_expiration=(datetime.now(UTC) + timedelta(days=30)).isoformat(),
        mms_expiry_timestamp=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
        client_reference="ref-1",
        cache_content=True,
        slide=SENDMMS_SLIDES,
    )


async def _send_wrong_types(
    client: httpx.AsyncClient, caller: Caller, base: dict[str, Any], paths: list[Path_]
) -> None:
    """Each path in turn gets each wrong value; every answer must be a contract answer."""
    assert outcome(contract_answer(await post(client, caller, encode(base)))) == "success"
    problems: list[str] = []
    for path in paths:
        for value in WRONG:
            body = set_path(base, path, value)
            try:
                contract_answer(await post(client, caller, encode(body)), f"{_path_id(path)}={value!r}")
            except AssertionError as exc:
                problems.append(first_line(exc))
    assert not problems, "\n".join(problems)


async def test_sendmms_wrong_types(client: httpx.AsyncClient, caller: Caller) -> None:
    await _send_wrong_types(client, caller, full_sendmms_body(caller), SENDMMS_PATHS)


async def test_savemms_wrong_types(client: httpx.AsyncClient, caller: Caller) -> None:
    await _send_wrong_types(client, caller, savemms_body(), SAVEMMS_PATHS)


async def test_sendsavedmms_wrong_types(client: httpx.AsyncClient, caller: Caller, ready_mms_id: str) -> None:
    await _send_wrong_types(client, caller, sendsavedmms_body(caller, ready_mms_id), SENDSAVEDMMS_PATHS)


TYPED: list[tuple[str, Any, str]] = [
    ("from-mask", None, "success"),
    ("message-subject", None, "success"),
    ("client-reference", None, "success"),
    ("cache-content", None, "success"),
    ("disable-fallback-sms", "yes", "E100"),
    ("disable-fallback-sms-link", 1, "E100"),
    ("cache-content", [], "E100"),
    ("disable-fallback-sms", "TRUE", "success"),
    ("service-id", None, "E627"),
    ("service-id", {}, "E627"),
    ("to", None, "E110"),
    ("to", True, "E110"),
    ("to", ["15550100001"], "E110"),
    ("from", None, "E111"),
    ("from", 1.5, "E111"),
    ("from-mask", 123, "E115"),
    ("message-subject", 1, "E314"),
    ("fallback-sms-text", 7, "E622"),
    ("fallback-sms-text", None, "E622"),
    ("client-reference", {"a": 1}, "E100"),
    ("mms-expiry-timestamp", 1767225600, "E100"),
    ("slide", None, "E312"),
    ("action", None, "E107"),
    ("action", 1, "E107"),
    ("action", ["sendmms"], "E107"),
    ("action", "SENDMMS", "success"),
]


async def test_sendmms_wrong_type_outcomes(client: httpx.AsyncClient, caller: Caller) -> None:
    """Where the contract says which code a wrong type gets, that code is answered."""
    problems: list[str] = []
    for name, value, expect in TYPED:
        body = set_path(full_sendmms_body(caller), (name,), value)
        try:
            data = contract_answer(await post(client, caller, encode(body)), f"{name}={value!r}")
            assert outcome(data) == expect, f"{name}={value!r}: expected {expect}, answered {data!r:.300}"
        except AssertionError as exc:
            problems.append(first_line(exc))
    assert not problems, "\n".join(problems)


# authentication comes first, whatever the body ------------------------------------------------

NO_KEY: list[tuple[str | None, bytes]] = [
    (None, b"not json"),
    ("", b"[]"),
    ("nope", b'{"action": "sendmms"}'),
    ("x" * 8000, b"\xff\xfe"),
    ("nope", b""),
    ("nope", nested(100_000).encode()),
]


async def test_hostile_body_without_valid_key(client: httpx.AsyncClient, caller: Caller) -> None:
    problems: list[str] = []
    for key, content in NO_KEY:
        sent = {} if key is None else {"x-api-key": key}
        what = f"key {key!r:.20} body {content!r:.30}"
        try:
            data = contract_answer(await client.post(ENDPOINT, content=content, headers=sent), what)
            assert outcome(data) == "E104", f"{what}: {data!r:.300}"
        except AssertionError as exc:
            problems.append(first_line(exc))
    assert not problems, "\n".join(problems)


async def test_content_type_is_ignored(client: httpx.AsyncClient, caller: Caller) -> None:
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x", "", "a/b"]:
        sent = {"x-api-key": caller.api_key, "content-type": content_type}
        data = contract_answer(await client.post(ENDPOINT, content=encode(caller.body()), headers=sent))
        assert outcome(data) == "success", (content_type, data)


# the body limit ---------------------------------------------------------------------------------


def padded(caller: Caller, size: int) -> bytes:
    """A valid sendmms body of exactly ``size`` bytes (padded by an unknown field)."""
    empty = encode({**caller.body(), "pad": ""})
    assert len(empty) <= size
    content = encode({**caller.body(), "pad": "p" * (size - len(empty))})
    assert len(content) == size
    return content


async def test_body_limit(client: httpx.AsyncClient, caller: Caller, settings: Settings) -> None:
    """With Content-Length: at the limit the body is answered; over it (by 1 byte, or 2 MiB) 413."""
    limit = settings.max_body_bytes
    data = contract_answer(await post(client, caller, padded(caller, limit)))
    assert outcome(data) == "success", data
    for size in (limit + 1, 2 * 1024 * 1024):
        response = await post(client, caller, padded(caller, size))
        assert response.status_code == 413, (size, response.text[:300])


async def test_streamed_body_limit(client: httpx.AsyncClient, caller: Caller, settings: Settings) -> None:
    """Without Content-Length (chunked) the limit is enforced while reading."""

    async def chunks(content: bytes, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(content), size):
            yield content[start : start + size]

    limit = settings.max_body_bytes
    response = await client.post(ENDPOINT, content=chunks(padded(caller, limit), 1000), headers=headers(caller))
    assert "content-length" not in response.request.headers
    assert outcome(contract_answer(response)) == "success", response.text[:300]
    for size in (limit + 1, 2 * 1024 * 1024):
        content = padded(caller, size)
        response = await client.post(ENDPOINT, content=chunks(content, 64 * 1024), headers=headers(caller))
        assert response.status_code == 413, (size, response.text[:300])


# ---------------------------------------------------------------------------------------------
# 2. property tests (SQLite only): one gateway on a module-scoped event loop


class Ref(enum.Enum):
    """A value known only once the harness has provisioned its account."""

    SERVICE_ID = "service-id"
    SERVICE_ID_INT = "service-id as a number"
    SENDER = "from"
    SENDER_PLUS = "+from"
    SENDER_INT = "from as a number"
    MMS_ID = "a ready template"
    PROCESSING_MMS_ID = "a template still processing"
    VALID_BODY = "a valid sendmms body"


@dataclass
class Harness:
    """A gateway over a SQLite store on its own event loop, with a provisioned caller."""

    loop: asyncio.AbstractEventLoop
    store: SqliteStore
    http: httpx.AsyncClient
    caller: Caller
    mms_id: str
    processing_mms_id: str
    outcomes: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    def resolve(self, value: Any) -> Any:
        if not isinstance(value, Ref):
            return value
        c = self.caller
        return {
            Ref.SERVICE_ID: c.service_id,
            Ref.SERVICE_ID_INT: int(c.service_id) if c.service_id.isdigit() else c.service_id,
            Ref.SENDER: c.sender,
            Ref.SENDER_PLUS: "+" + c.sender,
            Ref.SENDER_INT: int(c.sender),
            Ref.MMS_ID: self.mms_id,
            Ref.PROCESSING_MMS_ID: self.processing_mms_id,
            Ref.VALID_BODY: c.body(),
        }[value]

    def summary(self, *kinds: str) -> str:
        """How many requests of these kinds got each outcome."""
        counts = {key: n for key, n in sorted(self.outcomes.items()) if key.split()[0] in kinds}
        return f"{sum(counts.values())} requests: " + ", ".join(f"{key} {n}" for key, n in counts.items())

    def send(self, content: bytes, kind: str) -> dict[str, Any]:
        """Post ``content``, check the answer is a contract answer and that a success was stored."""
        return self.loop.run_until_complete(self._send(content, kind))

    async def _send(self, content: bytes, kind: str) -> dict[str, Any]:
        response = await self.http.post(ENDPOINT, content=content, headers=headers(self.caller))
        self.requests += 1
        data = contract_answer(response, f"body {content[:300]!r}")
        if data["status"] == "success":
            await self._assert_stored(data)
        self.outcomes[f"{kind} {outcome(data)}"] += 1
        return data

    async def _assert_stored(self, data: dict[str, Any]) -> None:
        tracking_id = str(data["tracking-id"])
        if "to" in data:  # sendmms or sendsavedmms: a message
            counts = await message_ids(self.store, [tracking_id])
            assert counts.get(tracking_id) == 1, f"message {tracking_id} answered success but not stored"
            message = await self.store.messages.get_message(self.caller.account_id, tracking_id)
            assert message.to == data["to"]
        else:  # savemms: a template
            mms_id = str(data["mms-id"])
            try:
                template = await self.store.messages.get_template(self.caller.account_id, mms_id)
            except NotFound:
                pytest.fail(f"template {mms_id} answered success but not stored")
            assert template.tracking_id == tracking_id


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    data_dir: Path = tmp_path_factory.mktemp("hostile")
    store = SqliteStore(data_dir / "store.sqlite3")
    app_settings = load_settings(data_dir=data_dir / "data", auth_cache_seconds=0.0)

    async def start() -> Harness:
        await store.migrate()
        await store.open()
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(app_settings, store)), base_url="http://gateway.test"
        )
        caller = await provision(store)
        mms_ids: list[str] = []
        for _ in range(2):
            response = await http.post(ENDPOINT, content=encode(savemms_body()), headers=headers(caller))
            mms_ids.append(str(contract_answer(response)["mms-id"]))
        await store.lifecycle.set_template_state(mms_ids[0], TemplateState.READY, code="N003", details="ready")
        return Harness(loop, store, http, caller, mms_ids[0], mms_ids[1])

    the_harness = loop.run_until_complete(start())
    try:
        yield the_harness
    finally:

        async def stop() -> None:
            await the_harness.http.aclose()
            await store.close()

        loop.run_until_complete(stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


PROPERTY_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "database": None,  # nothing written next to the sources
    "print_blob": True,  # a failure prints @reproduce_failure(...) to replay it
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}

# strategies ---------------------------------------------------------------------------------

ACTIONS = ("sendmms", "savemms", "sendsavedmms")
SLIDE_KEYS = ("message-text", "image", "audio", "video", "contact", "calendar", "pdf")
ALL_FIELDS = (
    *SENDMMS_FIELDS,
    "name",
    "mms-id",
    "custom-slides",
)


class Drop(enum.Enum):
    """A field left out of a near-valid body."""

    DROP = "drop"


# (a) any JSON value: text with lone surrogates now and then, floats with NaN and infinities
hostile_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(categories=["Cs", "Lu", "Nd", "Cc"]), max_size=4),
)
any_leaf: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(),
    st.text(max_size=12),
    hostile_text,
)


def _json_of(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[str], max_leaves: int) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=max_leaves,
    )


any_json = _json_of(any_leaf, hostile_text, 12)
small_json = _json_of(any_leaf, hostile_text, 4)
# finite and surrogate-free: replacement values that get past the parser, to reach the checks
plain_json = _json_of(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)
    ),
    st.text(max_size=8),
    6,
)


@st.composite
def arbitrary_json_body(draw: st.DrawFn) -> bytes:
    """Any JSON value, or an object with a real action and arbitrary (often real) fields; encoded
    with \\u escapes or as raw UTF-8 (lone surrogates then become invalid CESU-8 bytes)."""
    value = draw(
        st.one_of(
            any_json,
            st.builds(
                lambda a, rest: {**rest, "action": a},
                st.sampled_from(ACTIONS),
                st.dictionaries(st.one_of(st.sampled_from(ALL_FIELDS), hostile_text), small_json, max_size=5),
            ),
        )
    )
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


# (b) near-valid bodies
LETTERS = string.ascii_letters + string.digits + " .,!?-"
MASK_CHARS = string.ascii_letters + string.digits + "_-"
TZ_0530 = timezone(timedelta(hours=5, minutes=30))


def _moment(seconds: int, style: int) -> str:
    """Now plus ``seconds``, in one of the ISO 8601 forms a client may send."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    if style == 0:
        return moment.isoformat()
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 2:
        return moment.astimezone(TZ_0530).isoformat()
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")


short_text = st.text(alphabet=LETTERS, min_size=1, max_size=20).filter(str.strip)
booleans_valid = st.sampled_from([True, False, "true", "false", "TRUE", "False"])
booleans_plausible = st.sampled_from(["yes", "no", "1", 1, 0, "", "true ", "t"])
styles = st.integers(0, 3)
moment_plausible = st.one_of(
    st.builds(_moment, st.integers(-(10**9), 10**9), styles),
    st.sampled_from(["", "now", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]),
    st.text(alphabet="0123456789-:TZ+. ", max_size=25),
)
valid_url = st.one_of(
    st.sampled_from(["https://media.example.com/a.jpg", "http://cdn.example.org/x/y.png?s=1#f", "HTTPS://E.COM/a"]),
    st.builds(lambda p: "https://media.example.com/" + p, st.text(alphabet=string.ascii_letters + "/._-", max_size=12)),
)
media_valid = st.builds(lambda u: {"url": u}, valid_url)
media_plausible = st.one_of(
    st.builds(lambda u: {"url": u}, st.text(max_size=20)),
    st.sampled_from(
        [
            {"url": "ftp://e.com/a"},
            {"url": "https://"},
            {"url": "https:///a"},
            {"url": "http://a b"},
            {"url": "https://e.com/" + "a" * 2100},
            {"url": None},
            {"href": "https://e.com/a"},
        ]
    ),
    st.builds(lambda u, extra: {"url": u, **extra}, valid_url, st.dictionaries(st.text(max_size=5), plain_json)),
    plain_json,
)
MEDIA_COMBOS = [(), ("image",), ("audio",), ("video",), ("image", "audio"), ("contact",), ("calendar",), ("pdf",)]


@st.composite
def valid_slide(draw: st.DrawFn) -> dict[str, Any]:
    combo = draw(st.sampled_from(MEDIA_COMBOS))
    slide: dict[str, Any] = {kind: draw(media_valid) for kind in combo}
    if not combo or draw(st.booleans()):
        slide["message-text"] = draw(st.one_of(short_text, st.text(max_size=20)).filter(str.strip))
    return slide


hostile_slide = st.one_of(
    st.dictionaries(
        st.one_of(st.sampled_from([*SLIDE_KEYS, "url", "Image", "text", "\u0000repeated"]), st.text(max_size=6)),
        st.one_of(media_valid, media_plausible, st.text(max_size=12), st.sampled_from(["x" * 5000, "x" * 5001])),
        max_size=4,
    ),
    plain_json,
)
slides_valid = st.lists(valid_slide(), min_size=1, max_size=3)
slides_plausible = st.one_of(
    st.lists(st.one_of(valid_slide(), hostile_slide), max_size=4),
    st.builds(lambda n, s: [s] * n, st.sampled_from([0, 8, 9, 50]), valid_slide()),
)
custom_slide_plausible = st.fixed_dictionaries(
    {},
    optional={
        "custom-slide": st.one_of(st.integers(-2, 3), st.sampled_from(["0", "2", "١", "1.0", "+1", " 1 "]), plain_json),
        "custom-message-text": st.one_of(st.text(max_size=12), st.just("x" * 5001), plain_json),
        "extra": plain_json,
    },
)
custom_slides_valid = st.lists(
    st.fixed_dictionaries({"custom-slide": st.sampled_from([1, "1"]), "custom-message-text": st.text(max_size=20)}),
    max_size=2,
)
custom_slides_plausible = st.lists(st.one_of(custom_slide_plausible, plain_json), max_size=3)
SLIDES_FIELD = {"sendmms": "slide", "savemms": "slide", "sendsavedmms": "custom-slides"}
PLAUSIBLE_SLIDES = {"sendmms": slides_plausible, "savemms": slides_plausible, "sendsavedmms": custom_slides_plausible}


def _field(valid: st.SearchStrategy[Any], plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value in a near-valid body: valid, plausibly wrong, any JSON value, or left out."""
    return st.one_of(valid, plausible, plain_json, st.just(Drop.DROP))


def _variants() -> dict[str, dict[str, st.SearchStrategy[Any]]]:
    to = _field(
        st.sampled_from(["15550100001", "+15550100001", 15550100001, "447700900123"]),
        st.one_of(st.text(alphabet="0123456789+ -", max_size=16), st.sampled_from(["0015550100001", "28444", "1"])),
    )
    sender = _field(
        st.sampled_from([Ref.SENDER, Ref.SENDER_PLUS, Ref.SENDER_INT]),
        st.one_of(st.sampled_from(["28445", "12", "+", "0028444"]), st.text(alphabet="0123456789+", max_size=16)),
    )
    service = _field(st.sampled_from([Ref.SERVICE_ID, Ref.SERVICE_ID_INT]), st.sampled_from(["", "0", "x", 0, -1]))
    common = {
        "from-mask": _field(
            st.text(alphabet=MASK_CHARS, min_size=1, max_size=11).filter(lambda m: not m.isdigit()),
            st.one_of(st.text(max_size=12), st.sampled_from(["", "12345", "a" * 12, "Shop!"])),
        ),
        "message-subject": _field(st.text(max_size=80), st.one_of(st.text(max_size=12), st.just("s" * 81))),
        "fallback-sms-text": _field(short_text, st.sampled_from(["", "   ", "f" * 1600, "f" * 1601, "\u0000"])),
        "disable-fallback-sms-link": _field(booleans_valid, booleans_plausible),
        "disable-fallback-sms": _field(booleans_valid, booleans_plausible),
        "fallback-sms-link-expiration": _field(
            st.builds(_moment, st.integers(120, 300 * 86400), styles), moment_plausible
        ),
        "client-reference": _field(st.text(max_size=64), st.one_of(st.text(max_size=12), st.just("r" * 65))),
    }
    expiry = _field(st.builds(_moment, st.integers(120, 2 * 86400), styles), moment_plausible)
    slide = _field(slides_valid, slides_plausible)
    return {
        "sendmms": {
            "action": _field(st.sampled_from(["sendmms", "SENDMMS", "sendMMS"]), st.sampled_from(ACTIONS)),
            "service-id": service,
            "to": to,
            "from": sender,
            **common,
            "mms-expiry-timestamp": expiry,
            "cache-content": _field(booleans_valid, booleans_plausible),
            "slide": slide,
        },
        "savemms": {
            "action": _field(st.sampled_from(["savemms", "SaveMMS"]), st.sampled_from(ACTIONS)),
            "name": _field(short_text, st.sampled_from(["", " ", "n" * 255, "n" * 256])),
            **common,
            "slide": slide,
        },
        "sendsavedmms": {
            "action": _field(st.sampled_from(["sendsavedmms", "SendSavedMMS"]), st.sampled_from(ACTIONS)),
            "mms-id": _field(
                st.just(Ref.MMS_ID),
                st.one_of(
                    st.sampled_from([Ref.PROCESSING_MMS_ID, "", " ", "x" * 65, 0]),
                    st.builds(lambda: str(uuid.uuid4())),
                ),
            ),
            "service-id": service,
            "to": to,
            "from": sender,
            **common,
            "mms-expiry-timestamp": expiry,
            "custom-slides": _field(custom_slides_valid, custom_slides_plausible),
        },
    }


VARIANTS = _variants()
CANONICAL: dict[str, dict[str, Any]] = {
    "sendmms": {
        "action": "sendmms",
        "service-id": Ref.SERVICE_ID,
        "to": "15550100001",
        "from": Ref.SENDER,
        "fallback-sms-text": "See the picture",
        "slide": [{"message-text": "Hello", "image": URL}],
    },
    "savemms": {"action": "savemms", "name": "promo", "slide": [{"message-text": "Hello", "image": URL}]},
    "sendsavedmms": {
        "action": "sendsavedmms",
        "mms-id": Ref.MMS_ID,
        "service-id": Ref.SERVICE_ID,
        "to": "15550100001",
        "from": Ref.SENDER,
    },
}


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, dict[str, Any], bool]:
    """A valid body of one action with one to three of its fields (or all but the action, or only the
    slides) made valid, plausibly wrong, any JSON value or left out; now and then with unknown fields
    or another action's fields."""
    action = draw(st.sampled_from(ACTIONS))
    variants = VARIANTS[action]
    names = list(variants)
    body = dict(CANONICAL[action])
    mode = draw(st.integers(0, 7))
    if mode == 0:  # every field but the action (a wrong action hides the rest)
        touched = names[1:]
    elif mode <= 2:  # only the slides, plausibly wrong: they are checked last, after every other field
        touched = []
        slides = SLIDES_FIELD[action]
        body[slides] = draw(PLAUSIBLE_SLIDES[action])
    else:
        touched = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    for name in touched:
        value = draw(variants[name])
        if value is Drop.DROP:
            body.pop(name, None)
        else:
            body[name] = value
    extra = draw(st.sampled_from(["none"] * 8 + ["unknown", "other-action"]))
    if extra == "unknown":
        body.update(
            {
                k: v
                for k, v in draw(st.dictionaries(st.text(max_size=8), plain_json, max_size=2)).items()
                if k not in ALL_FIELDS
            }
        )
    elif extra == "other-action":
        body.setdefault(draw(st.sampled_from(ALL_FIELDS)), draw(plain_json))
    return action, body, draw(st.booleans())


# (c) raw bytes
@st.composite
def raw_bytes_body(draw: st.DrawFn) -> tuple[bytes | Ref, list[tuple[float, str, int]]]:
    """Random bytes, random bytes inside an object, or a valid body with a few bytes changed."""
    base: bytes | Ref = draw(
        st.one_of(
            st.binary(max_size=300),
            st.builds(lambda b: b'{"action": "sendmms", ' + b + b"}", st.binary(max_size=100)),
            st.just(Ref.VALID_BODY),
        )
    )
    if base is not Ref.VALID_BODY:
        return base, []
    mutations = st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["flip", "insert", "delete", "set"]), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    )
    return base, draw(mutations)


def mutate(content: bytes, mutations: list[tuple[float, str, int]]) -> bytes:
    data = bytearray(content)
    for where, op, byte in mutations:
        i = min(int(where * len(data)), max(len(data) - 1, 0))
        if op == "insert":
            data.insert(i, byte)
        elif not data:
            continue
        elif op == "delete":
            del data[i]
        elif op == "flip":
            data[i] ^= 1 << (byte % 8)
        else:
            data[i] = byte
    return bytes(data)


# the property tests -------------------------------------------------------------------------


def test_property_sqlite_only_near_valid_bodies(harness: Harness) -> None:
    """SQLite only. Near-valid sendmms/savemms/sendsavedmms bodies get contract answers, and every
    success is stored."""

    @settings(max_examples=1500, **PROPERTY_SETTINGS)
    @given(near_valid())
    def run(example: tuple[str, dict[str, Any], bool]) -> None:
        action, plan, ascii_only = example
        body = {name: harness.resolve(value) for name, value in plan.items()}
        harness.send(json.dumps(body, ensure_ascii=ascii_only).encode(), action)

    run()
    print(f"\nnear-valid bodies: {harness.summary(*ACTIONS)}")
    for action in ACTIONS:
        assert harness.outcomes[f"{action} success"] > 0, f"no {action} body was ever accepted: {harness.outcomes}"


def test_property_sqlite_only_arbitrary_json(harness: Harness) -> None:
    """SQLite only. Any JSON value (NaN, infinities and lone surrogates included) gets a contract answer."""

    @settings(max_examples=800, **PROPERTY_SETTINGS)
    @given(arbitrary_json_body())
    def run(content: bytes) -> None:
        harness.send(content, "json")

    run()
    print(f"\narbitrary JSON: {harness.summary('json')}")


def test_property_sqlite_only_raw_bytes(harness: Harness) -> None:
    """SQLite only. Random bytes and mutated valid bodies get contract answers."""

    @settings(max_examples=500, **PROPERTY_SETTINGS)
    @given(raw_bytes_body())
    def run(example: tuple[bytes | Ref, list[tuple[float, str, int]]]) -> None:
        base, mutations = example
        content = encode(harness.resolve(base)) if isinstance(base, Ref) else base
        harness.send(mutate(content, mutations), "bytes")

    run()
    print(f"\nraw bytes: {harness.summary('bytes')}; {harness.requests} requests in all")
