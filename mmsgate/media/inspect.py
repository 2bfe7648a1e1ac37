"""Prove content is what it claims, with the libraries made for each format.

Images decode with Pillow under a pixel-count cap (decompression bombs) and a frame cap; audio and video
are probed with PyAV; vCards parse with vobject; iCalendar with icalendar; PDFs open with pypdf and must
have a page, and their streams may not inflate past :data:`~mmsgate.media.pdf.MAX_PDF_INFLATED` (a bomb).
Blocking and CPU-bound: run in a worker process (see :mod:`mmsgate.media.pool`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.kinds import RULES
from mmsgate.media.pdf import MAX_PDF_INFLATED, OverLimit, inflated_size

MAX_PIXELS = 40_000_000
"""Largest image (width × height) that is decoded at all; past it the image is refused as a bomb."""
MAX_FRAMES = 300
MAX_DURATION = 600.0


@dataclass(frozen=True, slots=True)
class MediaInfo:
    content_type: str
    width: int = 0
    height: int = 0
    frames: int = 1
    duration: float = 0.0
    codecs: tuple[str, ...] = ()


def inspect_content(kind: MediaKind, content_type: str, body: bytes) -> MediaInfo:
    checker = _CHECKERS[kind]
    return checker(content_type, body)


def _image(content_type: str, body: bytes) -> MediaInfo:
    from PIL import Image, UnidentifiedImageError

    bad = RULES[MediaKind.IMAGE].bad_content
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body)) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise MediaError(bad, f"image of {width}×{height} pixels is over the {MAX_PIXELS} pixel limit")
                frames = getattr(img, "n_frames", 1)
                if frames > MAX_FRAMES:
                    raise MediaError(bad, f"animation of {frames} frames is over the {MAX_FRAMES} frame limit")
                if img.format == "JPEG":
                    # every byte is still decoded (truncation shows), at 1/8 scale: 64 times less memory
                    img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
                img.load()
                if frames > 1:
                    img.seek(frames - 1)
                    img.load()
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(bad, f"image refused as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(bad, f"image does not decode: {exc}") from exc
    return MediaInfo(content_type, width, height, frames)


def _av(kind: MediaKind, content_type: str, body: bytes) -> MediaInfo:
    import av

    bad = RULES[kind].bad_content
    try:
        with av.open(io.BytesIO(body), mode="r") as container:
            wanted = container.streams.video if kind is MediaKind.VIDEO else container.streams.audio
            if not wanted:
                raise MediaError(bad, f"no {kind.value} stream in the file")
            duration = float(container.duration or 0) / 1_000_000 if container.duration else 0.0
            codecs = tuple(s.codec_context.name for s in container.streams if s.codec_context is not None)
            width = height = 0
            if kind is MediaKind.VIDEO:
                stream = container.streams.video[0]
                width, height = stream.codec_context.width, stream.codec_context.height
            decoded = 0
            for frame in container.decode(wanted[0]):
                decoded += 1
                if decoded >= 3:
                    break
                del frame
            if decoded == 0:
                raise MediaError(bad, f"the {kind.value} stream decodes to nothing")
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise MediaError(bad, f"{kind.value} does not decode: {exc}") from exc
    if duration > MAX_DURATION:
        raise MediaError(RULES[kind].too_big, f"{kind.value} lasts {duration:.0f} s; at most {MAX_DURATION:.0f} s")
    return MediaInfo(content_type, width, height, 1, duration, codecs)


def _audio(content_type: str, body: bytes) -> MediaInfo:
    return _av(MediaKind.AUDIO, content_type, body)


def _video(content_type: str, body: bytes) -> MediaInfo:
    return _av(MediaKind.VIDEO, content_type, body)


def _text(body: bytes, kind: MediaKind) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return body.decode("latin-1")
        except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
            raise MediaError(RULES[kind].bad_content, f"{kind.value} is not text") from exc


def _contact(content_type: str, body: bytes) -> MediaInfo:
    import vobject

    bad = RULES[MediaKind.CONTACT].bad_content
    try:
        cards = list(vobject.readComponents(_text(body, MediaKind.CONTACT)))
    except Exception as exc:  # vobject raises many unrelated types on bad input
        raise MediaError(bad, f"vCard does not parse: {exc}") from exc
    if not cards or any(card.name.upper() != "VCARD" for card in cards):
        raise MediaError(bad, "the file holds no vCard")
    for card in cards:
        if not hasattr(card, "fn") and not hasattr(card, "n"):
            raise MediaError(bad, "a vCard has neither FN nor N")
    return MediaInfo(content_type)


def _calendar(content_type: str, body: bytes) -> MediaInfo:
    import icalendar

    bad = RULES[MediaKind.CALENDAR].bad_content
    try:
        calendar = icalendar.Calendar.from_ical(_text(body, MediaKind.CALENDAR))
    except Exception as exc:  # icalendar raises ValueError and others on bad input
        raise MediaError(bad, f"iCalendar does not parse: {exc}") from exc
    if calendar.name != "VCALENDAR" or not calendar.subcomponents:
        raise MediaError(bad, "the file holds no calendar entries")
    for component in calendar.walk():
        # icalendar keeps a property it cannot parse (a DTSTART that is no date) as "broken" and
        # records the failure instead of raising: such a calendar does not parse either.
        if component.errors:
            name, problem = component.errors[0]
            raise MediaError(bad, f"iCalendar does not parse: {component.name} {name}: {problem}")
    return MediaInfo(content_type)


def _pdf(content_type: str, body: bytes) -> MediaInfo:
    import pypdf
    from pypdf.errors import PyPdfError

    bad = RULES[MediaKind.PDF].bad_content
    try:
        reader = pypdf.PdfReader(io.BytesIO(body), strict=False)
        pages = len(reader.pages)
        inflated_size(reader, MAX_PDF_INFLATED)
    except OverLimit as exc:
        raise MediaError(
            bad, f"PDF refused as a decompression bomb: its streams inflate past {MAX_PDF_INFLATED} bytes"
        ) from exc
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise MediaError(bad, f"PDF does not open: {exc}") from exc
    if pages < 1:
        raise MediaError(bad, "PDF has no pages")
    return MediaInfo(content_type, frames=pages)


_CHECKERS = {
    MediaKind.IMAGE: _image,
    MediaKind.AUDIO: _audio,
    MediaKind.VIDEO: _video,
    MediaKind.CONTACT: _contact,
    MediaKind.CALENDAR: _calendar,
    MediaKind.PDF: _pdf,
}
