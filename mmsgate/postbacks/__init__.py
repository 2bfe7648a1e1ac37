"""Postbacks: signing on the gateway's side, and :func:`verify` for the receiving side.

Every postback carries ``X-Mmsgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` where the HMAC, keyed
with the account's postback secret, covers ``"<t>.<raw body>"`` (contract section 4). A receiver checks it
with ``mmsgate.postbacks.verify(secret, header, raw_body)``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Mmsgate-Signature"
DEFAULT_TOLERANCE = 300.0
"""Seconds a signature stays acceptable, so a captured postback cannot be replayed later."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (now by default)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_digest(secret, moment, body)}"


def verify(
    secret: str, header: str | None, body: bytes, *, tolerance: float = DEFAULT_TOLERANCE, now: float | None = None
) -> bool:
    """True when ``header`` is a valid signature of ``body`` made with ``secret`` within ``tolerance`` s.

    Any ``v1`` value may match (several are sent while a secret is being rotated); comparisons take
    constant time. A missing, malformed, stale or wrong signature is False, never an exception."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


__all__ = ["DEFAULT_TOLERANCE", "SIGNATURE_HEADER", "sign", "verify"]
