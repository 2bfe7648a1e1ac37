"""Identifiers: time-ordered ids for stored records, and unguessable tokens for URLs."""

from __future__ import annotations

import os
import secrets
import time


def new_id() -> str:
    """A time-ordered UUID (version 7 layout: 48-bit milliseconds, then 74 random bits).

    Ids that grow with time are appended to the store's indexes instead of scattered through them,
    which makes each accepted message markedly cheaper to commit."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def url_token() -> str:
    """256 random bits, URL-safe: the unguessable part of a content URL."""
    return secrets.token_urlsafe(32)
