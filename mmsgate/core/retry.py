"""Retry is a decision: given the error and the attempt, run again in N seconds, or give up.

Errors say whether they are retryable (``retryable`` attribute); nothing here reads error text.
"""

from __future__ import annotations

from dataclasses import dataclass


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
