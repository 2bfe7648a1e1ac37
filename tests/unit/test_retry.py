"""The retry decision, and the words of a failed attempt that the timeline, the status view and the console
share."""

from __future__ import annotations

from datetime import UTC, datetime

from mmsgate.core.retry import FailedAttempt, RetryPolicy, attempts_made
from mmsgate.errors import MediaError


def test_a_failed_attempt_reads_back_as_written() -> None:
    at = datetime(2026, 6, 7, 12, 27, 34, tzinfo=UTC)
    failed = FailedAttempt("E351: slide 1 image: http://x/a.jpg: a reason; next try at nothing", 2, 8, at)
    assert failed.details() == (
        "attempt 2 of 8 failed: E351: slide 1 image: http://x/a.jpg: a reason; next try at nothing; "
        "next try at 2026-06-07T12:27:34Z"
    )
    assert FailedAttempt.parse(failed.details()) == failed
    assert FailedAttempt.parse("content checked") is None
    assert FailedAttempt.parse("attempt 2 of 8 failed: x; next try at soon") is None


def test_attempts_are_counted_in_words() -> None:
    assert attempts_made(1) == "after 1 attempt"
    assert attempts_made(8) == "after 8 attempts"


def test_the_policy_gives_up_at_its_last_attempt() -> None:
    policy = RetryPolicy(base=1.0, cap=2.0, max_attempts=3)
    retryable = MediaError("E351", "down", retryable=True)
    assert [policy.decide(retryable, n) for n in (1, 2, 3)] == [1.0, 2.0, None]
    assert policy.decide(MediaError("E351", "refused"), 1) is None
