"""Contract sections 2.2 (savemms) and 2.3 (sendsavedmms), and isolation between accounts.

Every rule has a test that fails when the rule breaks. Each test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from mmsgate.core.codes import TemplateState
from mmsgate.store import Store
from tests.conftest import Caller, changed, provision
from tests.integration.contract_support import (
    AUDIO,
    EVENT_KEYS,
    IMAGE,
    SAVE_ACCEPTED,
    VIDEO,
    Json,
    assert_failure,
    assert_saved,
    assert_sent,
    assert_sent_saved,
    at,
    call,
    text_slides,
    view,
)
from tests.store_support import message_ids

SLIDES: list[Json] = [{"message-text": "Slide one", "image": IMAGE}, {"message-text": "Slide two", "audio": AUDIO}]
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def save_body(**changes: object) -> Json:
    base: Json = {
        "action": "savemms",
        "name": "spring promo",
        "message-subject": "Saved subject",
        "fallback-sms-text": "Saved fallback",
        "client-reference": "saved-ref",
        "slide": SLIDES,
    }
    return changed(base, changes)


def send_saved_body(caller: Caller, mms_id: str, **changes: object) -> Json:
    base: Json = {
        "action": "sendsavedmms",
        "mms-id": mms_id,
        "service-id": caller.service_id,
        "to": caller.to,
        "from": caller.sender,
    }
    return changed(base, changes)


async def save(client: httpx.AsyncClient, caller: Caller, **changes: object) -> str:
    return assert_saved(await call(client, caller.api_key, save_body(**changes)))


async def save_ready(client: httpx.AsyncClient, store: Store, caller: Caller, **changes: object) -> str:
    mms_id = await save(client, caller, **changes)
    await store.lifecycle.set_template_state(mms_id, TemplateState.READY, code="N003", details="ready")
    return mms_id


async def send_saved(client: httpx.AsyncClient, caller: Caller, mms_id: str, **changes: object) -> Json:
    return await call(client, caller.api_key, send_saved_body(caller, mms_id, **changes))


async def message_of(client: httpx.AsyncClient, caller: Caller, tracking_id: str) -> Json:
    status, message = await view(client, caller.api_key, f"/v1/messages/{tracking_id}")
    assert status == 200
    return message


# ---------------------------------------------------------------------------------------------
# section 2.2: savemms


async def test_savemms_answers_at_once_and_the_template_starts_processing(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    answer = await call(client, caller.api_key, save_body())
    mms_id = assert_saved(answer)
    assert (await store.messages.get_template(caller.account_id, mms_id)).state is TemplateState.PROCESSING
    status, template = await view(client, caller.api_key, f"/v1/templates/{mms_id}")
    assert status == 200
    assert template["mms-id"] == mms_id
    assert template["tracking-id"] == answer["tracking-id"]
    assert template["state"] == "processing"
    assert template["name"] == "spring promo"
    assert template["slide"] == SLIDES
    assert template["message-subject"] == "Saved subject"
    assert template["fallback-sms-text"] == "Saved fallback"
    assert template["client-reference"] == "saved-ref"
    (event,) = template["events"]
    assert set(event) == EVENT_KEYS
    assert event["status-details"] == SAVE_ACCEPTED


async def test_template_events_are_oldest_first(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    mms_id = await save_ready(client, store, caller)
    _, template = await view(client, caller.api_key, f"/v1/templates/{mms_id}")
    assert template["state"] == "ready"
    first, second = template["events"]
    assert first["status-details"] == SAVE_ACCEPTED
    assert (second["code"], second["status-details"]) == ("N003", "ready")
    assert first["timestamp"] <= second["timestamp"]


@pytest.mark.parametrize("action", ["savemms", "saveMMS", "SAVEMMS"])
async def test_savemms_action_is_case_insensitive(client: httpx.AsyncClient, caller: Caller, action: str) -> None:
    await save(client, caller, action=action)


SAVE_FAILURES: list[tuple[str, dict[str, object], str, str]] = [
    ("name missing", {"name": None}, "E311", "name"),
    ("name empty", {"name": ""}, "E311", "name"),
    ("name blank", {"name": "   "}, "E311", "name"),
    ("name number", {"name": 5}, "E311", "name"),
    ("name bool", {"name": True}, "E311", "name"),
    ("name list", {"name": ["spring"]}, "E311", "name"),
    ("name object", {"name": {"en": "spring"}}, "E311", "name"),
    ("subject 81", {"message-subject": "s" * 81}, "E314", "message-subject"),
    ("fallback number", {"fallback-sms-text": 5}, "E622", "fallback-sms-text"),
    ("disable-fallback-sms wrong type", {"disable-fallback-sms": "yes"}, "E100", "disable-fallback-sms"),
    ("disable-fallback-sms-link wrong type", {"disable-fallback-sms-link": 1}, "E100", "disable-fallback-sms-link"),
    (
        "link expiration past",
        {"fallback-sms-link-expiration": "2000-01-01T00:00:00Z"},
        "E100",
        "fallback-sms-link-expiration",
    ),
    ("link expiration garbage", {"fallback-sms-link-expiration": "soon"}, "E100", "fallback-sms-link-expiration"),
    ("client-reference 65", {"client-reference": "r" * 65}, "E100", "client-reference"),
    ("slide missing", {"slide": None}, "E312", "slide"),
    ("slide empty", {"slide": []}, "E312", "slide"),
    ("slide 9", {"slide": text_slides(9)}, "E225", "slide"),
    ("empty slide", {"slide": [{"message-text": "a"}, {}]}, "E313", "slide 2"),
    ("video+image", {"slide": [{"video": VIDEO, "image": IMAGE}]}, "E227", "slide 1"),
    ("unknown key", {"slide": [{"gif": IMAGE}]}, "E229", "slide 1"),
    ("bad url", {"slide": [{"image": {"url": "ftp://x.example/a.jpg"}}]}, "E100", "slide 1"),
    ("text 5001", {"slide": [{"message-text": "t" * 5001}]}, "E228", "slide 1"),
    # precedence
    ("name before subject", {"name": None, "message-subject": "s" * 81}, "E311", "name"),
    ("name before slides", {"name": "", "slide": None}, "E311", "name"),
    ("subject before slides", {"message-subject": "s" * 81, "slide": []}, "E314", "message-subject"),
    ("client-reference before slides", {"client-reference": "r" * 65, "slide": [{}]}, "E100", "client-reference"),
]


@pytest.mark.parametrize(
    ("changes", "code", "named"), [row[1:] for row in SAVE_FAILURES], ids=[row[0] for row in SAVE_FAILURES]
)
async def test_savemms_rule_fails(
    client: httpx.AsyncClient, caller: Caller, changes: dict[str, object], code: str, named: str
) -> None:
    assert_failure(await call(client, caller.api_key, save_body(**changes)), code, named)


SAVE_SUCCESSES: list[tuple[str, dict[str, object]]] = [
    ("no fallback text (it may come with the send)", {"fallback-sms-text": None}),
    ("no subject", {"message-subject": None}),
    ("subject 80", {"message-subject": "s" * 80}),
    ("one-letter name", {"name": "x"}),
    ("link expiration within a year", {"fallback-sms-link-expiration": at(timedelta(days=300))}),
    ("fallback disabled", {"fallback-sms-text": None, "disable-fallback-sms": True}),
    ("8 slides", {"slide": text_slides(8)}),
    ("no service-id, to or from needed", {}),
]


@pytest.mark.parametrize("changes", [row[1] for row in SAVE_SUCCESSES], ids=[row[0] for row in SAVE_SUCCESSES])
async def test_savemms_rule_accepts(
    client: httpx.AsyncClient, store: Store, caller: Caller, changes: dict[str, object]
) -> None:
    mms_id = await save(client, caller, **changes)
    template = await store.messages.get_template(caller.account_id, mms_id)
    assert template.name == save_body(**changes)["name"]


# ---------------------------------------------------------------------------------------------
# section 2.3: sendsavedmms


async def test_sendsavedmms_sends_the_template(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    mms_id = await save_ready(client, store, caller)
    answer = await send_saved(client, caller, mms_id, to="+" + caller.to, **{"from": "+" + caller.sender})
    tracking_id = assert_sent_saved(answer, mms_id, caller.to, caller.sender)
    assert await message_ids(store, [tracking_id]) == {tracking_id: 1}
    assert (await store.messages.get_message(caller.account_id, tracking_id)).mms_id == mms_id
    message = await message_of(client, caller, tracking_id)
    assert message["mms-id"] == mms_id
    assert message["slide"] == SLIDES
    assert message["message-subject"] == "Saved subject"
    assert message["fallback-sms-text"] == "Saved fallback"
    assert message["client-reference"] == "saved-ref"
    assert (message["to"], message["from"], message["service-id"]) == (caller.to, caller.sender, caller.service_id)


@pytest.mark.parametrize("action", ["sendSavedMMS", "SENDSAVEDMMS"])
async def test_sendsavedmms_action_is_case_insensitive(
    client: httpx.AsyncClient, store: Store, caller: Caller, action: str
) -> None:
    mms_id = await save_ready(client, store, caller)
    assert_sent_saved(await send_saved(client, caller, mms_id, action=action), mms_id, caller.to, caller.sender)


@pytest.mark.parametrize("mms_id", [None, "", "   "], ids=["missing", "empty", "blank"])
async def test_missing_mms_id_is_e620(client: httpx.AsyncClient, caller: Caller, mms_id: str | None) -> None:
    assert_failure(await send_saved(client, caller, "", **{"mms-id": mms_id}), "E620", "mms-id")


async def test_null_mms_id_is_e620(client: httpx.AsyncClient, caller: Caller) -> None:
    body = send_saved_body(caller, "")
    body["mms-id"] = None
    assert_failure(await call(client, caller.api_key, body), "E620", "mms-id")


@pytest.mark.parametrize("mms_id", [UNKNOWN_ID, "nope", 12345, "x" * 65, ["a"], True], ids=repr)
async def test_unknown_mms_id_is_e241(client: httpx.AsyncClient, caller: Caller, mms_id: object) -> None:
    assert_failure(await send_saved(client, caller, "", **{"mms-id": mms_id}), "E241", "mms-id")


async def test_template_still_processing_is_e626(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    mms_id = await save(client, caller)
    assert_failure(await send_saved(client, caller, mms_id), "E626")
    await store.lifecycle.set_template_state(mms_id, TemplateState.READY, code="N003", details="ready")
    assert_sent_saved(await send_saved(client, caller, mms_id), mms_id, caller.to, caller.sender)


async def test_failed_template_cannot_be_sent(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    mms_id = await save(client, caller)
    await store.lifecycle.set_template_state(mms_id, TemplateState.FAILED, code="E004", details="image failed")
    assert_failure(await send_saved(client, caller, mms_id), "E241")


async def test_request_fields_override_the_template(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    mms_id = await save_ready(client, store, caller)
    overrides: Json = {
        "from-mask": "ACME",
        "message-subject": "New subject",
        "fallback-sms-text": "New fallback",
        "disable-fallback-sms": True,
        "disable-fallback-sms-link": True,
        "fallback-sms-link-expiration": at(timedelta(days=10)),
        "mms-expiry-timestamp": at(timedelta(days=1)),
        "client-reference": "new-ref",
    }
    tracking_id = assert_sent_saved(
        await send_saved(client, caller, mms_id, **overrides), mms_id, caller.to, caller.sender
    )
    message = await message_of(client, caller, tracking_id)
    for field, value in overrides.items():
        assert message[field] == value, field
    # the template itself is unchanged
    _, template = await view(client, caller.api_key, f"/v1/templates/{mms_id}")
    assert (template["message-subject"], template["fallback-sms-text"]) == ("Saved subject", "Saved fallback")


CUSTOM_SUCCESSES: list[tuple[str, list[Json], list[str]]] = [
    ("string number", [{"custom-slide": "1", "custom-message-text": "New one"}], ["New one", "Slide two"]),
    ("integer number", [{"custom-slide": 2, "custom-message-text": "New two"}], ["Slide one", "New two"]),
    (
        "both slides",
        [{"custom-slide": "2", "custom-message-text": "B"}, {"custom-slide": 1, "custom-message-text": "A"}],
        ["A", "B"],
    ),
    ("text 5000", [{"custom-slide": "1", "custom-message-text": "t" * 5000}], ["t" * 5000, "Slide two"]),
    ("empty list", [], ["Slide one", "Slide two"]),
]


@pytest.mark.parametrize(
    ("custom", "texts"), [row[1:] for row in CUSTOM_SUCCESSES], ids=[row[0] for row in CUSTOM_SUCCESSES]
)
async def test_custom_slides_replace_the_text(
    client: httpx.AsyncClient, store: Store, caller: Caller, custom: list[Json], texts: list[str]
) -> None:
    mms_id = await save_ready(client, store, caller)
    answer = await send_saved(client, caller, mms_id, custom_slides=custom)
    message = await message_of(client, caller, assert_sent_saved(answer, mms_id, caller.to, caller.sender))
    assert [s["message-text"] for s in message["slide"]] == texts
    assert (message["slide"][0]["image"], message["slide"][1]["audio"]) == (IMAGE, AUDIO)


def custom(number: object, text: object = "new text") -> list[Json]:
    return [{"custom-slide": number, "custom-message-text": text}]


CUSTOM_FAILURES: list[tuple[str, object, str, str]] = [
    ("slide 0", custom("0"), "E100", "custom-slide"),
    ("slide 0 as integer", custom(0), "E100", "custom-slide"),
    ("slide 3 of 2", custom("3"), "E100", "custom-slide"),
    ("slide 3 of 2 as integer", custom(3), "E100", "custom-slide"),
    ("negative", custom("-1"), "E100", "custom-slide"),
    ("not a number", custom("one"), "E100", "custom-slide"),
    ("empty", custom(""), "E100", "custom-slide"),
    ("fraction", custom(1.5), "E100", "custom-slide"),
    ("bool", custom(True), "E100", "custom-slide"),
    ("missing number", [{"custom-message-text": "x"}], "E100", "custom-slide"),
    ("second item bad", [*custom("1"), *custom("9")], "E100", "custom-slide"),
    ("text 5001", custom("1", "t" * 5001), "E228", "custom-message-text"),
    ("text missing", [{"custom-slide": "1"}], "E100", "custom-message-text"),
    ("text number", custom("1", 5), "E100", "custom-message-text"),
    ("not a list", {"custom-slide": "1", "custom-message-text": "x"}, "E100", "custom-slides"),
    ("item not an object", ["1"], "E100", "custom-slides"),
]


@pytest.mark.parametrize(
    ("value", "code", "named"), [row[1:] for row in CUSTOM_FAILURES], ids=[row[0] for row in CUSTOM_FAILURES]
)
async def test_custom_slides_rule_fails(
    client: httpx.AsyncClient, store: Store, caller: Caller, value: object, code: str, named: str
) -> None:
    mms_id = await save_ready(client, store, caller)
    assert_failure(await send_saved(client, caller, mms_id, custom_slides=value), code, named)


FALLBACK_CASES: list[tuple[str, dict[str, object], dict[str, object], str | None]] = [
    ("template's text is enough", {}, {}, "Saved fallback"),
    ("request's text overrides", {}, {"fallback-sms-text": "Mine"}, "Mine"),
    ("text given only with the send", {"fallback-sms-text": None}, {"fallback-sms-text": "Mine"}, "Mine"),
    ("fallback disabled by the send", {"fallback-sms-text": None}, {"disable-fallback-sms": True}, None),
    ("fallback disabled by the template", {"fallback-sms-text": None, "disable-fallback-sms": True}, {}, None),
]


@pytest.mark.parametrize(
    ("saved", "sent", "text"), [row[1:] for row in FALLBACK_CASES], ids=[row[0] for row in FALLBACK_CASES]
)
async def test_fallback_text_from_template_or_request(
    client: httpx.AsyncClient,
    store: Store,
    caller: Caller,
    saved: dict[str, object],
    sent: dict[str, object],
    text: str | None,
) -> None:
    mms_id = await save_ready(client, store, caller, **saved)
    answer = await send_saved(client, caller, mms_id, **sent)
    message = await message_of(client, caller, assert_sent_saved(answer, mms_id, caller.to, caller.sender))
    assert message["fallback-sms-text"] == text


@pytest.mark.parametrize(
    "sent",
    [{}, {"fallback-sms-text": ""}, {"fallback-sms-text": "  "}, {"disable-fallback-sms": False}],
    ids=["not given", "empty", "blank", "explicitly enabled"],
)
async def test_no_fallback_text_anywhere_is_e622(
    client: httpx.AsyncClient, store: Store, caller: Caller, sent: dict[str, object]
) -> None:
    mms_id = await save_ready(client, store, caller, fallback_sms_text=None)
    assert_failure(await send_saved(client, caller, mms_id, **sent), "E622", "fallback-sms-text")


SEND_SAVED_FAILURES: list[tuple[str, dict[str, object], str, str]] = [
    ("service-id missing", {"service-id": None}, "E627", "service-id"),
    ("service-id unknown", {"service-id": "1"}, "E627", "service-id"),
    ("to missing", {"to": None}, "E110", "to"),
    ("to 00 prefix", {"to": "0015550100001"}, "E110", "to"),
    ("from missing", {"from": None}, "E111", "from"),
    ("from not owned", {"from": "28445"}, "E111", "from"),
    ("from-mask all digits", {"from-mask": "123"}, "E115", "from-mask"),
    ("subject 81", {"message-subject": "s" * 81}, "E314", "message-subject"),
    ("fallback of wrong type", {"fallback-sms-text": 0}, "E622", "fallback-sms-text"),
    ("fallback list", {"fallback-sms-text": []}, "E622", "fallback-sms-text"),
    ("disable-fallback-sms wrong type", {"disable-fallback-sms": 1}, "E100", "disable-fallback-sms"),
    ("disable-fallback-sms-link wrong type", {"disable-fallback-sms-link": "no"}, "E100", "disable-fallback-sms-link"),
    (
        "link expiration past",
        {"fallback-sms-link-expiration": "2000-01-01T00:00:00Z"},
        "E100",
        "fallback-sms-link-expiration",
    ),
    (
        "link expiration over a year",
        {"fallback-sms-link-expiration": at(timedelta(days=400))},
        "E100",
        "fallback-sms-link-expiration",
    ),
    ("mms expiry over 3 days", {"mms-expiry-timestamp": at(timedelta(days=4))}, "E100", "mms-expiry-timestamp"),
    ("mms expiry garbage", {"mms-expiry-timestamp": "later"}, "E100", "mms-expiry-timestamp"),
    ("client-reference 65", {"client-reference": "r" * 65}, "E100", "client-reference"),
    # precedence
    ("service-id before to", {"service-id": "1", "to": "x"}, "E627", "service-id"),
    ("to before from", {"to": "x", "from": "1"}, "E110", "to"),
    ("from before custom slides", {"from": "1", "custom-slides": custom("9")}, "E111", "from"),
    (
        "mms expiry before custom slides",
        {"mms-expiry-timestamp": "x", "custom-slides": custom("9")},
        "E100",
        "mms-expiry-timestamp",
    ),
]


@pytest.mark.parametrize(
    ("changes", "code", "named"),
    [row[1:] for row in SEND_SAVED_FAILURES],
    ids=[row[0] for row in SEND_SAVED_FAILURES],
)
async def test_sendsavedmms_rule_fails(
    client: httpx.AsyncClient, store: Store, caller: Caller, changes: dict[str, object], code: str, named: str
) -> None:
    mms_id = await save_ready(client, store, caller)
    assert_failure(await send_saved(client, caller, mms_id, **changes), code, named)


async def test_sendsavedmms_to_a_blocked_number_is_e114(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    mms_id = await save_ready(client, store, caller)
    await store.numbers.block_number(caller.account_id, caller.to)
    assert_failure(await send_saved(client, caller, mms_id, to="+" + caller.to), "E114", "to")


@pytest.mark.parametrize(
    ("state", "changes", "code"),
    [
        ("none", {"mms-id": None, "to": "x", "service-id": None}, "E620"),
        ("none", {"mms-id": UNKNOWN_ID, "to": "x", "service-id": None}, "E241"),
        ("processing", {"to": "x", "service-id": None, "custom-slides": custom("9")}, "E626"),
        ("ready", {"service-id": "1", "custom-slides": custom("9")}, "E627"),
    ],
    ids=["mms-id required first", "unknown mms-id before fields", "processing before fields", "fields before slides"],
)
async def test_sendsavedmms_precedence(
    client: httpx.AsyncClient, store: Store, caller: Caller, state: str, changes: dict[str, object], code: str
) -> None:
    mms_id = await save(client, caller)
    if state == "ready":
        await store.lifecycle.set_template_state(mms_id, TemplateState.READY, code="N003", details="ready")
    assert_failure(await send_saved(client, caller, mms_id, **changes), code)


async def test_numeric_service_id_and_integer_to_are_accepted(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    mms_id = await save_ready(client, store, caller)
    answer = await send_saved(client, caller, mms_id, service_id=int(caller.service_id), to=int(caller.to))
    assert_sent_saved(answer, mms_id, caller.to, caller.sender)


# ---------------------------------------------------------------------------------------------
# isolation: a key of account A never reaches account B's templates, campaigns, numbers, messages


async def test_another_accounts_template_is_e241_and_not_found(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    other = await provision(store, "28445")
    theirs = await save_ready(client, store, other)
    assert_failure(await send_saved(client, caller, theirs), "E241", "mms-id")
    assert (await view(client, caller.api_key, f"/v1/templates/{theirs}"))[0] == 404
    # the owner can
    assert (await view(client, other.api_key, f"/v1/templates/{theirs}"))[0] == 200
    assert_sent_saved(await send_saved(client, other, theirs), theirs, other.to, other.sender)
    # nor with the owner's campaign and number
    body = send_saved_body(caller, theirs, service_id=other.service_id, **{"from": other.sender})
    assert_failure(await call(client, caller.api_key, body), "E241")


async def test_another_accounts_processing_template_is_e241(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    other = await provision(store, "28445")
    theirs = await save(client, other)
    assert_failure(await send_saved(client, caller, theirs), "E241", "mms-id")


async def test_another_accounts_campaign_and_number(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    other = await provision(store, "28445")
    mine = await save_ready(client, store, caller)
    for send in (caller.body(), send_saved_body(caller, mine)):
        assert_failure(await call(client, caller.api_key, {**send, "service-id": other.service_id}), "E627")
        assert_failure(await call(client, caller.api_key, {**send, "from": other.sender}), "E111", "from")
        both = {**send, "service-id": other.service_id, "from": other.sender}
        assert_failure(await call(client, caller.api_key, both), "E627")
    # the other account's own key can use them
    assert_sent(await call(client, other.api_key, other.body()), other.to)


async def test_another_accounts_message_is_not_found(client: httpx.AsyncClient, store: Store, caller: Caller) -> None:
    other = await provision(store, "28445")
    theirs = assert_sent(await call(client, other.api_key, other.body()), other.to)
    assert (await view(client, caller.api_key, f"/v1/messages/{theirs}"))[0] == 404
    assert (await view(client, other.api_key, f"/v1/messages/{theirs}"))[0] == 200


# ---------------------------------------------------------------------------------------------
# the public examples, placeholders replaced by real values


def savemms_example() -> Json:
    return {
        "action": "savemms",
        "message-subject": "Spring sale",
        "fallback-sms-text": "Our spring sale starts today",
        "disable-fallback-sms-link": False,
        "disable-fallback-sms": False,
        "fallback-sms-link-expiration": at(timedelta(days=90)),
        "client-reference": "campaign-7",
        "name": "Spring sale template",
        "slide": [
            {"image": {"url": "https://my.link.to/image/"}, "message-text": "Slide one"},
            {"audio": {"url": "https://my.link.to/audio/"}, "message-text": "Slide two"},
            {"video": {"url": "https://my.link.to/video/"}, "message-text": "Slide three"},
            {"contact": {"url": "https://my.link.to/contact/"}, "message-text": "Slide four"},
            {"calendar": {"url": "https://my.link.to/calendar/"}, "message-text": "Slide five"},
            {"pdf": {"url": "https://my.link.to/pdf/"}, "message-text": "Slide six"},
        ],
    }


def sendsavedmms_example(caller: Caller, mms_id: str) -> Json:
    return {
        "action": "sendsavedmms",
        "mms-id": mms_id,
        "service-id": caller.service_id,
        "to": caller.to,
        "from": caller.sender,
        "from-mask": "ACME",
        "message-subject": "Spring sale, last day",
        "fallback-sms-text": "Last day of our spring sale",
        "disable-fallback-sms": False,
        "disable-fallback-sms-link": False,
        "mms-expiry-timestamp": at(timedelta(days=1)),
        "client-reference": "order-123",
        "custom-slides": [{"custom-message-text": "Hello Ada", "custom-slide": "1"}],
    }


async def test_public_savemms_and_sendsavedmms_examples_are_accepted(
    client: httpx.AsyncClient, store: Store, caller: Caller
) -> None:
    saved = savemms_example()
    mms_id = assert_saved(await call(client, caller.api_key, saved))
    _, template = await view(client, caller.api_key, f"/v1/templates/{mms_id}")
    assert template["slide"] == saved["slide"]
    assert template["fallback-sms-link-expiration"] == saved["fallback-sms-link-expiration"]
    await store.lifecycle.set_template_state(mms_id, TemplateState.READY, code="N003", details="ready")

    sent = sendsavedmms_example(caller, mms_id)
    tracking_id = assert_sent_saved(await call(client, caller.api_key, sent), mms_id, caller.to, caller.sender)
    assert await message_ids(store, [tracking_id]) == {tracking_id: 1}
    message = await message_of(client, caller, tracking_id)
    for field in ("from-mask", "message-subject", "fallback-sms-text", "mms-expiry-timestamp", "client-reference"):
        assert message[field] == sent[field], field
    assert message["fallback-sms-link-expiration"] == saved["fallback-sms-link-expiration"]
    assert [s["message-text"] for s in message["slide"]] == [
        "Hello Ada",
        "Slide two",
        "Slide three",
        "Slide four",
        "Slide five",
        "Slide six",
    ]
    assert [sorted(s) for s in message["slide"]] == [sorted(s) for s in saved["slide"]]
