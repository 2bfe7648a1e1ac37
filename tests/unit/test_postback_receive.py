"""The receiving side of postbacks: signature first, then typed events (contract section 4)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from mmsgate.common.cache import AccountSettings
from mmsgate.core.codes import EventCode
from mmsgate.core.model import Message, Sending, Template
from mmsgate.postbacks import sign
from mmsgate.postbacks.events import PostbackBuilder
from mmsgate.postbacks.receive import (
    FINAL_CODES,
    InboundEvent,
    MessageEvent,
    PostbackError,
    SignatureError,
    TemplateEvent,
    parse,
    receive,
)

SECRET = "pbs_test-secret"
TRACKING = "01a211ea-0aa6-7658-8cac-1e26a82b324e"
WHEN = datetime(2026, 6, 7, 12, 27, 34, tzinfo=UTC)


def encode(body: dict[str, Any]) -> bytes:
    # The gateway's bytes: compact JSON in the order events.py writes the fields.
    return json.dumps(body, separators=(",", ":")).encode()


N101: dict[str, Any] = {
    "origin": "MMS_MT",
    "code": "N101",
    "sent-as": "MMS",
    "status": "Sent",
    "status-details": "submitted to carrier sandbox as sbx-89d95811c77b863c87b7",
    "tracking-id": TRACKING,
    "client-reference": "order-123",
    "to": "15550100001",
    "from": "28444",
    "timestamp": "2026-06-07T12:27:33Z",
    "event-id": "evt_01a211ea0ab47ddb872bcea2b651e5db",
}
N102: dict[str, Any] = {
    "origin": "MMS_MT",
    "code": "N102",
    "sent-as": "MMS",
    "status": "Delivered",
    "status-details": "Message Delivered",
    "tracking-id": TRACKING,
    "client-reference": "order-123",
    "to": "15550100001",
    "from": "28444",
    "operator-id": "99999",
    "handset": "iPhone",
    "timestamp": "2026-06-07T12:27:34Z",
    "event-id": "evt_01a211ea0abe7f12b2fbfbeaaf7d8638",
}
N003: dict[str, Any] = {
    "origin": "MMS_MT",
    "code": "N003",
    "status": "Transcoding successful",
    "status-details": "template ready",
    "tracking-id": "01a211ea-2000-7000-8000-000000000001",
    "mms-id": "01a211ea-2000-7000-8000-000000000002",
    "client-reference": "spring-sale",
    "timestamp": "2026-06-07T12:28:00Z",
    "event-id": "evt_01a211ea20007000800000000000003",
}
N401: dict[str, Any] = {
    "origin": "MMS_MO",
    "code": "N401",
    "from": "15550100002",
    "to": "28444",
    "keyword": "INFO",
    "tracking-id": "01a211ea-364c-7746-8f1e-1d8cec9de725",
    "operator-id": "99999",
    "timestamp": "2026-06-07T12:30:00Z",
    "message-subject": "info please",
    "content": [
        {"file": "https://mms.example.com/mo/U0hCoM_9cXPZg1EuxEqMJKxFrIK5Z1Z8LCV5mGfFlYs/1.txt"},
        {"file": "https://mms.example.com/mo/U0hCoM_9cXPZg1EuxEqMJKxFrIK5Z1Z8LCV5mGfFlYs/2.png"},
    ],
    "copy-to": [{"number": "15550100003"}, {"number": "15550100004"}],
    "event-id": "evt_01a211ea3651727b82de97eb6eb817ea",
}


def test_n101_is_a_message_event_that_is_not_final() -> None:
    event = parse(encode(N101))
    assert event == MessageEvent(
        code="N101",
        status="Sent",
        status_details="submitted to carrier sandbox as sbx-89d95811c77b863c87b7",
        tracking_id=TRACKING,
        event_id="evt_01a211ea0ab47ddb872bcea2b651e5db",
        timestamp=datetime(2026, 6, 7, 12, 27, 33, tzinfo=UTC),
        to="15550100001",
        sender="28444",
        sent_as="MMS",
        client_reference="order-123",
        mms_id=None,
        operator_id=None,
        extra={},
    )
    assert not event.final


def test_n102_carries_the_operator_and_keeps_unknown_fields_in_extra() -> None:
    event = parse(encode(N102))
    assert isinstance(event, MessageEvent)
    assert event.final
    assert (event.code, event.status, event.operator_id, event.sent_as) == ("N102", "Delivered", "99999", "MMS")
    assert event.timestamp == WHEN
    assert event.extra == {"handset": "iPhone"}
    hash(event)  # frozen events can go in sets, extra or not


@pytest.mark.parametrize("code", ["N101", "N013"])
def test_steps_on_the_way_are_not_final(code: str) -> None:
    event = parse(encode({**N101, "code": code}))
    assert isinstance(event, MessageEvent)
    assert not event.final


@pytest.mark.parametrize("code", ["N102", "N103", "E101", "E102", "E011", "E012", "E013", "N202", "E202", "E999"])
def test_endings_are_final(code: str) -> None:
    event = parse(encode({**N102, "code": code}))
    assert isinstance(event, MessageEvent)
    assert event.final
    assert code in FINAL_CODES


def test_a_template_postback_has_no_to() -> None:
    event = parse(encode(N003))
    assert event == TemplateEvent(
        code="N003",
        status="Transcoding successful",
        status_details="template ready",
        tracking_id="01a211ea-2000-7000-8000-000000000001",
        mms_id="01a211ea-2000-7000-8000-000000000002",
        event_id="evt_01a211ea20007000800000000000003",
        timestamp=datetime(2026, 6, 7, 12, 28, tzinfo=UTC),
        client_reference="spring-sale",
    )
    assert event.ready
    failed = parse(encode({**N003, "code": "E004", "status": "Transcoding failed"}))
    assert isinstance(failed, TemplateEvent)
    assert not failed.ready


def test_an_inbound_mms_lists_its_files_and_the_other_recipients() -> None:
    event = parse(encode(N401).decode())  # str bodies are read too
    assert event == InboundEvent(
        sender="15550100002",
        to="28444",
        keyword="INFO",
        tracking_id="01a211ea-364c-7746-8f1e-1d8cec9de725",
        operator_id="99999",
        timestamp=datetime(2026, 6, 7, 12, 30, tzinfo=UTC),
        subject="info please",
        files=(
            "https://mms.example.com/mo/U0hCoM_9cXPZg1EuxEqMJKxFrIK5Z1Z8LCV5mGfFlYs/1.txt",
            "https://mms.example.com/mo/U0hCoM_9cXPZg1EuxEqMJKxFrIK5Z1Z8LCV5mGfFlYs/2.png",
        ),
        copy_to=("15550100003", "15550100004"),
        event_id="evt_01a211ea3651727b82de97eb6eb817ea",
    )


def test_an_inbound_mms_without_keyword_subject_operator_or_copies() -> None:
    body = {k: v for k, v in N401.items() if k not in {"keyword", "message-subject", "operator-id", "copy-to"}}
    event = parse(encode(body))
    assert isinstance(event, InboundEvent)
    assert (event.keyword, event.subject, event.operator_id, event.copy_to) == (None, None, None, ())


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({k: v for k, v in N102.items() if k != "tracking-id"}, "tracking-id"),
        ({k: v for k, v in N102.items() if k != "event-id"}, "event-id"),
        ({k: v for k, v in N102.items() if k != "from"}, "from"),
        ({k: v for k, v in N102.items() if k != "origin"}, "origin"),
        ({k: v for k, v in N102.items() if k not in {"to", "from"}}, "to"),  # not a template code: needs to
        ({k: v for k, v in N003.items() if k != "mms-id"}, "mms-id"),
        ({k: v for k, v in N401.items() if k != "content"}, "content"),
        ({k: v for k, v in N401.items() if k != "timestamp"}, "timestamp"),
        ({**N102, "status": None}, "status"),
    ],
)
def test_a_missing_required_field_is_named(body: dict[str, Any], missing: str) -> None:
    with pytest.raises(PostbackError, match=f"'{missing}' is missing"):
        parse(encode(body))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not UTF-8 JSON"),
        (b"<html>", "not UTF-8 JSON"),
        (b"\xff\xfe{}", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (encode({**N102, "origin": "SMS"}), "unknown origin"),
        (encode({**N102, "to": 15550100001}), "'to' is not a string"),
        (encode({**N102, "timestamp": "yesterday"}), "'timestamp' is not an ISO 8601 time"),
        (encode({**N401, "code": "N101"}), "code 'N401'"),
        (encode({**N401, "content": "https://x/1.txt"}), "'content' is not a list"),
        (encode({**N401, "content": [{"url": "https://x/1.txt"}]}), "needs a string 'file'"),
        (encode({**N401, "copy-to": ["15550100003"]}), "needs a string 'number'"),
    ],
)
def test_bodies_that_are_not_postbacks_are_refused(body: bytes, problem: str) -> None:
    with pytest.raises(PostbackError, match=problem):
        parse(body)


def test_a_correctly_signed_postback_is_received() -> None:
    body = encode(N102)
    event = receive(SECRET, sign(SECRET, body), body)
    assert isinstance(event, MessageEvent)
    assert event.final


def test_any_of_several_signatures_during_a_secret_rotation_is_accepted() -> None:
    body = encode(N401)
    old, new = sign("pbs_old", body), sign(SECRET, body)
    header = f"{old},v1={new.split('v1=')[1]}"
    assert isinstance(receive(SECRET, header, body), InboundEvent)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        sign("pbs_another-secret", encode(N102)),  # forged: made with another secret
        sign(SECRET, encode(N101)),  # a signature of another body
        sign(SECRET, encode(N102), timestamp=int(time.time()) - 301),  # stale: a replay
    ],
)
def test_a_bad_signature_is_refused_before_the_body_is_read(header: str | None) -> None:
    with pytest.raises(SignatureError, match=r"^signature") as caught:
        receive(SECRET, header, encode(N102))
    assert isinstance(caught.value, PostbackError)


def test_the_tolerance_can_be_widened() -> None:
    body = encode(N102)
    header = sign(SECRET, body, timestamp=int(time.time()) - 600)
    with pytest.raises(SignatureError):
        receive(SECRET, header, body)
    assert isinstance(receive(SECRET, header, body, tolerance=900), MessageEvent)


def test_an_empty_secret_verifies_nothing() -> None:
    body = encode(N102)
    with pytest.raises(SignatureError, match="secret is empty"):
        receive("", sign("", body), body)


def test_a_signed_body_that_is_not_a_postback_is_a_postback_error_not_a_signature_error() -> None:
    body = b"not json"
    with pytest.raises(PostbackError, match="not UTF-8 JSON") as caught:
        receive(SECRET, sign(SECRET, body), body)
    assert not isinstance(caught.value, SignatureError)


class OneTarget:
    """Just enough of the account settings for the builder: every account posts to one URL."""

    async def postback_target(self, account_id: str, service_id: str | None) -> str:
        return "https://receiver.example.com/postbacks"


def sending(client_reference: str | None) -> Sending:
    return Sending(
        subject="Hello",
        fallback_sms_text="see the MMS",
        disable_fallback_sms=False,
        disable_fallback_sms_link=False,
        fallback_link_expires_at=None,
        client_reference=client_reference,
        slides=(),
    )


async def test_what_the_gateway_builds_is_read_back() -> None:
    builder = PostbackBuilder(cast(AccountSettings, OneTarget()))
    message = Message(
        tracking_id=TRACKING,
        account_id="acc",
        service_id="svc",
        to="15550100001",
        sender="28444",
        from_mask=None,
        expires_at=WHEN,
        cache_content=True,
        sending=sending("order-123"),
        mms_id="tmpl-1",
    )
    delivered = await builder.for_message(message, EventCode.DELIVERED, "Message Delivered", extra={"operator-id": "1"})
    assert delivered is not None
    event = receive(SECRET, sign(SECRET, delivered.body.encode()), delivered.body.encode())
    assert isinstance(event, MessageEvent)
    assert (event.code, event.status, event.sent_as, event.final) == ("N102", "Delivered", "MMS", True)
    assert (event.to, event.sender, event.client_reference, event.mms_id) == (
        "15550100001",
        "28444",
        "order-123",
        "tmpl-1",
    )
    assert (event.operator_id, event.event_id, event.extra) == ("1", delivered.event_id, {})

    sent = await builder.for_message(message, EventCode.SENT, "submitted")
    assert sent is not None
    assert not cast(MessageEvent, parse(sent.body)).final

    template = Template(mms_id="tmpl-1", tracking_id="trk-t", account_id="acc", name="sale", sending=sending(None))
    ready = await builder.for_template(template, EventCode.TEMPLATE_READY, "ready")
    assert ready is not None
    made = parse(ready.body)
    assert isinstance(made, TemplateEvent)
    assert (made.mms_id, made.tracking_id, made.client_reference, made.ready) == ("tmpl-1", "trk-t", None, True)

    fields = {key: value for key, value in N401.items() if key not in {"origin", "code", "event-id"}}
    inbound = await builder.for_inbound("acc", "in-1", fields)
    assert inbound is not None
    got = parse(inbound.body)
    assert isinstance(got, InboundEvent)
    assert (got.files, got.copy_to, got.event_id) == (
        tuple(item["file"] for item in N401["content"]),
        ("15550100003", "15550100004"),
        inbound.event_id,
    )
