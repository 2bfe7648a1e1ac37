"""Identifiers: time-ordered ids for stored records, and unguessable tokens for URLs."""

from __future__ import annotations

import os
import secrets
import threading
import time

_pool = bytearray()
_pool_pid = 0
_pool_lock = threading.Lock()


def _random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's random source, read 4 KiB at a time (one system call per 400 ids); a
    forked child never reuses its parent's bytes."""
    global _pool, _pool_pid
    with _pool_lock:
        if len(_pool) < n or _pool_pid != os.getpid():
            _pool, _pool_pid = bytearray(os.urandom(4096)), os.getpid()
        taken = bytes(_pool[-n:])
        del _pool[-n:]
        return taken


def new_id() -> str:
    """A time-ordered UUID (version 7 layout: 48-bit milliseconds, then 74 random bits).

    Ids that grow with time are appended to the store's indexes instead of scattered through them,
    which makes each accepted message markedly cheaper to commit."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(_random_bytes(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def url_token() -> str:
    """256 random bits, URL-safe: the unguessable part of a content URL."""
    return secrets.token_urlsafe(32)
