"""Contract sections 1 (transport), 2.1 (sendmms), 2.4 (slides) and 6 (error codes, precedence).

Every rule has a test that fails when the rule breaks. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mmsgate.app import Gateway, create_app
from mmsgate.config import Settings, load_settings
from mmsgate.core.model import NumberKind
from mmsgate.store import Store
from mmsgate.store.postgres import PostgresStore
from mmsgate.store.sqlite import SqliteStore
from tests.conftest import Caller, provision
from tests.integration.contract_support import (
    API,
    AUDIO,
    CALENDAR,
    CONTACT,
    EVENT_KEYS,
    IMAGE,
    MIB,
    PDF,
    VIDEO,
    Json,
    assert_failure,
    assert_sent,
    at,
    call,
    now,
    parse_iso,
    text_slides,
    view,
)
from tests.store_support import message_ids
from tests.waiting import eventually

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


async def send(client: httpx.AsyncClient, caller: Caller, **changes: object) -> Json:
    return await call(client, caller.api_key, caller.body(**changes))


async def send_slides(client: httpx.AsyncClient, caller: Caller, slides: list[Any]) -> Json:
    return await call(client, caller.api_key, caller.body(slide=slides))


# ---------------------------------------------------------------------------------------------
# section 1: transport


@pytest.fixture
async def app(store: Store, settings: Settings) -> Gateway:
    return create_app(settings, store)


@pytest.fixture
async def app_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http:
        yield http


@pytest.mark.parametrize("path", ["/ep/v2/", "/ep/v2"])
async def test_both_paths_accept_a_call(client: httpx.AsyncClient, caller: Caller, path: str) -> None:
    answer = await call(client, caller.api_key, caller.body(), path=path)
    assert_sent(answer, caller.to)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/ep/v2/", "/ep/v2"])
async def test_wrong_method_is_405(client: httpx.AsyncClient, caller: Caller, method: str, path: str) -> None:
    r = await client.request(method, path, headers={"x-api-key": caller.api_key})
    assert r.status_code == 405


@pytest.mark.parametrize("path", ["/ep/v1/", "/ep/v3/", "/ep/v2/sendmms", "/ep/", "/"])
async def test_unknown_path_is_404(client: httpx.AsyncClient, caller: Caller, path: str) -> None:
    r = await client.post(path, json=caller.body(), headers={"x-api-key": caller.api_key})
    assert r.status_code == 404


def padded(body: Mapping[str, object], size: int) -> bytes:
    """``body`` as JSON followed by whitespace up to exactly ``size`` bytes (still valid JSON)."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def test_body_of_exactly_the_maximum_is_accepted(client: httpx.AsyncClient, caller: Caller) -> None:
    answer = await call(client, caller.api_key, padded(caller.body(), MIB))
    assert_sent(answer, caller.to)


async def test_body_over_the_maximum_with_content_length_is_413(client: httpx.AsyncClient, caller: Caller) -> None:
    content = padded(caller.body(), MIB + 1)
    r = await client.post(API, content=content, headers={"x-api-key": caller.api_key})
    assert r.request.headers["content-length"] == str(MIB + 1)
    assert r.status_code == 413
    assert r.json()["status"] == "failure"


async def test_declared_length_over_the_maximum_is_413_before_reading(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    headers = {"x-api-key": caller.api_key, "content-length": str(MIB + 1)}
    r = await client.post(API, content=b"{}", headers=headers)
    assert r.request.headers["content-length"] == str(MIB + 1)
    assert r.status_code == 413


async def test_configured_maximum_is_honoured(store: Store, tmp_path: Path, caller: Caller) -> None:
    settings = load_settings(data_dir=tmp_path / "small", auth_cache_seconds=0.0, max_body_bytes=4096)
    transport = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as small:
        assert_sent(await call(small, caller.api_key, padded(caller.body(), 4096)), caller.to)
        r = await small.post(API, content=padded(caller.body(), 4097), headers={"x-api-key": caller.api_key})
        assert r.status_code == 413


async def test_streamed_body_over_the_maximum_is_413(client: httpx.AsyncClient, caller: Caller) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"action": "sendmms", "pad": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    r = await client.post(API, content=chunks(), headers={"x-api-key": caller.api_key})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413


async def test_streamed_body_under_the_maximum_is_accepted(client: httpx.AsyncClient, caller: Caller) -> None:
    raw = json.dumps(caller.body()).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 7):
            yield raw[i : i + 7]

    r = await client.post(API, content=chunks(), headers={"x-api-key": caller.api_key})
    assert r.status_code == 200
    assert_sent(r.json(), caller.to)


async def test_shutting_down_is_503(app: Starlette, app_client: httpx.AsyncClient, caller: Caller) -> None:
    app.state.endpoint.shutting_down = True
    r = await app_client.post(API, json=caller.body(), headers={"x-api-key": caller.api_key})
    assert r.status_code == 503


@pytest.mark.parametrize("action", ["sendmms", "sendMMS", "SENDMMS", "SendMms"])
async def test_action_is_case_insensitive(client: httpx.AsyncClient, caller: Caller, action: str) -> None:
    assert_sent(await send(client, caller, action=action), caller.to)


@pytest.mark.parametrize("header", ["x-api-key", "X-API-KEY", "X-Api-Key"])
async def test_key_header_name_is_case_insensitive(client: httpx.AsyncClient, caller: Caller, header: str) -> None:
    r = await client.post(API, json=caller.body(), headers={header: caller.api_key})
    assert_sent(r.json(), caller.to)


@pytest.mark.parametrize("key", [None, "", "mmsk_not-a-key", " "])
async def test_missing_or_invalid_key_is_e104(client: httpx.AsyncClient, caller: Caller, key: str | None) -> None:
    assert_failure(await call(client, key, caller.body()), "E104")


async def test_revoked_key_is_e104(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    assert_sent(await send(client, caller), caller.to)
    (key,) = await store.accounts.list_keys(caller.account_id)
    await store.accounts.revoke_key(key.id)
    assert_failure(await send(client, caller), "E104")


@pytest.fixture
async def cached_client(store: Store, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its key cache on and long (an hour): only an invalidation makes it forget a key."""
    settings = load_settings(data_dir=tmp_path / "cached", auth_cache_seconds=3600.0)
    transport = httpx.ASGITransport(app=create_app(settings, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
        yield http


@pytest.mark.parametrize("how", ["revoked", "removed", "account deleted"])
async def test_a_used_key_is_refused_at_once_when_revoked_with_the_cache_on(
    cached_client: httpx.AsyncClient, store: Store, caller: Caller, how: str
) -> None:
    other = await provision(store, "28445")
    assert_sent(await send(cached_client, caller), caller.to)  # the key's answer is now cached
    assert_sent(await send(cached_client, other), other.to)
    (key,) = await store.accounts.list_keys(caller.account_id)
    if how == "revoked":
        await store.accounts.revoke_key(key.id)
    elif how == "removed":
        await store.accounts.delete_key(key.id)
    else:
        await store.accounts.delete_account(caller.account_id)
    assert_failure(await send(cached_client, caller), "E104")
    assert_sent(await send(cached_client, other), other.to)  # other keys are looked up again, and still work


async def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(
    store: Store, caller: Caller, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """The command line revokes through a store of its own: the API process learns it when its cached
    answer expires, ``auth_cache_seconds`` later at most."""
    ttl = 0.5
    settings = load_settings(data_dir=tmp_path / "cached", auth_cache_seconds=ttl)
    elsewhere: Store = SqliteStore(tmp_path / "store.sqlite3")
    if backend == "postgresql":
        elsewhere = PostgresStore(request.getfixturevalue("pg_url"))
    await elsewhere.open()
    transport = httpx.ASGITransport(app=create_app(settings, store))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            assert_sent(await send(http, caller), caller.to)
            (key,) = await elsewhere.accounts.list_keys(caller.account_id)
            await elsewhere.accounts.revoke_key(key.id)
            revoked_at = time.monotonic()

            async def refused() -> float | None:
                answer = await send(http, caller)
                return time.monotonic() - revoked_at if answer.get("error-code") == "E104" else None

            assert await eventually(refused, within=10, what="the revoked key to be refused") <= ttl + 0.5
    finally:
        await elsewhere.close()


async def test_other_key_of_the_account_still_works_after_one_is_revoked(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    second, second_secret = await store.accounts.create_key(caller.account_id)
    (first,) = [k for k in await store.accounts.list_keys(caller.account_id) if k.id != second.id]
    await store.accounts.revoke_key(first.id)
    assert_failure(await send(client, caller), "E104")
    assert_sent(await call(client, second_secret, caller.body()), caller.to)


async def test_disabled_account_is_e103(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    await store.accounts.update_account(caller.account_id, disabled=True)
    assert_failure(await send(client, caller), "E103")
    await store.accounts.update_account(caller.account_id, disabled=False)
    assert_sent(await send(client, caller), caller.to)


@pytest.mark.parametrize("field", ["x-api-key", "api-key", "apikey", "key"])
async def test_key_is_never_read_from_the_body(client: httpx.AsyncClient, caller: Caller, field: str) -> None:
    assert_failure(await call(client, None, {**caller.body(), field: caller.api_key}), "E104")


@pytest.mark.parametrize("param", ["x-api-key", "api-key", "apikey", "key"])
async def test_key_is_never_read_from_the_query(client: httpx.AsyncClient, caller: Caller, param: str) -> None:
    assert_failure(await call(client, None, caller.body(), params={param: caller.api_key}), "E104")


async def test_key_in_authorization_header_is_not_accepted(client: httpx.AsyncClient, caller: Caller) -> None:
    r = await client.post(API, json=caller.body(), headers={"authorization": f"Bearer {caller.api_key}"})
    assert r.status_code == 200
    assert_failure(r.json(), "E104")


async def test_throughput_exceeded_is_e113(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    await store.accounts.update_account(caller.account_id, rate_limit=1)
    assert_sent(await send(client, caller), caller.to)
    assert_failure(await send(client, caller), "E113")


# ---------------------------------------------------------------------------------------------
# section 6: mapping of request problems that come before the fields


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b"[]", b'"sendmms"', b"null", b"42", b'{"action": "sendmms",}', b'{"action": "\xff"}'],
    ids=["empty", "text", "truncated", "array", "string", "null", "number", "trailing-comma", "bad-utf8"],
)
async def test_body_not_a_json_object_is_e108(client: httpx.AsyncClient, caller: Caller, body: bytes) -> None:
    assert_failure(await call(client, caller.api_key, body), "E108")


@pytest.mark.parametrize("action", [None, "", "sendsms", "send", "sendmms ", 1, True, ["sendmms"]])
async def test_missing_or_unknown_action_is_e107(client: httpx.AsyncClient, caller: Caller, action: object) -> None:
    body = caller.body()
    body.pop("action")
    if action is not None:
        body["action"] = action
    assert_failure(await call(client, caller.api_key, body), "E107", "action")


# ---------------------------------------------------------------------------------------------
# section 2.1: sendmms, field by field


async def test_success_answer_and_durability(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    answer = await send(client, caller)
    tracking_id = assert_sent(answer, caller.to)
    assert await message_ids(store, [tracking_id]) == {tracking_id: 1}
    message = await store.messages.get_message(caller.account_id, tracking_id)
    assert (message.to, message.sender, message.service_id) == (caller.to, caller.sender, caller.service_id)
    assert message.sending.fallback_sms_text == "See the picture"
    assert [s.to_wire() for s in message.sending.slides] == caller.body()["slide"]
    second = assert_sent(await send(client, caller), caller.to)
    assert second != tracking_id


async def test_numeric_service_id_is_accepted(client: httpx.AsyncClient, caller: Caller) -> None:
    assert_sent(await send(client, caller, service_id=int(caller.service_id)), caller.to)


FIELD_FAILURES: list[tuple[str, dict[str, object], str, str]] = [
    # service-id
    ("service-id missing", {"service_id": None}, "E627", "service-id"),
    ("service-id unknown", {"service_id": "999"}, "E627", "service-id"),
    ("service-id empty", {"service_id": ""}, "E627", "service-id"),
    ("service-id list", {"service_id": ["1"]}, "E627", "service-id"),
    ("service-id bool", {"service_id": True}, "E627", "service-id"),
    # to
    ("to missing", {"to": None}, "E110", "to"),
    ("to 00 prefix", {"to": "0015550100001"}, "E110", "to"),
    ("to +00 prefix", {"to": "+0015550100001"}, "E110", "to"),
    ("to dashes", {"to": "1-555-010-0001"}, "E110", "to"),
    ("to spaces", {"to": "1 555 010 0001"}, "E110", "to"),
    ("to leading space", {"to": " 15550100001"}, "E110", "to"),
    ("to parentheses", {"to": "1(555)0100001"}, "E110", "to"),
    ("to letters", {"to": "1555010000a"}, "E110", "to"),
    ("to double plus", {"to": "++15550100001"}, "E110", "to"),
    ("to plus only", {"to": "+"}, "E110", "to"),
    ("to empty", {"to": ""}, "E110", "to"),
    ("to fullwidth digits", {"to": "１５５５０１００００１"}, "E110", "to"),
    ("to too short", {"to": "123"}, "E110", "to"),
    ("to too long", {"to": "1555010000100001"}, "E110", "to"),
    ("to float", {"to": 15550100001.0}, "E110", "to"),
    ("to negative", {"to": -15550100001}, "E110", "to"),
    ("to bool", {"to": True}, "E110", "to"),
    ("to two recipients", {"to": ["15550100001", "15550100002"]}, "E110", "to"),
    ("to object", {"to": {"number": "15550100001"}}, "E110", "to"),
    # from
    ("from missing", {"from": None}, "E111", "from"),
    ("from not owned", {"from": "28445"}, "E111", "from"),
    ("from 00 prefix", {"from": "0028444"}, "E111", "from"),
    ("from letters", {"from": "28444a"}, "E111", "from"),
    ("from empty", {"from": ""}, "E111", "from"),
    ("from bool", {"from": True}, "E111", "from"),
    ("from list", {"from": ["28444"]}, "E111", "from"),
    # from-mask
    ("from-mask empty", {"from-mask": ""}, "E115", "from-mask"),
    ("from-mask 12 chars", {"from-mask": "ABCDEFGHIJKL"}, "E115", "from-mask"),
    ("from-mask all digits", {"from-mask": "12345"}, "E115", "from-mask"),
    ("from-mask space", {"from-mask": "Acme Shop"}, "E115", "from-mask"),
    ("from-mask accent", {"from-mask": "Acmé"}, "E115", "from-mask"),
    ("from-mask punctuation", {"from-mask": "Acme!"}, "E115", "from-mask"),
    ("from-mask dot", {"from-mask": "Acme.com"}, "E115", "from-mask"),
    ("from-mask newline", {"from-mask": "Acme\n"}, "E115", "from-mask"),
    ("from-mask fullwidth", {"from-mask": "Ａcme"}, "E115", "from-mask"),
    ("from-mask number", {"from-mask": 12345}, "E115", "from-mask"),
    ("from-mask bool", {"from-mask": True}, "E115", "from-mask"),
    # message-subject
    ("subject 81", {"message-subject": "s" * 81}, "E314", "message-subject"),
    ("subject 81 non-ascii", {"message-subject": "é" * 81}, "E314", "message-subject"),
    ("subject number", {"message-subject": 5}, "E314", "message-subject"),
    # fallback-sms-text
    ("fallback missing", {"fallback_sms_text": None}, "E622", "fallback-sms-text"),
    ("fallback empty", {"fallback_sms_text": ""}, "E622", "fallback-sms-text"),
    ("fallback blank", {"fallback_sms_text": "   "}, "E622", "fallback-sms-text"),
    ("fallback number", {"fallback_sms_text": 5}, "E622", "fallback-sms-text"),
    ("fallback 1601", {"fallback_sms_text": "f" * 1601}, "E100", "fallback-sms-text"),
    ("fallback 1601 non-ascii", {"fallback_sms_text": "é" * 1601}, "E100", "fallback-sms-text"),
    ("fallback 1601 emoji", {"fallback_sms_text": "☕" * 1600 + "!"}, "E100", "fallback-sms-text"),
    (
        "fallback missing, fallback explicitly enabled",
        {"fallback_sms_text": None, "disable-fallback-sms": False},
        "E622",
        "fallback-sms-text",
    ),
    (
        "fallback missing, only the link disabled",
        {"fallback_sms_text": None, "disable-fallback-sms-link": True},
        "E622",
        "fallback-sms-text",
    ),
    # client-reference
    ("client-reference 65", {"client-reference": "r" * 65}, "E100", "client-reference"),
    ("client-reference number", {"client-reference": 5}, "E100", "client-reference"),
    # slide
    ("slide missing", {"slide": None}, "E312", "slide"),
    ("slide empty", {"slide": []}, "E312", "slide"),
    ("slide 9", {"slide": text_slides(9)}, "E225", "slide"),
    ("slide 20", {"slide": text_slides(20)}, "E225", "slide"),
]


@pytest.mark.parametrize(
    ("changes", "code", "field"), [row[1:] for row in FIELD_FAILURES], ids=[row[0] for row in FIELD_FAILURES]
)
async def test_field_rule_fails(
    client: httpx.AsyncClient, caller: Caller, changes: dict[str, object], code: str, field: str
) -> None:
    assert_failure(await send(client, caller, **changes), code, field)


FIELD_SUCCESSES: list[tuple[str, dict[str, object]]] = [
    ("from-mask 1 char", {"from-mask": "A"}),
    ("from-mask 11 chars", {"from-mask": "ABCDEFGHIJK"}),
    ("from-mask underscore and dash", {"from-mask": "Acme_Shop-1"}),
    ("from-mask digits and a letter", {"from-mask": "1234567890a"}),
    ("from-mask dash only", {"from-mask": "-"}),
    ("subject 80", {"message-subject": "s" * 80}),
    ("subject 80 non-ascii", {"message-subject": "é" * 80}),
    ("subject empty", {"message-subject": ""}),
    ("fallback not needed when disabled", {"fallback_sms_text": None, "disable-fallback-sms": True}),
    ("fallback 1600", {"fallback_sms_text": "f" * 1600}),
    ("fallback 1600 non-ascii", {"fallback_sms_text": "é" * 1600}),
    ("client-reference 64", {"client-reference": "r" * 64}),
    ("client-reference empty", {"client-reference": ""}),
    ("slide 8", {"slide": text_slides(8)}),
    ("slide 1 text only", {"slide": text_slides(1)}),
    ("from with plus", {"from": "+28444"}),
]


@pytest.mark.parametrize("changes", [row[1] for row in FIELD_SUCCESSES], ids=[row[0] for row in FIELD_SUCCESSES])
async def test_field_rule_accepts(client: httpx.AsyncClient, caller: Caller, changes: dict[str, object]) -> None:
    tracking_id = assert_sent(await send(client, caller, **changes), caller.to)
    status, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert status == 200
    for field, value in changes.items():
        if field == "from":
            assert message["from"] == "28444"
        elif field.replace("_", "-") in message:
            assert message[field.replace("_", "-")] == value


@pytest.mark.parametrize(
    ("to", "digits"),
    [
        ("15550100001", "15550100001"),
        ("+15550100001", "15550100001"),
        (15550100001, "15550100001"),
        ("+447700900123", "447700900123"),
    ],
)
async def test_to_is_answered_as_digits(client: httpx.AsyncClient, caller: Caller, to: object, digits: str) -> None:
    tracking_id = assert_sent(await send(client, caller, to=to), digits)
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert message["to"] == digits


@pytest.mark.parametrize("to", ["15550100001", "+15550100001", 15550100001])
async def test_blocked_to_is_e114(client: httpx.AsyncClient, store: Store, caller: Caller, to: object) -> None:
    await store.numbers.block_number(caller.account_id, "15550100001")
    assert_failure(await send(client, caller, to=to), "E114", "to")
    assert_failure(await send(client, caller, to=to, **{"from": "28445"}), "E114", "to")
    assert_sent(await send(client, caller, to="15550100002"), "15550100002")


async def test_blocked_number_of_another_account_does_not_block(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    other = await provision(store, "28445")
    await store.numbers.block_number(other.account_id, caller.to)
    assert_sent(await send(client, caller), caller.to)


async def test_service_id_of_another_account_is_e627(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    other = await provision(store, "28445")
    assert_failure(await send(client, caller, service_id=other.service_id), "E627", "service-id")
    assert_failure(await send(client, caller, service_id=int(other.service_id)), "E627", "service-id")


async def test_from_restricted_to_another_campaign_is_e111(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    second = await store.numbers.create_campaign(caller.account_id)
    await store.numbers.add_number(caller.account_id, "28450", NumberKind.SHORT_CODE, second.service_id)
    await store.numbers.add_number(caller.account_id, "18885550100", NumberKind.TOLL_FREE)  # any campaign
    # 28444 belongs to the first campaign, 28450 to the second
    assert_failure(await send(client, caller, **{"from": "28450"}), "E111", "from")
    assert_failure(await send(client, caller, service_id=second.service_id), "E111", "from")
    assert_sent(await send(client, caller, service_id=second.service_id, **{"from": "28450"}), caller.to)
    for service_id in (caller.service_id, second.service_id):
        assert_sent(await send(client, caller, service_id=service_id, **{"from": "18885550100"}), caller.to)


# --- dates -------------------------------------------------------------------------------------

DATE_FAILURES: list[tuple[str, object]] = [
    ("past", "__past__"),
    ("garbage", "not a date"),
    ("bad month", "2030-13-01T00:00:00Z"),
    ("words", "tomorrow"),
    ("number", 1893456000),
    ("bool", True),
    ("empty", ""),
]


@pytest.mark.parametrize("field", ["fallback-sms-link-expiration", "mms-expiry-timestamp"])
@pytest.mark.parametrize("value", [row[1] for row in DATE_FAILURES], ids=[row[0] for row in DATE_FAILURES])
async def test_date_that_is_not_a_future_iso_date_is_e100(
    client: httpx.AsyncClient, caller: Caller, field: str, value: object
) -> None:
    if value == "__past__":
        value = at(-HOUR)
    assert_failure(await send(client, caller, **{field: value}), "E100", field)


@pytest.mark.parametrize(
    ("field", "too_far"),
    [
        ("fallback-sms-link-expiration", timedelta(days=367)),
        ("fallback-sms-link-expiration", timedelta(days=3650)),
        ("mms-expiry-timestamp", timedelta(days=3, hours=1)),
        ("mms-expiry-timestamp", timedelta(days=4)),
    ],
)
async def test_date_too_far_ahead_is_e100(
    client: httpx.AsyncClient, caller: Caller, field: str, too_far: timedelta
) -> None:
    assert_failure(await send(client, caller, **{field: at(too_far)}), "E100", field)


@pytest.mark.parametrize(
    ("field", "ahead"),
    [
        ("fallback-sms-link-expiration", HOUR),
        ("fallback-sms-link-expiration", timedelta(days=364)),
        ("mms-expiry-timestamp", HOUR),
        ("mms-expiry-timestamp", timedelta(days=3) - HOUR),
    ],
)
async def test_date_within_its_limit_is_kept(
    client: httpx.AsyncClient, caller: Caller, field: str, ahead: timedelta
) -> None:
    value = at(ahead)
    tracking_id = assert_sent(await send(client, caller, **{field: value}), caller.to)
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert message[field] == value


@pytest.mark.parametrize("field", ["fallback-sms-link-expiration", "mms-expiry-timestamp"])
async def test_date_with_an_offset_is_understood(client: httpx.AsyncClient, caller: Caller, field: str) -> None:
    moment = now() + timedelta(days=2)
    local = moment.astimezone(timezone(timedelta(hours=5)))
    tracking_id = assert_sent(await send(client, caller, **{field: local.isoformat()}), caller.to)
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert abs(parse_iso(message[field]) - moment) < timedelta(seconds=1)


async def test_defaults(client: httpx.AsyncClient, caller: Caller) -> None:
    """Defaults of the table: link expires in 1 year, MMS in 3 days, fallback and link on, cache on."""
    sent = now()
    tracking_id = assert_sent(await send(client, caller), caller.to)
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    try:
        year = sent.replace(year=sent.year + 1)
    except ValueError:
        year = sent.replace(year=sent.year + 1, day=28)
    assert abs(parse_iso(message["fallback-sms-link-expiration"]) - year) < timedelta(minutes=1)
    assert abs(parse_iso(message["mms-expiry-timestamp"]) - (sent + timedelta(days=3))) < timedelta(minutes=1)
    assert message["disable-fallback-sms"] is False
    assert message["disable-fallback-sms-link"] is False
    assert message["cache-content"] is True
    assert message["message-subject"] is None


# --- booleans ----------------------------------------------------------------------------------

BOOLEANS = ["disable-fallback-sms-link", "disable-fallback-sms", "cache-content"]


@pytest.mark.parametrize("field", BOOLEANS)
@pytest.mark.parametrize("value", [1, 0, "yes", "", [], {"on": True}, 0.5], ids=repr)
async def test_boolean_of_wrong_type_is_e100(
    client: httpx.AsyncClient, caller: Caller, field: str, value: object
) -> None:
    assert_failure(await send(client, caller, **{field: value}), "E100", field)


@pytest.mark.parametrize("field", BOOLEANS)
@pytest.mark.parametrize("value", [True, False])
async def test_boolean_is_kept(client: httpx.AsyncClient, caller: Caller, field: str, value: bool) -> None:
    tracking_id = assert_sent(await send(client, caller, **{field: value}), caller.to)
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert message[field] is value


# ---------------------------------------------------------------------------------------------
# section 2.4: slides (each case is put on slide 2, after a valid slide, so the number is checked)

FIRST = {"message-text": "first"}

SLIDE_FAILURES: list[tuple[str, object, str, tuple[str, ...]]] = [
    ("empty object", {}, "E313", ("slide 2",)),
    ("null text", {"message-text": None}, "E313", ("slide 2",)),
    ("empty text", {"message-text": ""}, "E313", ("slide 2",)),
    ("null media", {"image": None}, "E313", ("slide 2",)),
    ("video+image", {"video": VIDEO, "image": IMAGE}, "E227", ("slide 2",)),
    ("video+image+text", {"message-text": "t", "video": VIDEO, "image": IMAGE}, "E227", ("slide 2",)),
    ("video+audio", {"video": VIDEO, "audio": AUDIO}, "E226", ("slide 2",)),
    ("contact+image", {"contact": CONTACT, "image": IMAGE}, "E224", ("slide 2",)),
    ("contact+audio", {"contact": CONTACT, "audio": AUDIO}, "E224", ("slide 2",)),
    ("contact+video", {"contact": CONTACT, "video": VIDEO}, "E224", ("slide 2",)),
    ("calendar+image", {"calendar": CALENDAR, "image": IMAGE}, "E224", ("slide 2",)),
    ("calendar+audio", {"calendar": CALENDAR, "audio": AUDIO}, "E224", ("slide 2",)),
    ("pdf+video", {"pdf": PDF, "video": VIDEO}, "E224", ("slide 2",)),
    ("pdf+image+audio", {"pdf": PDF, "image": IMAGE, "audio": AUDIO}, "E224", ("slide 2",)),
    ("contact+calendar", {"contact": CONTACT, "calendar": CALENDAR}, "E223", ("slide 2",)),
    ("contact+pdf", {"contact": CONTACT, "pdf": PDF}, "E223", ("slide 2",)),
    ("calendar+pdf", {"calendar": CALENDAR, "pdf": PDF}, "E223", ("slide 2",)),
    ("all three objects", {"contact": CONTACT, "calendar": CALENDAR, "pdf": PDF}, "E223", ("slide 2",)),
    ("unknown key", {"message-text": "t", "gif": IMAGE}, "E229", ("slide 2", "gif")),
    ("unknown key alone", {"text": "hello"}, "E229", ("slide 2", "text")),
    ("key in wrong case", {"Image": IMAGE}, "E229", ("slide 2", "Image")),
    ("top-level field in a slide", {"message-text": "t", "message-subject": "s"}, "E229", ("slide 2",)),
    ("ftp url", {"image": {"url": "ftp://media.example.com/a.jpg"}}, "E100", ("slide 2", "image")),
    ("file url", {"pdf": {"url": "file:///etc/passwd"}}, "E100", ("slide 2", "pdf")),
    ("javascript url", {"image": {"url": "javascript:alert(1)"}}, "E100", ("slide 2", "image")),
    ("url without scheme", {"image": {"url": "media.example.com/a.jpg"}}, "E100", ("slide 2", "image")),
    ("url without host", {"image": {"url": "https:///a.jpg"}}, "E100", ("slide 2", "image")),
    ("url scheme only", {"audio": {"url": "https://"}}, "E100", ("slide 2", "audio")),
    ("url with space", {"image": {"url": "https://media.example.com/a b.jpg"}}, "E100", ("slide 2", "image")),
    ("url missing", {"video": {}}, "E100", ("slide 2", "video")),
    ("url not a string", {"image": {"url": 5}}, "E100", ("slide 2", "image")),
    ("url null", {"image": {"url": None}}, "E100", ("slide 2", "image")),
    ("media as a bare string", {"image": "https://media.example.com/a.jpg"}, "E100", ("slide 2", "image")),
    ("media as a list", {"contact": [CONTACT]}, "E100", ("slide 2", "contact")),
    ("text 5001", {"message-text": "t" * 5001}, "E228", ("slide 2",)),
    ("text 5001 non-ascii", {"message-text": "é" * 5001}, "E228", ("slide 2",)),
    ("text not a string", {"message-text": 5}, "E100", ("slide 2",)),
    ("slide not an object", "hello", "E100", ("slide 2",)),
    ("slide a list", [FIRST], "E100", ("slide 2",)),
]


@pytest.mark.parametrize(
    ("slide", "code", "named"), [row[1:] for row in SLIDE_FAILURES], ids=[row[0] for row in SLIDE_FAILURES]
)
async def test_slide_rule_fails(
    client: httpx.AsyncClient, caller: Caller, slide: object, code: str, named: tuple[str, ...]
) -> None:
    assert_failure(await send_slides(client, caller, [FIRST, slide]), code, *named)


SLIDE_SUCCESSES: list[tuple[str, Json]] = [
    ("text only", {"message-text": "hello"}),
    ("text 5000", {"message-text": "t" * 5000}),
    ("text 5000 non-ascii", {"message-text": "é" * 5000}),
    ("image only", {"image": IMAGE}),
    ("image+audio", {"image": IMAGE, "audio": AUDIO}),
    ("image+audio+text", {"message-text": "t", "image": IMAGE, "audio": AUDIO}),
    ("video+text", {"message-text": "t", "video": VIDEO}),
    ("audio+text", {"message-text": "t", "audio": AUDIO}),
    ("contact+text", {"message-text": "t", "contact": CONTACT}),
    ("calendar", {"calendar": CALENDAR}),
    ("pdf+text", {"message-text": "t", "pdf": PDF}),
    ("http url", {"image": {"url": "http://media.example.com/a.jpg"}}),
    ("upper-case scheme", {"image": {"url": "HTTPS://media.example.com/a.jpg"}}),
    ("url with port and query", {"image": {"url": "https://media.example.com:8443/a.jpg?v=1&s=2"}}),
]


@pytest.mark.parametrize("slide", [row[1] for row in SLIDE_SUCCESSES], ids=[row[0] for row in SLIDE_SUCCESSES])
async def test_slide_rule_accepts_and_keeps_the_slide(client: httpx.AsyncClient, caller: Caller, slide: Json) -> None:
    tracking_id = assert_sent(await send_slides(client, caller, [FIRST, slide]), caller.to)
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert message["slide"] == [FIRST, slide]


def raw_body(caller: Caller, slide_json: str) -> bytes:
    """A sendmms body written by hand, so that a slide object may repeat a key."""
    fields = json.dumps(caller.body(slide=None))[:-1]
    return f'{fields}, "slide": [{{"message-text": "first"}}, {slide_json}]}}'.encode()


@pytest.mark.parametrize(
    "slide_json",
    [
        '{"image": {"url": "https://m.example.com/a.jpg"}, "image": {"url": "https://m.example.com/b.jpg"}}',
        '{"audio": {"url": "https://m.example.com/a.mp3"}, "audio": {"url": "https://m.example.com/b.mp3"}}',
        '{"video": {"url": "https://m.example.com/a.mp4"}, "message-text": "t", '
        '"video": {"url": "https://m.example.com/b.mp4"}}',
        '{"contact": {"url": "https://m.example.com/a.vcf"}, "contact": {"url": "https://m.example.com/b.vcf"}}',
        '{"pdf": {"url": "https://m.example.com/a.pdf"}, "pdf": {"url": "https://m.example.com/a.pdf"}}',
        '{"image": {"url": "https://m.example.com/a.jpg"}, "im\\u0061ge": {"url": "https://m.example.com/b.jpg"}}',
    ],
    ids=["image", "audio", "video", "contact", "pdf-same-url", "escaped-key"],
)
async def test_same_media_key_twice_in_a_slide_is_e223(
    client: httpx.AsyncClient, caller: Caller, slide_json: str
) -> None:
    assert_failure(await call(client, caller.api_key, raw_body(caller, slide_json)), "E223", "slide 2")


async def test_same_media_key_on_different_slides_is_fine(client: httpx.AsyncClient, caller: Caller) -> None:
    body = raw_body(caller, '{"message-text": "image", "image": {"url": "https://m.example.com/b.jpg"}}')
    assert_sent(await call(client, caller.api_key, body), caller.to)


async def test_the_six_kinds_each_on_a_slide(client: httpx.AsyncClient, caller: Caller) -> None:
    slides: list[Json] = [{kind: media} for kind, media in _kinds().items()]
    tracking_id = assert_sent(await send_slides(client, caller, slides), caller.to)
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert message["slide"] == slides


def _kinds() -> dict[str, Json]:
    return {"image": IMAGE, "audio": AUDIO, "video": VIDEO, "contact": CONTACT, "calendar": CALENDAR, "pdf": PDF}


# ---------------------------------------------------------------------------------------------
# precedence: the first rule in the contract's order is the one reported

BAD_TO = {"to": "0015550100001"}
BAD_FROM = {"from": "99999"}
PAST = "2000-01-01T00:00:00Z"

PRECEDENCE: list[tuple[str, dict[str, object], str, str]] = [
    ("service-id before to", {"service_id": "1", **BAD_TO}, "E627", "service-id"),
    ("to before from", {**BAD_TO, **BAD_FROM}, "E110", "to"),
    ("from before from-mask", {**BAD_FROM, "from-mask": "!"}, "E111", "from"),
    ("from before slides", {**BAD_FROM, "slide": text_slides(9)}, "E111", "from"),
    ("from before no slides", {**BAD_FROM, "slide": None}, "E111", "from"),
    ("from-mask before subject", {"from-mask": "!", "message-subject": "s" * 81}, "E115", "from-mask"),
    (
        "subject before fallback",
        {"message-subject": "s" * 81, "fallback_sms_text": None},
        "E314",
        "message-subject",
    ),
    (
        "fallback before disable-fallback-sms-link",
        {"fallback_sms_text": None, "disable-fallback-sms-link": 1},
        "E622",
        "fallback-sms-text",
    ),
    (
        "fallback before a disable-fallback-sms of wrong type",
        {"fallback_sms_text": None, "disable-fallback-sms": 1},
        "E622",
        "fallback-sms-text",
    ),
    (
        "disable-fallback-sms-link before disable-fallback-sms",
        {"disable-fallback-sms-link": 1, "disable-fallback-sms": 1},
        "E100",
        "disable-fallback-sms-link",
    ),
    (
        "disable-fallback-sms before link expiration",
        {"disable-fallback-sms": 1, "fallback-sms-link-expiration": PAST},
        "E100",
        "disable-fallback-sms",
    ),
    (
        "link expiration before mms expiry",
        {"fallback-sms-link-expiration": PAST, "mms-expiry-timestamp": PAST},
        "E100",
        "fallback-sms-link-expiration",
    ),
    (
        "mms expiry before client-reference",
        {"mms-expiry-timestamp": PAST, "client-reference": "r" * 65},
        "E100",
        "mms-expiry-timestamp",
    ),
    (
        "client-reference before cache-content",
        {"client-reference": "r" * 65, "cache-content": 1},
        "E100",
        "client-reference",
    ),
    ("cache-content before slides", {"cache-content": 1, "slide": []}, "E100", "cache-content"),
    ("too many slides before empty slide", {"slide": [{}] * 9}, "E225", "slide"),
    ("empty slide 1 before unknown key in slide 2", {"slide": [{}, {"x": 1}]}, "E313", "slide 1"),
    ("text length before media rules", {"slide": [{"message-text": "t" * 5001, **_kinds()}]}, "E228", "slide 1"),
    (
        "video+image before video+audio",
        {"slide": [{"video": VIDEO, "image": IMAGE, "audio": AUDIO}]},
        "E227",
        "slide 1",
    ),
    ("video+audio before object rule", {"slide": [{"video": VIDEO, "audio": AUDIO, "pdf": PDF}]}, "E226", "slide 1"),
    (
        "object with media before two objects",
        {"slide": [{"image": IMAGE, "pdf": PDF, "contact": CONTACT}]},
        "E224",
        "slide 1",
    ),
    ("two objects before unknown key", {"slide": [{"pdf": PDF, "contact": CONTACT, "x": 1}]}, "E223", "slide 1"),
    ("unknown key before bad url", {"slide": [{"image": {"url": "ftp://x"}, "x": 1}]}, "E229", "slide 1"),
]


@pytest.mark.parametrize(
    ("changes", "code", "named"), [row[1:] for row in PRECEDENCE], ids=[row[0] for row in PRECEDENCE]
)
async def test_first_failing_rule_is_reported(
    client: httpx.AsyncClient, caller: Caller, changes: dict[str, object], code: str, named: str
) -> None:
    assert_failure(await send(client, caller, **changes), code, named)


async def test_repeated_key_before_unknown_key(client: httpx.AsyncClient, caller: Caller) -> None:
    body = raw_body(
        caller,
        '{"image": {"url": "https://m.example.com/a.jpg"}, "x": 1, "image": {"url": "https://m.example.com/b.jpg"}}',
    )
    assert_failure(await call(client, caller.api_key, body), "E223", "slide 2")


# ---------------------------------------------------------------------------------------------
# the public example, placeholders replaced by real values


def sendmms_example(caller: Caller) -> Json:
    return {
        "action": "sendmms",
        "service-id": caller.service_id,
        "to": caller.to,
        "from": caller.sender,
        "from-mask": "ACME",
        "message-subject": "Spring sale",
        "fallback-sms-text": "Our spring sale starts today",
        "disable-fallback-sms-link": False,
        "disable-fallback-sms": False,
        "fallback-sms-link-expiration": at(timedelta(days=30)),
        "mms-expiry-timestamp": at(timedelta(days=2)),
        "client-reference": "order-123",
        "cache-content": True,
        "slide": [
            {"image": {"url": "https://my.link.to/image/"}, "message-text": "Slide one"},
            {"audio": {"url": "https://my.link.to/audio/"}, "message-text": "Slide two"},
            {"video": {"url": "https://my.link.to/video/"}, "message-text": "Slide three"},
            {"contact": {"url": "https://my.link.to/contact/"}, "message-text": "Slide four"},
            {"calendar": {"url": "https://my.link.to/calendar/"}, "message-text": "Slide five"},
            {"pdf": {"url": "https://my.link.to/pdf/"}, "message-text": "Slide six"},
        ],
    }


async def test_public_sendmms_example_is_accepted(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    example = sendmms_example(caller)
    tracking_id = assert_sent(await call(client, caller.api_key, example), caller.to)
    assert await message_ids(store, [tracking_id]) == {tracking_id: 1}
    _, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    for field in (
        "message-subject",
        "fallback-sms-text",
        "fallback-sms-link-expiration",
        "mms-expiry-timestamp",
        "client-reference",
        "cache-content",
        "from-mask",
        "slide",
    ):
        assert message[field] == example[field], field
    assert (message["to"], message["from"], message["service-id"]) == (caller.to, caller.sender, caller.service_id)


# ---------------------------------------------------------------------------------------------
# GET /v1/messages/{tracking-id}


async def test_message_view_shape(client: httpx.AsyncClient, caller: Caller) -> None:
    body = caller.body(**{"message-subject": "Hi", "client-reference": "ref-1"})
    tracking_id = assert_sent(await call(client, caller.api_key, body), caller.to)
    status, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert status == 200
    assert message["tracking-id"] == tracking_id
    assert message["state"] == "accepted"
    assert message["slide"] == body["slide"]
    assert message["message-subject"] == "Hi"
    assert message["client-reference"] == "ref-1"
    events = message["events"]
    assert isinstance(events, list)
    assert len(events) == 1
    assert set(events[0]) == EVENT_KEYS
    assert events[0]["status-details"] == "MMS request accepted and queued for processing and delivery."
    assert abs(parse_iso(events[0]["timestamp"]) - now()) < timedelta(minutes=1)


async def test_message_view_of_unknown_id_is_404(client: httpx.AsyncClient, caller: Caller) -> None:
    status, _ = await view(client, caller.api_key, "/v1/messages/00000000-0000-0000-0000-000000000000")
    assert status == 404
