"""`contract.precheck`: what a client can refuse before sending, exactly as the server would."""

from __future__ import annotations

from typing import Any

import pytest

from mmsgate.contract.precheck import precheck
from mmsgate.core.model import utcnow
from mmsgate.errors import ApiError

SEND: dict[str, Any] = {
    "action": "sendmms",
    "service-id": "1234567890",
    "to": "15550100001",
    "from": "28444",
    "fallback-sms-text": "see it",
    "slide": [{"message-text": "hi", "image": {"url": "https://media.example.com/a.jpg"}}],
}


def code_of(body: dict[str, Any]) -> str | None:
    try:
        precheck(body, utcnow())
    except ApiError as exc:
        return exc.code.value
    return None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({}, None),  # campaigns, numbers and blocks are the server's to know: not judged here
        ({"service-id": None}, "E627"),
        ({"to": "12"}, "E110"),
        ({"from": "x"}, "E111"),
        ({"from-mask": "12345"}, "E115"),
        ({"message-subject": "s" * 81}, "E314"),
        ({"fallback-sms-text": None}, "E622"),
        ({"slide": [{"message-text": "x"}] * 9}, "E225"),
        ({"slide": []}, "E312"),
        ({"slide": [{}]}, "E313"),
        ({"slide": [{"message-text": "x" * 5001}]}, "E228"),
        ({"client-reference": "r" * 65}, "E100"),
        ({"action": "SendMMS", "to": "12"}, "E110"),
    ],
)
def test_sendmms_rules_without_the_account(changes: dict[str, Any], code: str | None) -> None:
    body = {k: v for k, v in {**SEND, **changes}.items() if v is not None}
    assert code_of(body) == code


def test_savemms_and_sendsavedmms_rules() -> None:
    assert code_of({"action": "savemms", "name": "promo", "slide": [{"message-text": "x"}]}) is None
    assert code_of({"action": "savemms", "slide": [{"message-text": "x"}]}) == "E311"
    saved = {"action": "sendsavedmms", "mms-id": "m-1", "service-id": "1", "to": "15550100001", "from": "28444"}
    assert code_of(saved) is None
    assert code_of({**saved, "mms-id": None}) == "E620"
    assert code_of({**saved, "to": "abc"}) == "E110"
