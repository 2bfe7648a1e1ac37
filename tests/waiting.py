"""Waiting on a condition with a timeout (never a bare sleep standing in for "long enough")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 30.0, what: str = "it") -> T:
    """Poll ``probe`` until it returns a value, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.05)
