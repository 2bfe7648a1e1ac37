"""Per-carrier throughput limits that hold across every process sharing the store.

Each send takes a slot in a ring of ``per_second`` slots kept in the store (see
:meth:`mmsgate.core.roles.SendWindows.reserve_sends`); a slot is free again once the send that used it is
older than the window. The window is one second plus ``slack``, and a slot granted is used within
``slack`` or dropped, so the time between a grant and its submit can never let more than ``per_second``
submits into any one second. The price is a rate about ``slack`` below the limit under sustained load.
"""

from __future__ import annotations

import asyncio
import time

from mmsgate.core.roles import SendWindows


class SendLimiter:
    """``await acquire()`` before each submit to one carrier."""

    def __init__(self, windows: SendWindows, carrier: str, per_second: int, *, slack: float = 0.1) -> None:
        self.windows = windows
        self.carrier = carrier
        self.per_second = per_second
        self.slack = slack
        self._lock = asyncio.Lock()
        self._tokens = 0
        self._granted_at = 0.0
        self._waiting = 0

    async def acquire(self) -> None:
        if self.per_second <= 0:
            return
        self._waiting += 1
        try:
            async with self._lock:
                while True:
                    if self._tokens > 0 and time.monotonic() - self._granted_at <= self.slack / 2:
                        self._tokens -= 1
                        return
                    want = max(1, min(self._waiting, self.per_second))
                    granted, wait = await self.windows.reserve_sends(
                        self.carrier, self.per_second, 1.0 + self.slack, want
                    )
                    if granted:
                        self._tokens, self._granted_at = granted, time.monotonic()
                        continue
                    await asyncio.sleep(wait)  # the store said when the oldest send leaves the window
        finally:
            self._waiting -= 1
