"""What the bytes really are: the ``filetype`` library for binary formats, a few rules for text ones."""

from __future__ import annotations

import filetype

from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.kinds import RULES, UNRECOGNISED, canonical

_GENERIC = frozenset({"application/octet-stream", "binary/octet-stream", "application/binary"})

# filetype's names → the contract's names
_ALIASES = {
    "audio/x-wav": "audio/wav",
    "audio/x-wave": "audio/wav",
    "audio/mp3": "audio/mpeg",
    "video/x-m4v": "video/mp4",
    "audio/x-m4a": "audio/mp4",
    "video/x-ms-asf": "video/x-ms-wmv",
    "video/mpeg": "video/mpeg",
}


def sniff(body: bytes) -> str | None:
    """The MIME type the bytes prove, or None when they prove nothing."""
    head = body[:4096]
    kind: str | None = filetype.guess_mime(head)
    if kind:
        if kind == "video/mp4" and b"ftyp3g" in head[:16]:
            return "video/3gpp"
        return _ALIASES.get(kind, kind)
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    if text.startswith(b"BEGIN:VCARD"):
        return "text/vcard"
    if text.startswith(b"BEGIN:VCALENDAR"):
        return "text/calendar"
    if text.startswith((b"<!DOCTYPE HTML", b"<HTML", b"<?XML", b"<HEAD", b"<BODY")):
        return "text/html"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "video/mpeg"
    return None


def decide_type(kind: MediaKind, declared: str | None, body: bytes) -> str:
    """The type to treat the content as, by the contract's rules (section 3), or MediaError(E629/E341).

    A declared type the kind accepts is kept unless the bytes prove another type; a proven type that
    the kind also accepts corrects it (a "PNG" that is a JPEG), any other proven type refuses it (an
    "image" that is HTML). A generic or missing type needs bytes that prove an accepted one.
    """
    rules = RULES[kind]
    proven = sniff(body)
    proven_ok = proven is not None and proven in rules.types
    if declared is None or declared in _GENERIC:
        if proven_ok:
            assert proven is not None
            return canonical(kind, proven)
        what = f"the bytes look like {proven}" if proven else "the bytes prove no type"
        raise MediaError(UNRECOGNISED, f"{kind.value} served as {declared or 'no type'} and {what}")
    if declared not in rules.types:
        raise MediaError(UNRECOGNISED, f"{declared} is not accepted for {kind.value}")
    if proven is None or canonical(kind, proven) == canonical(kind, declared):
        return canonical(kind, declared)
    if proven_ok:
        return canonical(kind, proven)
    raise MediaError(UNRECOGNISED, f"served as {declared} but the bytes are {proven}")
