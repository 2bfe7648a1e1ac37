"""Composition: a message plus its prepared media parts become one carrier-independent MMS.

The result names every part (Content-ID, Content-Location, type, where its bytes are) and carries the SMIL
presentation that lays the slides out, in the OMA conformance subset handsets accept: one ``par`` per
slide, at most one image or video, one text and one audio in each, and only the ``Image`` and ``Text``
regions. Carrier adapters (MM7, EAIF, ...) turn an ``Mms`` into their own wire form. Pure: no I/O.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from lxml import etree  # lxml ships no type information

from mmsgate.core.mms import DEFAULT_DUR_MS, TEXT_CONTENT_TYPE, Mms, MmsPart, extension_for
from mmsgate.core.model import MediaKind, Message, Part

_NAMED_BY_KIND = frozenset({MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.VIDEO})
_VISUAL = frozenset({MediaKind.IMAGE, MediaKind.VIDEO})
_TIMED = frozenset({MediaKind.AUDIO, MediaKind.VIDEO})
# Part order within a slide, as handsets lay it out: picture, the text under it, sound, then attachments.
_VISUAL_RANK, _TEXT_RANK, _AUDIO_RANK, _ATTACHMENT_RANK = range(4)


SlidePlan = tuple[MmsPart | None, MmsPart | None, MmsPart | None, int]
"""A slide as SMIL sees it: its image or video, text and audio parts, and its duration in ms."""


def _unique(wanted: str, fallback: str, taken: set[str]) -> str:
    """The first of wanted, fallback, fallback-2, ... not yet taken (which it then becomes)."""
    name, n = wanted, 1
    while name in taken:
        n += 1
        name = fallback if n == 2 else f"{fallback}-{n - 1}"
    taken.add(name)
    return name


def compose(message: Message, parts: Sequence[Part]) -> Mms:
    """Build the MMS of a message from its prepared parts (``Part.slide`` is 1-based)."""
    slides = message.sending.slides
    stray = [p.position for p in parts if not 1 <= p.slide <= len(slides)]
    if stray:  # dropping media silently would send a different message than the one accepted
        raise ValueError(f"parts at positions {stray} belong to no slide of {len(slides)}")
    taken: tuple[set[str], set[str]] = (set(), set())
    out: list[MmsPart] = []
    plans: list[SlidePlan] = []
    for i, slide in enumerate(slides, 1):
        own = sorted((p for p in parts if p.slide == i), key=lambda p: p.position)
        slide_parts, plan = _slide(i, slide.text, own, taken)
        out.extend(slide_parts)
        plans.append(plan)
    return Mms(
        tracking_id=message.tracking_id,
        account_id=message.account_id,
        service_id=message.service_id,
        to=message.to,
        sender=message.sender,
        from_mask=message.from_mask,
        subject=message.sending.subject,
        expires_at=message.expires_at,
        smil=smil_for(plans),
        parts=tuple(out),
        client_reference=message.sending.client_reference,
        mms_id=message.mms_id,
    )


def _slide(
    i: int, text: str | None, parts: Sequence[Part], taken: tuple[set[str], set[str]]
) -> tuple[list[MmsPart], SlidePlan]:
    """Slide i's MMS parts in sending order, and what its ``par`` shows; ``taken`` holds used ids and locations."""
    ids, locations = taken
    ranked: list[tuple[int, int, MmsPart]] = []
    visual: MmsPart | None = None
    audio: MmsPart | None = None
    dur_ms = DEFAULT_DUR_MS
    for part in parts:
        named = part.kind in _NAMED_BY_KIND
        wanted = f"{part.kind.value}{i}" if named else f"part{part.position}"
        ext = extension_for(part.content_type)
        mms_part = MmsPart(
            content_id=_unique(wanted, f"{wanted}-{part.position}", ids),
            location=_unique(f"slide{i}.{ext}", f"slide{i}-{part.kind.value}.{ext}", locations),
            content_type=part.content_type,
            size=part.size,
            sha256=part.sha256,
            slide=i,
        )
        # the contract allows one image or video and one audio per slide; any extra is sent as an attachment
        rank = _ATTACHMENT_RANK
        if part.kind in _VISUAL and visual is None:
            visual, rank = mms_part, _VISUAL_RANK
        elif part.kind is MediaKind.AUDIO and audio is None:
            audio, rank = mms_part, _AUDIO_RANK
        if part.kind in _TIMED and part.duration > 0:
            # let the whole clip play before moving on; rounding first keeps float noise (x.0000001) from adding 1 ms
            dur_ms = max(dur_ms, math.ceil(round(part.duration * 1000, 3)))
        ranked.append((rank, part.position, mms_part))
    text_part: MmsPart | None = None
    if text:
        data = text.encode()
        text_part = MmsPart(
            content_id=_unique(f"text{i}", f"text{i}-slide", ids),
            location=_unique(f"slide{i}.txt", f"slide{i}-text.txt", locations),
            content_type=TEXT_CONTENT_TYPE,
            size=len(data),
            data=data,
            slide=i,
        )
        ranked.append((_TEXT_RANK, 0, text_part))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [p for _, _, p in ranked], (visual, text_part, audio, dur_ms)


def smil_for(slides: Sequence[SlidePlan]) -> str:
    """The SMIL for (image-or-video, text, audio, duration ms) per slide, without an XML declaration."""
    # messages of one campaign share their layout: build each distinct presentation once
    return _smil(
        tuple(
            (
                None if visual is None else (visual.content_type.lower().startswith("video/"), visual.content_id),
                None if text is None else text.content_id,
                None if audio is None else audio.content_id,
                dur_ms,
            )
            for visual, text, audio, dur_ms in slides
        )
    )


_Presentation = tuple[tuple[tuple[bool, str] | None, str | None, str | None, int], ...]
"""Per slide: (is video, content id) of the image or video, the text's and the audio's content ids, ms."""


@functools.lru_cache(maxsize=1024)
def _smil(slides: _Presentation) -> str:
    smil = etree.Element("smil")
    layout = etree.SubElement(etree.SubElement(smil, "head"), "layout")
    etree.SubElement(layout, "root-layout", width="320", height="480")
    # only regions some slide plays in: the layout should describe what the message shows, nothing more
    if any(visual is not None for visual, _, _, _ in slides):
        etree.SubElement(layout, "region", id="Image", left="0", top="0", width="320", height="320", fit="meet")
    if any(text is not None for _, text, _, _ in slides):
        etree.SubElement(layout, "region", id="Text", left="0", top="320", width="320", height="160", fit="scroll")
    body = etree.SubElement(smil, "body")
    for visual, text, audio, dur_ms in slides:
        par = etree.SubElement(body, "par", dur=f"{dur_ms}ms")
        if visual is not None:
            is_video, content_id = visual
            etree.SubElement(par, "video" if is_video else "img", src=f"cid:{content_id}", region="Image")
        if text is not None:
            etree.SubElement(par, "text", src=f"cid:{text}", region="Text")
        if audio is not None:
            etree.SubElement(par, "audio", src=f"cid:{audio}")
    return str(etree.tostring(smil, encoding="unicode"))
