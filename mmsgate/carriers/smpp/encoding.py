"""How a fallback SMS text becomes SMPP segments, and how a received segment becomes text again.

GSM 7-bit (data_coding 0x00) when every character is in the GSM 03.38 default alphabet or its extension
table, else UCS-2 (data_coding 0x08, UTF-16BE: a character outside the BMP, such as an emoji, takes two
units). GSM 7-bit goes unpacked, one septet per octet; an extension character is ESC (0x1B) plus one
septet, so it counts two. One segment holds 160 septets or 70 UCS-2 units. A longer text is concatenated:
each segment starts with the UDH ``05 00 03 ref total seq`` and holds 153 septets or 67 units, never
splitting an escape pair or a surrogate pair; at most 255 segments.

The GSM 03.38 table is the ``gsm0338`` package's codec (registered when the package is imported).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import gsm0338

_GSM: str = gsm0338.Codec.NAME
"""The codec's name, ``gsm03.38``."""
_ESC = 0x1B
_UDH_CONCAT_8BIT = 0x00
_UDH_CONCAT_16BIT = 0x08
MAX_SEGMENTS = 255


class DataCoding(enum.IntEnum):
    """The SMPP data_coding of the segments sent."""

    GSM7 = 0x00
    UCS2 = 0x08


_SINGLE_OCTETS = {DataCoding.GSM7: 160, DataCoding.UCS2: 140}
"""Payload octets in an SMS of one segment: 160 unpacked septets, 70 UCS-2 units."""
_PART_OCTETS = {DataCoding.GSM7: 153, DataCoding.UCS2: 134}
"""Payload octets in each segment of a concatenated SMS: 153 septets, 67 UCS-2 units."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One SMPP submit_sm's worth of an SMS."""

    data_coding: DataCoding
    udh: bytes
    """The user data header, with its length octet; ``b""`` when the SMS is one segment."""
    payload: bytes
    """The text's bytes in this segment: GSM 7-bit septets one per octet, or UTF-16BE."""

    @property
    def short_message(self) -> bytes:
        """The SMPP short_message: the UDH, then the payload."""
        return self.udh + self.payload

    @property
    def esm_class(self) -> int:
        """The SMPP esm_class: 0x40 (UDH indicator) when there is a UDH, else 0x00."""
        return 0x40 if self.udh else 0x00


def _gsm7_bytes(text: str) -> bytes | None:
    """``text`` in GSM 7-bit, one septet per octet; None when a character is not in the alphabet."""
    # The codec maps U+001B to a bare ESC octet, which a receiver would read as the start of an escape pair.
    if "\x1b" in text:
        return None
    try:
        return text.encode(_GSM)
    except UnicodeEncodeError:
        return None


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 default alphabet or its extension table."""
    return _gsm7_bytes(text) is not None


def _gsm7_char_octets(data: bytes, at: int) -> int:
    return 2 if data[at] == _ESC else 1


def _ucs2_char_octets(data: bytes, at: int) -> int:
    return 4 if 0xD8 <= data[at] <= 0xDB else 2  # a high surrogate starts a pair


def _split(data: bytes, limit: int, char_octets: Callable[[bytes, int], int]) -> list[bytes]:
    """``data`` in chunks of at most ``limit`` octets, never cutting through a character."""
    chunks: list[bytes] = []
    start = end = 0
    while end < len(data):
        size = char_octets(data, end)
        if end + size - start > limit:
            chunks.append(data[start:end])
            start = end
        end += size
    chunks.append(data[start:])
    return chunks


def encode_sms(text: str, *, reference: int) -> list[Segment]:
    """``text`` as the segments of one SMS, in order; ``reference`` (0 to 255) ties them together in the UDH.

    Empty text is one empty segment. Raises ValueError when the text needs more than 255 segments (or has
    a lone surrogate, which UTF-16 cannot carry)."""
    if not 0 <= reference <= 255:
        raise ValueError(f"concatenation reference must be 0 to 255, not {reference}")
    gsm7 = _gsm7_bytes(text)
    if gsm7 is not None:
        coding, data, char_octets = DataCoding.GSM7, gsm7, _gsm7_char_octets
    else:
        coding, data, char_octets = DataCoding.UCS2, text.encode("utf-16-be"), _ucs2_char_octets
    if len(data) <= _SINGLE_OCTETS[coding]:
        return [Segment(coding, b"", data)]
    too_long = ValueError(
        f"SMS text too long: it needs more than {MAX_SEGMENTS} segments "
        f"({len(data)} octets of {coding.name}, at most {_PART_OCTETS[coding]} a segment)"
    )
    if len(data) > MAX_SEGMENTS * _PART_OCTETS[coding]:  # before splitting a huge text
        raise too_long
    chunks = _split(data, _PART_OCTETS[coding], char_octets)
    if len(chunks) > MAX_SEGMENTS:
        raise too_long
    total = len(chunks)
    return [
        Segment(coding, bytes((5, _UDH_CONCAT_8BIT, 3, reference, total, seq)), chunk)
        for seq, chunk in enumerate(chunks, start=1)
    ]


def _decode_gsm7(data: bytes) -> str:
    """Unpacked GSM 7-bit as text, leniently: what the codec cannot read is shown as 3GPP TS 23.038 says
    (an unknown escape pair as its second septet, ESC ESC as a space), an octet above 0x7F as U+FFFD, a
    trailing ESC not at all."""
    try:
        return data.decode(_GSM)
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    at = 0
    while at < len(data):
        if data[at] != _ESC:
            out.append(data[at : at + 1].decode(_GSM, "replace"))
            at += 1
            continue
        pair = data[at : at + 2]
        at += 2
        if len(pair) < 2:
            break
        try:
            out.append(pair.decode(_GSM))
        except UnicodeDecodeError:
            out.append(" " if pair[1] == _ESC else pair[1:].decode(_GSM, "replace"))
    return "".join(out)


def decode_segment(short_message: bytes, data_coding: int, *, has_udh: bool) -> tuple[bytes, str]:
    """(udh, text) of one received segment (for MO SMS and tests); data_coding 0 as GSM 03.38, 8 as UCS-2,
    3 as Latin-1, 1 as ASCII.

    The UDH keeps its length octet (``b""`` without ``has_udh``). Bytes the coding cannot read become
    U+FFFD rather than an error. Raises ValueError for another data_coding or a UDH longer than the
    message."""
    udh = b""
    payload = short_message
    if has_udh:
        if not short_message or 1 + short_message[0] > len(short_message):
            raise ValueError(f"malformed UDH: {short_message[:8].hex()}")
        udh, payload = short_message[: 1 + short_message[0]], short_message[1 + short_message[0] :]
    if data_coding == 0x00:
        return udh, _decode_gsm7(payload)
    if data_coding == 0x08:
        return udh, payload.decode("utf-16-be", "replace")
    if data_coding == 0x03:
        return udh, payload.decode("latin-1")
    if data_coding == 0x01:
        return udh, payload.decode("ascii", "replace")
    raise ValueError(f"unsupported data_coding 0x{data_coding:02x}")


def concat_info(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, seq) from a UDH with an 8-bit (IEI 0x00) or 16-bit (IEI 0x08) concatenation element,
    else None.

    ``udh`` starts with its length octet. An element with total or seq 0, or seq above total, is ignored
    (3GPP TS 23.040), as is a malformed UDH."""
    if not udh or 1 + udh[0] > len(udh):
        return None
    elements = udh[1 : 1 + udh[0]]
    at = 0
    while at + 2 <= len(elements):
        iei, length = elements[at], elements[at + 1]
        data = elements[at + 2 : at + 2 + length]
        at += 2 + length
        if len(data) < length:
            return None
        if iei == _UDH_CONCAT_8BIT and length == 3:
            reference, total, seq = data[0], data[1], data[2]
        elif iei == _UDH_CONCAT_16BIT and length == 4:
            reference, total, seq = int.from_bytes(data[:2], "big"), data[2], data[3]
        else:
            continue
        if total == 0 or not 1 <= seq <= total:
            return None
        return reference, total, seq
    return None
