"""A size-bounded disk cache of fetched media, keyed by URL, with an age limit and revalidation data.

Each entry is two files named by the URL's SHA-256: the body, and a small JSON header (type, ETag,
Last-Modified, when it was fetched). Writes go to a temporary name and are renamed into place, so a
crash never leaves a half-written entry. When the cache passes its size, the least recently used
entries are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RECENT_SECONDS = 1.0
"""How long an entry read from disk is served from memory (short: other processes may replace it)."""
RECENT_MAX_BYTES = 256 * 1024
RECENT_ENTRIES = 256


@dataclass(frozen=True, slots=True)
class CachedHeader:
    url: str
    content_type: str | None
    etag: str | None
    last_modified: str | None
    fetched_at: float
    size: int


@dataclass(frozen=True, slots=True)
class CacheEntry:
    header: CachedHeader
    body: bytes


class MediaCache:
    """Blocking file operations: call from a thread (the fetcher does); only :meth:`recent` never blocks."""

    def __init__(self, folder: Path, *, max_bytes: int, max_age: float) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._recent: dict[str, tuple[float, CacheEntry]] = {}

    def _paths(self, url: str) -> tuple[Path, Path]:
        name = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / f"{name}.json", self.folder / f"{name}.body"

    def recent(self, url: str) -> CacheEntry | None:
        """The entry if it was read from disk within the last moment: no file operation, so the event loop
        may call it (the same picture in a burst of messages costs no hand-off to a thread)."""
        remembered = self._recent.get(url)
        if remembered is not None and time.monotonic() - remembered[0] < RECENT_SECONDS:
            return remembered[1]
        return None

    def get(self, url: str) -> CacheEntry | None:
        entry = self.recent(url)
        if entry is not None:
            return entry
        entry = self._read(url)
        if entry is not None and entry.header.size <= RECENT_MAX_BYTES:
            if len(self._recent) >= RECENT_ENTRIES:
                self._recent.clear()
            self._recent[url] = (time.monotonic(), entry)
        return entry

    def _read(self, url: str) -> CacheEntry | None:
        head_path, body_path = self._paths(url)
        try:
            header = CachedHeader(**json.loads(head_path.read_text(encoding="utf-8")))
            body = body_path.read_bytes()
        except (OSError, ValueError, TypeError):
            return None
        if header.url != url or len(body) != header.size or time.time() - header.fetched_at > self.max_age:
            self._remove(head_path, body_path)
            return None
        now = time.time()
        os.utime(body_path, (now, os.stat(body_path).st_mtime))  # atime marks use
        return CacheEntry(header, body)

    def put(self, header: CachedHeader, body: bytes) -> None:
        if header.size > self.max_bytes:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._recent.pop(header.url, None)
        head_path, body_path = self._paths(header.url)
        for path, data in ((body_path, body), (head_path, json.dumps(asdict(header)).encode())):
            self._replace(path, data)
        self._trim()

    @staticmethod
    def _replace(path: Path, data: bytes) -> None:
        """Write to a temporary name, then rename: a reader sees the old file or the new, never half."""
        # unique per call: the same URL may be cached by two threads (or processes) at once
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def touch(self, url: str, fetched_at: float) -> None:
        """A conditional fetch said the entry is still current: restart its age."""
        self._recent.pop(url, None)
        entry = self._read(url)
        if entry is not None:
            header = CachedHeader(**{**asdict(entry.header), "fetched_at": fetched_at})
            head_path, _ = self._paths(url)
            self._replace(head_path, json.dumps(asdict(header)).encode())

    def _trim(self) -> None:
        bodies = []
        total = 0
        for path in self.folder.glob("*.body"):
            try:
                st = path.stat()
            except OSError:
                continue
            bodies.append((st.st_atime, st.st_size, path))
            total += st.st_size
        bodies.sort()
        while total > self.max_bytes and bodies:
            _, size, path = bodies.pop(0)
            self._remove(path.with_suffix(".json"), path)
            total -= size

    @staticmethod
    def _remove(*paths: Path) -> None:
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
