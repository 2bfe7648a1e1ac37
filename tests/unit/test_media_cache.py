"""The media cache's moment of memory: what was just read from disk is served without file operations."""

from __future__ import annotations

import time
from pathlib import Path

from mmsgate.media.cache import CachedHeader, MediaCache

URL = "https://media.example/photo.jpg"


def entry_header(size: int) -> CachedHeader:
    return CachedHeader(URL, "image/jpeg", '"v1"', None, time.time(), size)


def test_recent_serves_what_was_just_read_without_touching_the_files(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, max_bytes=10_000_000, max_age=3600)
    body = b"\xff\xd8jpeg bytes"
    cache.put(entry_header(len(body)), body)
    assert cache.recent(URL) is None  # nothing read yet
    read = cache.get(URL)
    assert read is not None and read.body == body
    for path in tmp_path.iterdir():
        path.unlink()  # the files are gone: only memory can answer now
    again = cache.recent(URL)
    assert again is not None and again.body == body


def test_a_new_copy_replaces_the_remembered_one(tmp_path: Path) -> None:
    cache = MediaCache(tmp_path, max_bytes=10_000_000, max_age=3600)
    cache.put(entry_header(3), b"old")
    assert cache.get(URL) is not None
    cache.put(entry_header(3), b"new")
    assert cache.recent(URL) is None
    fresh = cache.get(URL)
    assert fresh is not None and fresh.body == b"new"
