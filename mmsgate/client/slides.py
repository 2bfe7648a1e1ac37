"""The client's ``Slide``: one slide of a message or template, built in Python and written as the contract's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmsgate.core.model import MediaKind

_KINDS = tuple(kind.value for kind in MediaKind)


@dataclass(frozen=True, slots=True)
class Slide:
    """One slide: optional text and up to the contract's media objects, each ``(kind, url)``.

    ``kind`` is one of image, audio, video, contact, calendar, pdf; a slide carries each kind at most once.
    Which combinations are allowed (image with audio, video only with text, ...) is the contract's to say:
    a slide that breaks those rules is refused with the contract's E-code when it is sent."""

    text: str | None = None
    media: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        kinds = [kind for kind, _ in self.media]
        for kind in kinds:
            if kind not in _KINDS:
                raise ValueError(f"unknown media kind {kind!r}: use one of {', '.join(_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"a slide carries each media kind at most once, not {', '.join(kinds)}")

    @classmethod
    def of_text(cls, text: str) -> Slide:
        """A slide with text only."""
        return cls(text=text)

    @classmethod
    def image(cls, url: str, text: str | None = None) -> Slide:
        """A slide with an image (JPEG, PNG or GIF) and optional text."""
        return cls(text, (("image", url),))

    @classmethod
    def audio(cls, url: str, text: str | None = None) -> Slide:
        """A slide with audio (MP3, WAV or AMR) and optional text."""
        return cls(text, (("audio", url),))

    @classmethod
    def video(cls, url: str, text: str | None = None) -> Slide:
        """A slide with a video and optional text."""
        return cls(text, (("video", url),))

    @classmethod
    def contact(cls, url: str, text: str | None = None) -> Slide:
        """A slide with a vCard and optional text."""
        return cls(text, (("contact", url),))

    @classmethod
    def calendar(cls, url: str, text: str | None = None) -> Slide:
        """A slide with an iCalendar file and optional text."""
        return cls(text, (("calendar", url),))

    @classmethod
    def pdf(cls, url: str, text: str | None = None) -> Slide:
        """A slide with a PDF and optional text."""
        return cls(text, (("pdf", url),))

    def with_media(self, kind: str, url: str) -> Slide:
        """A copy of this slide with one more media object, e.g. ``Slide.image(u).with_media("audio", v)``."""
        return Slide(self.text, (*self.media, (kind, url)))

    def to_wire(self) -> dict[str, Any]:
        """The slide as the contract's JSON object: ``{"message-text": ..., "image": {"url": ...}, ...}``."""
        wire: dict[str, Any] = {}
        if self.text is not None:
            wire["message-text"] = self.text
        for kind, url in self.media:
            wire[kind] = {"url": url}
        return wire
