"""Content-addressed files on the local disk (the :class:`~mmsgate.core.roles.Blobs` role): prepared media,
inbound parts and uploads stored once by SHA-256, written atomically."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path


class BlobStore:
    """Blocking file operations: call from a thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # unique per call: the same content may be put by two threads (or processes) at once
            tmp = target.with_name(f"{digest}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        return digest

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()
