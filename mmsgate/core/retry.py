"""Retry is a decision: given the error and the attempt, run again in N seconds, or give up.

Errors say whether they are retryable (``retryable`` attribute); nothing here reads error text. A failed
attempt that is tried again is told where users look, in the words of :class:`FailedAttempt`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from mmsgate.core.model import iso


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``base`` seconds, multiplied by ``factor`` per attempt, at most ``cap``."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 600.0
    max_attempts: int = 8

    def decide(self, error: BaseException, attempts: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not getattr(error, "retryable", False) or attempts >= self.max_attempts:
            return None
        asked = getattr(error, "retry_after", None)  # the error knows better (a throttle's hint, a short wait)
        if isinstance(asked, int | float) and asked >= 0:
            return float(min(self.cap, asked))
        return self.backoff(attempts)

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: ``base``, multiplied by ``factor`` per attempt, at most
        ``cap`` (5 s, 10 s, 20 s, ... 10 minutes by default). Also the wait before trying a busy carrier
        again, which is not counted as a failure."""
        try:
            grown = self.base * self.factor ** max(0, attempts - 1)
        except OverflowError:  # a message throttled for days counts attempts past what a float can raise
            return float(self.cap)
        return float(min(self.cap, grown))

    def busy(self, attempts: int, asked: float | None = None) -> float:
        """Seconds before trying a busy carrier again: its own hint (``retry_after``) when it gave one, else
        the backoff; never more than ``cap``, so a throttled message is tried again at least that often as
        long as it lives, instead of waiting for its expiry."""
        if asked is not None and asked >= 0:
            return float(min(self.cap, asked))
        return self.backoff(attempts)


RETRYING = "Retrying"
"""The status of a message's event for an attempt that failed and will be tried again (no code: it is no
contract event, so no postback reports it)."""


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """One failed attempt of a job that runs again: what failed, which attempt of how many, and when the
    next one runs. Written as an event's details and read back from them, so the timeline, the status view,
    the console and ``mmsgate send --wait`` all say the same."""

    reason: str
    attempt: int
    max_attempts: int
    next_try_at: datetime

    def details(self) -> str:
        return (
            f"attempt {self.attempt} of {self.max_attempts} failed: {self.reason}; next try at {iso(self.next_try_at)}"
        )

    @classmethod
    def parse(cls, details: str) -> FailedAttempt | None:
        """The attempt an event's details describe; None for details :meth:`details` did not write."""
        found = _DETAILS.fullmatch(details)
        if found is None:
            return None
        when = datetime.strptime(found["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return cls(found["reason"], int(found["attempt"]), int(found["of"]), when)


_DETAILS = re.compile(
    r"attempt (?P<attempt>\d+) of (?P<of>\d+) failed: (?P<reason>.*); "
    r"next try at (?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)",
    re.DOTALL,
)


def attempts_made(attempts: int) -> str:
    """How a final failure says how often the work was tried."""
    return f"after {attempts} attempt{'' if attempts == 1 else 's'}"
