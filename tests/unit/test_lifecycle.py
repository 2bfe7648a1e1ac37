"""The message lifecycle: which transitions exist, and the code each outcome reports."""

from __future__ import annotations

import pytest

from mmsgate.core import lifecycle
from mmsgate.core.codes import EventCode, MessageState
from mmsgate.delivery.templates import message_failure
from mmsgate.errors import MediaError

S = MessageState
NON_FINAL = [state for state in MessageState if state not in lifecycle.FINAL]


def test_every_state_has_its_next_states() -> None:
    assert set(lifecycle.NEXT) == set(MessageState)


@pytest.mark.parametrize("state", sorted(lifecycle.FINAL))
def test_final_states_never_change(state: MessageState) -> None:
    assert lifecycle.is_final(state)
    assert lifecycle.NEXT[state] == frozenset()


@pytest.mark.parametrize("state", NON_FINAL)
def test_every_open_state_can_expire_or_fail(state: MessageState) -> None:
    assert not lifecycle.is_final(state)
    assert {S.EXPIRED, S.FAILED} <= lifecycle.NEXT[state]


@pytest.mark.parametrize("target", list(MessageState))
def test_sources_agree_with_next(target: MessageState) -> None:
    expected = {state for state, nexts in lifecycle.NEXT.items() if target in nexts}
    sources = lifecycle.sources(target)
    assert set(sources) == expected
    assert len(sources) == len(set(sources))
    assert not any(lifecycle.is_final(source) for source in sources)


def test_nothing_returns_to_accepted() -> None:
    assert lifecycle.sources(S.ACCEPTED) == ()


def test_a_submit_not_taken_returns_to_media_ready() -> None:
    assert S.MEDIA_READY in lifecycle.NEXT[S.SUBMITTING]
    assert set(lifecycle.sources(S.MEDIA_READY)) == {S.ACCEPTED, S.SUBMITTING}


def test_only_a_submitted_message_is_delivered() -> None:
    assert lifecycle.sources(S.DELIVERED) == (S.SUBMITTED,)


def test_only_a_submitting_message_is_submitted() -> None:
    assert lifecycle.sources(S.SUBMITTED) == (S.SUBMITTING,)


def test_outcome_codes() -> None:
    assert {state: code.value for state, code in lifecycle.OUTCOME.items()} == {
        S.SUBMITTED: "N101",
        S.DELIVERED: "N102",
        S.REJECTED: "E102",
        S.EXPIRED: "N103",
        S.FAILED: "E101",
        S.SMS_DELIVERED: "N202",
        S.SMS_FAILED: "E202",
    }
    assert lifecycle.OUTCOME[S.DELIVERED] is EventCode.DELIVERED


def test_a_message_falls_back_to_sms_from_an_mms_attempt_or_an_sms_not_taken() -> None:
    assert set(lifecycle.sources(S.FALLBACK)) == {S.MEDIA_READY, S.SUBMITTING, S.SUBMITTED, S.SMS_SUBMITTING}
    assert lifecycle.sources(S.SMS_SUBMITTING) == (S.FALLBACK,)
    assert lifecycle.sources(S.SMS_SUBMITTED) == (S.SMS_SUBMITTING,)
    assert lifecycle.sources(S.SMS_DELIVERED) == (S.SMS_SUBMITTED,)
    assert S.FALLBACK in lifecycle.NEXT[S.SMS_SUBMITTING]  # an SMS not taken is tried again
    assert {S.SMS_DELIVERED, S.SMS_FAILED} <= lifecycle.FINAL
    assert lifecycle.SMS_STATES.isdisjoint(lifecycle.sources(S.DELIVERED))


@pytest.mark.parametrize(
    ("media_code", "event"),
    [("E341", "E011"), ("E629", "E011"), ("E351", "E101"), ("E331", "E101"), ("E012", "E012"), ("E013", "E013")],
)
def test_media_failures_of_a_message_map_to_the_contracts_postback_codes(media_code: str, event: str) -> None:
    code, details = message_failure(MediaError(media_code, "why"))
    assert (code.value, details) == (event, f"{media_code}: why")
