"""Composition of a message and its prepared parts into a carrier-independent MMS with OMA SMIL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree  # lxml ships no type information

from mmsgate.core.compose import compose
from mmsgate.core.mms import TEXT_CONTENT_TYPE, Mms
from mmsgate.core.model import Media, MediaKind, Message, Part, Sending, Slide

ALLOWED = {"smil", "head", "layout", "root-layout", "region", "body", "par", "img", "video", "text", "audio"}
TYPES = {
    MediaKind.IMAGE: "image/jpeg",
    MediaKind.AUDIO: "audio/amr",
    MediaKind.VIDEO: "video/3gpp",
    MediaKind.CONTACT: "text/vcard",
    MediaKind.CALENDAR: "text/calendar",
    MediaKind.PDF: "application/pdf",
}
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def message(*slides: Slide) -> Message:
    sending = Sending(
        subject="Hello",
        fallback_sms_text=None,
        disable_fallback_sms=False,
        disable_fallback_sms_link=False,
        fallback_link_expires_at=EXPIRES,
        client_reference="ref-7",
        slides=slides,
    )
    return Message(
        tracking_id="t-1",
        account_id="acc",
        service_id="svc",
        to="15551230000",
        sender="12345",
        from_mask="Shop",
        expires_at=EXPIRES,
        cache_content=True,
        sending=sending,
        mms_id="m-9",
    )


def slide(text: str | None, *kinds: MediaKind) -> Slide:
    return Slide(text=text, media=tuple(Media(k, f"https://example.com/{k.value}") for k in kinds))


def parts_of(msg: Message, durations: dict[MediaKind, float] | None = None) -> list[Part]:
    """Parts as the media stage makes them: position 1-based over the message, slide 1-based."""
    out: list[Part] = []
    for n, s in enumerate(msg.sending.slides, 1):
        for media in s.media:
            position = len(out) + 1
            out.append(
                Part(
                    "t-1",
                    position,
                    n,
                    media.kind,
                    TYPES[media.kind],
                    1000 + position,
                    f"{position:064x}",
                    media.url,
                    duration=(durations or {}).get(media.kind, 0.0),
                )
            )
    return out


def smil_tree(mms: Mms) -> Any:
    return etree.fromstring(mms.smil.encode())


def srcs(mms: Mms) -> list[str]:
    return [e.get("src") for e in smil_tree(mms).iter() if e.get("src") is not None]


def test_one_par_per_slide_with_only_oma_elements() -> None:
    msg = message(slide("a", MediaKind.IMAGE), slide(None, MediaKind.VIDEO), slide("c", MediaKind.AUDIO))
    mms = compose(msg, parts_of(msg))
    root = smil_tree(mms)
    assert root.tag == "smil"
    assert not mms.smil.startswith("<?xml")
    assert len(root.findall("body/par")) == 3
    assert {e.tag for e in root.iter()} <= ALLOWED
    assert [[c.tag for c in par] for par in root.findall("body/par")] == [["img", "text"], ["video"], ["text", "audio"]]
    assert root.find("body/par/audio").get("region") is None


def test_every_src_resolves_to_a_part() -> None:
    msg = message(slide("x", MediaKind.IMAGE, MediaKind.AUDIO), slide("y", MediaKind.VIDEO), slide("z"))
    mms = compose(msg, parts_of(msg))
    ids = {p.content_id for p in mms.parts}
    assert srcs(mms)
    for src in srcs(mms):
        assert src.startswith("cid:")
        assert src.removeprefix("cid:") in ids


def test_text_part_is_the_slide_text_in_utf8() -> None:
    mms = compose(message(slide("Café ☕")), [])
    (text,) = mms.parts
    assert text.data == "Café ☕".encode()
    assert text.size == len("Café ☕".encode()) == 9
    assert (text.content_type, text.content_id, text.location, text.sha256) == (
        TEXT_CONTENT_TYPE,
        "text1",
        "slide1.txt",
        None,
    )
    assert smil_tree(mms).find("head/layout/region[@id='Image']") is None  # nothing visual: no Image region


def test_part_order_is_visual_text_audio_then_attachments() -> None:
    msg = message(slide("hi", MediaKind.AUDIO, MediaKind.IMAGE), slide("card", MediaKind.CONTACT))
    mms = compose(msg, list(reversed(parts_of(msg))))  # given out of order on purpose
    assert [p.content_id for p in mms.parts] == ["image1", "text1", "audio1", "text2", "part3"]
    assert [p.location for p in mms.parts] == ["slide1.jpg", "slide1.txt", "slide1.amr", "slide2.txt", "slide2.vcf"]
    assert [p.sha256 for p in mms.parts] == [f"{2:064x}", None, f"{1:064x}", None, f"{3:064x}"]


@pytest.mark.parametrize(
    ("kind", "seconds", "dur"),
    [
        (MediaKind.AUDIO, 7.2, "7200ms"),
        (MediaKind.VIDEO, 12.0001, "12001ms"),
        (MediaKind.AUDIO, 3.0, "5000ms"),
        (MediaKind.VIDEO, 0.0, "5000ms"),
        (MediaKind.IMAGE, 9.0, "5000ms"),
    ],
)
def test_slide_lasts_as_long_as_its_audio_or_video(kind: MediaKind, seconds: float, dur: str) -> None:
    msg = message(slide("t", kind))
    par = smil_tree(compose(msg, parts_of(msg, {kind: seconds}))).find("body/par")
    assert par.get("dur") == dur


def test_attachments_are_parts_but_not_in_smil() -> None:
    msg = message(slide(None, MediaKind.PDF), slide("see", MediaKind.CALENDAR), slide(None, MediaKind.CONTACT))
    mms = compose(msg, parts_of(msg))
    assert [p.content_type for p in mms.parts] == ["application/pdf", TEXT_CONTENT_TYPE, "text/calendar", "text/vcard"]
    assert [p.location for p in mms.parts] == ["slide1.pdf", "slide2.txt", "slide2.ics", "slide3.vcf"]
    assert srcs(mms) == ["cid:text2"]
    pars = smil_tree(mms).findall("body/par")
    assert len(pars) == 3
    assert [(len(p), p.get("dur")) for p in pars] == [(0, "5000ms"), (1, "5000ms"), (0, "5000ms")]
    assert '<par dur="5000ms"/>' in mms.smil


def test_regions_only_for_what_slides_show() -> None:
    msg = message(slide(None, MediaKind.IMAGE))
    root = smil_tree(compose(msg, parts_of(msg)))
    assert [(e.tag, e.get("id")) for e in root.find("head/layout")] == [("root-layout", None), ("region", "Image")]
    root = smil_tree(compose(message(slide(None, MediaKind.PDF)), []))
    assert [e.tag for e in root.find("head/layout")] == ["root-layout"]


def test_ids_and_locations_unique_across_eight_slides() -> None:
    kinds = [MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.VIDEO, MediaKind.CONTACT, MediaKind.CALENDAR, MediaKind.PDF]
    msg = message(*(slide(f"slide {n}", kinds[n % 6], *([MediaKind.AUDIO] if n % 6 == 0 else [])) for n in range(8)))
    mms = compose(msg, parts_of(msg))
    assert len(mms.parts) == 8 + 10
    assert len({p.content_id for p in mms.parts}) == len(mms.parts)
    assert len({p.location for p in mms.parts}) == len(mms.parts)
    assert len(smil_tree(mms).findall("body/par")) == 8
    assert [p.slide for p in mms.parts] == sorted(p.slide for p in mms.parts)


def test_envelope_fields_and_size() -> None:
    msg = message(slide("Café ☕", MediaKind.IMAGE))
    mms = compose(msg, parts_of(msg))
    assert (mms.tracking_id, mms.account_id, mms.service_id, mms.to, mms.sender, mms.from_mask) == (
        "t-1",
        "acc",
        "svc",
        "15551230000",
        "12345",
        "Shop",
    )
    assert (mms.subject, mms.expires_at, mms.client_reference, mms.mms_id) == ("Hello", EXPIRES, "ref-7", "m-9")
    assert mms.size == 1001 + 9 + len(mms.smil.encode())


def test_a_part_of_no_slide_is_refused() -> None:
    msg = message(slide("only"))
    stray = Part("t-1", 1, 2, MediaKind.IMAGE, "image/jpeg", 10, "0" * 64, "https://example.com/i")
    with pytest.raises(ValueError, match="no slide"):
        compose(msg, [stray])
