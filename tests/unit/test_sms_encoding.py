"""Fallback SMS encoding: GSM 7-bit or UCS-2, splitting into concatenated SMPP segments, and decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmsgate.carriers.smpp.encoding import DataCoding, Segment, concat_info, decode_segment, encode_sms, is_gsm7

EMOJI = "😀"


def _decoded(segments: list[Segment], reference: int) -> str:
    """The text back from the segments, checking each one's size and that its UDH names its place."""
    total = len(segments)
    parts = []
    for seq, segment in enumerate(segments, start=1):
        if total == 1:
            limit = 160 if segment.data_coding is DataCoding.GSM7 else 140
        else:
            limit = 153 if segment.data_coding is DataCoding.GSM7 else 134
        assert len(segment.payload) <= limit
        udh, text = decode_segment(segment.short_message, segment.data_coding, has_udh=bool(segment.udh))
        assert udh == segment.udh
        assert concat_info(udh) == (None if total == 1 else (reference, total, seq))
        parts.append(text)
    return "".join(parts)


def test_empty_text_is_one_empty_segment() -> None:
    assert encode_sms("", reference=0) == [Segment(DataCoding.GSM7, b"", b"")]


def test_160_septets_fit_one_segment() -> None:
    (segment,) = encode_sms("a" * 160, reference=1)
    assert segment.data_coding is DataCoding.GSM7
    assert segment.udh == b""
    assert segment.esm_class == 0x00
    assert segment.short_message == b"a" * 160


def test_161_septets_make_two_concatenated_segments() -> None:
    first, second = encode_sms("a" * 161, reference=0x2A)
    assert first.udh == bytes.fromhex("0500032a0201")
    assert second.udh == bytes.fromhex("0500032a0202")
    assert first.payload == b"a" * 153
    assert second.payload == b"a" * 8
    assert first.esm_class == second.esm_class == 0x40
    assert first.short_message == bytes.fromhex("0500032a0201") + b"a" * 153


def test_extension_characters_count_two_septets() -> None:
    (segment,) = encode_sms("€" * 80, reference=0)
    assert segment.payload == b"\x1be" * 80
    assert len(encode_sms("€" * 80 + "a", reference=0)) == 2


def test_an_escape_pair_is_never_split_between_segments() -> None:
    # 152 septets, then € (ESC e) would end at septet 154: it opens the second segment instead.
    text = "a" * 152 + "€" + "b" * 10
    first, second = encode_sms(text, reference=3)
    assert first.payload == b"a" * 152
    assert second.payload == b"\x1be" + b"b" * 10
    assert _decoded([first, second], 3) == text


def test_70_ucs2_units_fit_one_segment_71_do_not() -> None:
    (segment,) = encode_sms("ł" * 70, reference=0)
    assert segment.data_coding is DataCoding.UCS2
    assert segment.payload == "ł".encode("utf-16-be") * 70
    first, second = encode_sms("ł" * 71, reference=9)
    assert first.udh == bytes.fromhex("050003090201")
    assert len(first.payload) == 67 * 2
    assert len(second.payload) == 4 * 2


def test_an_emoji_counts_two_units_and_its_surrogate_pair_is_never_split() -> None:
    (segment,) = encode_sms("ł" * 68 + EMOJI, reference=0)
    assert len(segment.payload) == 140
    assert len(encode_sms("ł" * 69 + EMOJI, reference=0)) == 2
    # 66 units, then the emoji would end at unit 68: it opens the second segment instead.
    text = "ł" * 66 + EMOJI + "x" * 10
    first, second = encode_sms(text, reference=0)
    assert first.payload == "ł".encode("utf-16-be") * 66
    assert second.payload.startswith(EMOJI.encode("utf-16-be"))
    assert decode_segment(first.payload, 8, has_udh=False)[1] == "ł" * 66
    assert decode_segment(second.payload, 8, has_udh=False)[1] == EMOJI + "x" * 10


def test_one_character_outside_gsm_makes_the_whole_text_ucs2() -> None:
    segments = encode_sms("Hello {world} €5 " + EMOJI, reference=0)
    assert [s.data_coding for s in segments] == [DataCoding.UCS2]
    assert segments[0].payload.decode("utf-16-be") == "Hello {world} €5 " + EMOJI


def test_the_escape_control_character_itself_is_not_gsm7() -> None:
    # gsm0338 encodes U+001B as a bare ESC, which would swallow the next septet.
    assert not is_gsm7("a\x1bb")
    (segment,) = encode_sms("a\x1bb", reference=0)
    assert segment.data_coding is DataCoding.UCS2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@£$¥èéùìòÇ", True),
        ("äöüñÄÖÜÑßÆæØøÅå§¿¡", True),
        ("ΔΦΓΛΩΠΨΣΘΞ", True),
        ("{}[]~\\|^€\f", True),
        ("line\r\nbreak", True),
        ("", True),
        ("ł", False),
        ("ç", False),  # only the capital Ç is in the table
        ("`", False),
        ("á", False),  # Spanish single shift table only, not the default extension
        (EMOJI, False),
    ],
)
def test_is_gsm7(text: str, expected: bool) -> None:
    assert is_gsm7(text) is expected


def test_255_segments_is_the_limit() -> None:
    assert len(encode_sms("a" * (255 * 153), reference=0)) == 255
    assert len(encode_sms("ł" * (255 * 67), reference=0)) == 255
    with pytest.raises(ValueError, match="more than 255 segments"):
        encode_sms("a" * (255 * 153 + 1), reference=0)
    with pytest.raises(ValueError, match="more than 255 segments"):
        encode_sms("ł" * (255 * 67 + 1), reference=0)


def test_the_limit_counts_segments_not_septets() -> None:
    # 76 € (152 septets) a segment, as a 77th would not fit: 255 × 76 + 1 € need 256 segments though their
    # 38,762 septets are fewer than 255 × 153.
    assert len(encode_sms("€" * (255 * 76), reference=0)) == 255
    with pytest.raises(ValueError, match="more than 255 segments"):
        encode_sms("€" * (255 * 76 + 1), reference=0)


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        encode_sms("a\ud800b", reference=0)


@pytest.mark.parametrize("reference", [-1, 256])
def test_reference_must_fit_one_octet(reference: int) -> None:
    with pytest.raises(ValueError, match="reference"):
        encode_sms("hi", reference=reference)


GSM_CHARACTERS = [*"abcXYZ 019.,!?@£$\n\r", *"{}[]~\\|^€\f", *"ΔΦΓΛΩΠΨΣΘΞ", *"äöüßÇé"]
GSM_ALPHABET = st.sampled_from(GSM_CHARACTERS)
ROUND_TRIP_ALPHABET = st.sampled_from([*GSM_CHARACTERS, "ł", "ç", EMOJI])


@given(st.text(ROUND_TRIP_ALPHABET, max_size=800))
def test_segments_decode_back_to_the_text(text: str) -> None:
    assert _decoded(encode_sms(text, reference=7), 7) == text


@given(st.text(GSM_ALPHABET, min_size=1, max_size=1200))
def test_gsm7_segments_decode_back_to_the_text(text: str) -> None:
    segments = encode_sms(text, reference=7)
    assert {s.data_coding for s in segments} == {DataCoding.GSM7}
    assert _decoded(segments, 7) == text
    assert all(not s.payload.endswith(b"\x1b") for s in segments)


@given(st.text(max_size=400))
def test_any_text_decodes_back(text: str) -> None:
    assert _decoded(encode_sms(text, reference=200), 200) == text


def test_concat_info_reads_an_8bit_reference() -> None:
    assert concat_info(bytes.fromhex("0500032a0302")) == (0x2A, 3, 2)


def test_concat_info_reads_a_16bit_reference() -> None:
    assert concat_info(bytes.fromhex("06080412340301")) == (0x1234, 3, 1)


def test_concat_info_skips_other_elements() -> None:
    # Application port addressing (IEI 0x05) before the concatenation element.
    assert concat_info(bytes.fromhex("0b05040b8423f00003aa0201")) == (0xAA, 2, 1)


@pytest.mark.parametrize(
    "udh",
    [
        b"",
        bytes.fromhex("0605040b8423f0"),  # port addressing only
        bytes.fromhex("050003010200"),  # seq 0
        bytes.fromhex("050003010203"),  # seq above total
        bytes.fromhex("050003010000"),  # total 0
        bytes.fromhex("0500030102"),  # shorter than its length octet says
        bytes.fromhex("03000301"),  # element longer than the header
    ],
)
def test_concat_info_is_none_without_a_valid_concatenation_element(udh: bytes) -> None:
    assert concat_info(udh) is None


def test_decode_segment_splits_off_the_udh() -> None:
    udh, text = decode_segment(bytes.fromhex("050003010201") + b"\x1be5", 0, has_udh=True)
    assert udh == bytes.fromhex("050003010201")
    assert text == "€5"


@pytest.mark.parametrize(
    ("message", "data_coding", "text"),
    [
        (b"caf\xe9", 3, "café"),
        (b"plain", 1, "plain"),
        (b"bad\xff", 1, "bad\ufffd"),
        ("ł".encode("utf-16-be") + b"\x00", 8, "ł\ufffd"),  # odd length
        (b"\x1bA", 0, "A"),  # unknown extension: shown as the default alphabet's character
        (b"a\x1b\x1bb", 0, "a b"),  # ESC ESC: a space
        (b"a\x80", 0, "a\ufffd"),
        (b"ab\x1b", 0, "ab"),  # trailing ESC
    ],
)
def test_decode_segment_reads_other_codings_and_bad_bytes(message: bytes, data_coding: int, text: str) -> None:
    assert decode_segment(message, data_coding, has_udh=False) == (b"", text)


def test_decode_segment_refuses_unknown_codings_and_broken_udhs() -> None:
    with pytest.raises(ValueError, match="data_coding 0x04"):
        decode_segment(b"\x00\x01", 4, has_udh=False)
    with pytest.raises(ValueError, match="UDH"):
        decode_segment(b"\x05\x00\x03", 0, has_udh=True)
    with pytest.raises(ValueError, match="UDH"):
        decode_segment(b"", 0, has_udh=True)
