"""The composed MMS: what a carrier adapter sends (its parts, their names and types, the SMIL that lays
them out), and the file names parts go by. Built by :func:`mmsgate.core.compose.compose`; read by carriers,
the sandbox's handsets, the console and the hosted pages."""

from __future__ import annotations

import mimetypes
from datetime import datetime

import msgspec

SMIL_CONTENT_ID = "smil"
SMIL_CONTENT_TYPE = "application/smil"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
DEFAULT_DUR_MS = 5000

# Fixed names beat mimetypes, whose answers vary by platform (e.g. .jpe / .mp4a) and handsets match on these.
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "audio/amr": "amr",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "video/3gpp": "3gp",
    "video/mp4": "mp4",
    "text/vcard": "vcf",
    "text/x-vcard": "vcf",
    "text/calendar": "ics",
    "application/pdf": "pdf",
}


class MmsPart(msgspec.Struct, frozen=True):
    """One body part of an MMS: media whose bytes are in the blob store, or inline text."""

    content_id: str
    location: str
    content_type: str
    size: int
    sha256: str | None = None
    data: bytes | None = None
    slide: int = 0


class Mms(msgspec.Struct, frozen=True):
    """A composed MMS, ready for any carrier adapter; the SMIL part itself is not in ``parts``."""

    tracking_id: str
    account_id: str
    service_id: str
    to: str
    sender: str
    from_mask: str | None
    subject: str | None
    expires_at: datetime
    smil: str
    parts: tuple[MmsPart, ...]
    client_reference: str | None = None
    mms_id: str | None = None

    @property
    def size(self) -> int:
        """Bytes of all parts plus the SMIL, before any MIME encoding."""
        return sum(p.size for p in self.parts) + len(self.smil.encode())


def extension_for(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    known = _EXTENSIONS.get(base)
    if known is not None:
        return known
    guessed = mimetypes.guess_extension(base, strict=False)
    return guessed.lstrip(".") if guessed else "bin"
