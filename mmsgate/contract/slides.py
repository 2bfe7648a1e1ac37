"""Slides in the contract: the ``slide`` array, each slide's text and media, and ``custom-slides``.

A valid slide takes a short path; any other is judged rule by rule in the contract's order, so the first
rule broken is the one reported. JSON objects may repeat a key, and a slide that gives a media key twice
is refused: :func:`mark_repeated_media_keys` finds such bodies when they are parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mmsgate.contract.fields import MAX_SLIDES, MAX_TEXT, MAX_URL, fail, show
from mmsgate.core.codes import ErrorCode
from mmsgate.core.model import Media, MediaKind, Slide

_OBJECTS = frozenset({MediaKind.CONTACT, MediaKind.CALENDAR, MediaKind.PDF})
_PLAYABLE = frozenset({MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.VIDEO})
_MEDIA_KEYS = {kind.value: kind for kind in MediaKind}
_MEDIA_KEY_SET = frozenset(_MEDIA_KEYS)
_SLIDE_KEYS = frozenset({*_MEDIA_KEYS, "message-text"})
_MEDIA_KEY_PATTERN = re.compile(rb'"(?:image|audio|video|contact|calendar|pdf)"\s*:')


class _RepeatedKeys(dict[str, Any]):
    """A JSON object in which a media key appeared more than once (the last value is kept).

    A type of its own, not a marker key, so that no client can forge it."""

    repeated: str = ""


def _may_repeat_media_keys(body: bytes, data: dict[str, Any]) -> bool:
    """Cheap test whether a slide could carry a media key twice (JSON objects may repeat keys)."""
    slides = data.get("slide")
    if not isinstance(slides, list):
        return False
    if b"\\u" in body:  # an escaped key ("im\\u0061ge") does not show in the count below
        return True
    seen = sum(len(s.keys() & _MEDIA_KEY_SET) for s in slides if isinstance(s, dict))
    return len(_MEDIA_KEY_PATTERN.findall(body)) > seen


def mark_repeated_media_keys(body: bytes, data: dict[str, Any]) -> dict[str, Any]:
    """``data``, the decoded ``body``; or, when a slide of it gives a media key twice, ``body`` decoded again
    with that slide as a :class:`_RepeatedKeys` (which :func:`read_slides` refuses in its turn)."""
    if not _may_repeat_media_keys(body, data):
        return data

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        repeated = next((k for k in _MEDIA_KEYS if keys.count(k) > 1), None)
        if repeated is None:
            return dict(items)
        out = _RepeatedKeys(items)
        out.repeated = repeated
        return out

    try:
        parsed: dict[str, Any] = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return data
    return parsed


_VALID_MEDIA = frozenset(
    frozenset(c)
    for c in [("image",), ("audio",), ("video",), ("contact",), ("calendar",), ("pdf",), ("image", "audio")]
)


def _slide(n: int, value: Any) -> Slide:
    """One slide. Valid slides take a short path; anything else is judged rule by rule, in order."""
    if type(value) is dict and value.keys() <= _SLIDE_KEYS:
        text = value.get("message-text")
        media_keys = [key for key in value if key != "message-text"]
        if (
            (text is None or (type(text) is str and 0 < len(text) <= MAX_TEXT))
            and (text or media_keys)
            and (not media_keys or frozenset(media_keys) in _VALID_MEDIA)
        ):
            media = []
            for key in media_keys:
                url = _plain_url(value[key])
                if url is None:
                    break
                media.append(Media(_MEDIA_KEYS[key], url))
            else:
                return Slide(text=text, media=tuple(media))
    return _judge_slide(n, value)


def _plain_url(value: Any) -> str | None:
    url = value.get("url") if type(value) is dict else None
    return url if type(url) is str and len(url) <= MAX_URL and _is_http_url(url) else None


def _judge_slide(n: int, value: Any) -> Slide:
    if not isinstance(value, dict):
        raise fail(ErrorCode.INVALID_REQUEST, f"slide {n} must be an object, not {show(value)}")
    text = value.get("message-text")
    if text is not None:
        if not isinstance(text, str):
            raise fail(ErrorCode.INVALID_REQUEST, f"slide {n}: message-text must be a string, not {show(text)}")
        if len(text) > MAX_TEXT:
            raise fail(
                ErrorCode.TEXT_TOO_LONG,
                f"slide {n}: message-text is {len(text)} characters long; at most {MAX_TEXT} are allowed",
            )
    kinds = [_MEDIA_KEYS[k] for k in value if k in _MEDIA_KEYS and value[k] is not None]
    if not text and not kinds and all(k in _SLIDE_KEYS for k in value):
        raise fail(ErrorCode.SLIDE_EMPTY, f"slide {n} is empty: give message-text or a media object")
    present = set(kinds)
    if MediaKind.VIDEO in present and MediaKind.IMAGE in present:
        raise fail(ErrorCode.VIDEO_WITH_IMAGE, f"slide {n}: video cannot go with image on one slide")
    if MediaKind.VIDEO in present and MediaKind.AUDIO in present:
        raise fail(ErrorCode.AUDIO_WITH_VIDEO, f"slide {n}: audio cannot go with video on one slide")
    objects = present & _OBJECTS
    if objects and present & _PLAYABLE:
        raise fail(
            ErrorCode.SLIDE_MEDIA_WITH_OBJECT,
            f"slide {n}: {', '.join(sorted(objects))} cannot go with image, audio or video on one slide",
        )
    if len(objects) > 1:
        raise fail(
            ErrorCode.SLIDE_ONE_OBJECT,
            f"slide {n}: at most one of contact, calendar and pdf per slide ({', '.join(sorted(objects))} given)",
        )
    if isinstance(value, _RepeatedKeys):
        raise fail(ErrorCode.SLIDE_ONE_OBJECT, f"slide {n}: {value.repeated} is given twice (same MIME type twice)")
    for key in value:
        if key not in _SLIDE_KEYS:
            raise fail(
                ErrorCode.CONTENT_NOT_ALLOWED,
                f"slide {n}: {show(key)} is not allowed content "
                "(use message-text, image, audio, video, contact, calendar or pdf)",
            )
    return Slide(text=text, media=tuple(Media(kind, _url(n, kind, value[kind.value])) for kind in kinds))


def _url(n: int, kind: MediaKind, value: Any) -> str:
    url = value.get("url") if isinstance(value, dict) else None
    if not isinstance(url, str) or len(url) > MAX_URL or not _is_http_url(url):
        raise fail(
            ErrorCode.INVALID_REQUEST,
            f'slide {n}: {kind.value} needs {{"url": "http(s)://..."}} with a usable URL, not {show(value)}',
        )
    return url


_HTTP_URL = re.compile(r"(?i)https?://(?:[^/?#@]*@)?[^/?#@]+(?:[/?#].*)?", re.S)


def _is_http_url(url: str) -> bool:
    return _HTTP_URL.fullmatch(url) is not None and url.isprintable() and " " not in url


def read_slides(data: dict[str, Any]) -> tuple[Slide, ...]:
    """The ``slide`` array: one to eight slides, each checked in turn."""
    value = data.get("slide")
    if value is None:
        raise fail(ErrorCode.NO_SLIDES, "slide is required: at least one slide")
    if not isinstance(value, list):
        raise fail(ErrorCode.INVALID_REQUEST, f"slide must be an array of slide objects, not {show(value)}")
    if not value:
        raise fail(ErrorCode.NO_SLIDES, "slide is empty: at least one slide is required")
    if len(value) > MAX_SLIDES:
        raise fail(ErrorCode.TOO_MANY_SLIDES, f"slide has {len(value)} slides; at most {MAX_SLIDES} are allowed")
    return tuple(_slide(n, s) for n, s in enumerate(value, 1))


def read_custom_slides(data: dict[str, Any], slides: tuple[Slide, ...]) -> tuple[Slide, ...]:
    """A template's ``slides`` with the texts that ``custom-slides`` replaces (``sendsavedmms``)."""
    value = data.get("custom-slides")
    if value is None:
        return slides
    if not isinstance(value, list):
        raise fail(ErrorCode.INVALID_REQUEST, f"custom-slides must be an array, not {show(value)}")
    out = list(slides)
    for i, item in enumerate(value, 1):
        if not isinstance(item, dict):
            raise fail(ErrorCode.INVALID_REQUEST, f"custom-slides item {i} must be an object")
        number = item.get("custom-slide")
        if isinstance(number, str) and number.strip().isdigit() and number.strip().isascii():
            number = int(number.strip())
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(out):
            raise fail(
                ErrorCode.INVALID_REQUEST,
                f"custom-slides item {i}: custom-slide {show(number)} is not a slide of the template (1 to {len(out)})",
            )
        text = item.get("custom-message-text")
        if not isinstance(text, str):
            raise fail(ErrorCode.INVALID_REQUEST, f"custom-slides item {i}: custom-message-text must be a string")
        if len(text) > MAX_TEXT:
            raise fail(
                ErrorCode.TEXT_TOO_LONG,
                f"custom-slides item {i}: custom-message-text is {len(text)} characters long; "
                f"at most {MAX_TEXT} are allowed",
            )
        out[number - 1] = Slide(text=text, media=out[number - 1].media)
    return tuple(out)
