"""How many bytes a PDF's streams inflate to, counted without ever holding more than the limit.

A PDF of a few hundred kilobytes can carry a stream that inflates to gigabytes; pypdf only opens the
file and its page tree, so such a file passes as a good PDF and the handset that renders it pays. Every
stream the cross-reference names is decoded here with a bounded decompressor (zlib in chunks, never past
what is left of the budget) and the file is refused as soon as the total passes it. Image filters (JPEG,
JPEG 2000, fax, JBIG2) and filters pypdf does not know end a stream's chain: the bytes before them are
what is counted.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pypdf

MAX_PDF_INFLATED = 50 * 1024 * 1024
"""Most bytes all of a PDF's streams together may decode to; past it the PDF is refused as a bomb."""

_IN_CHUNK = 64 * 1024
_OUT_CHUNK = 1024 * 1024
_FLATE = frozenset({"/FlateDecode", "/Fl"})


class OverLimit(Exception):
    """The streams decode to more than the limit (the count stops there)."""


def inflated_size(reader: pypdf.PdfReader, limit: int = MAX_PDF_INFLATED) -> int:
    """The bytes every stream of the PDF decodes to, or :class:`OverLimit` once past ``limit``."""
    from pypdf.generic import IndirectObject, StreamObject

    total = 0
    for generation, objects in reader.xref.items():
        for number in objects:
            found = reader.get_object(IndirectObject(number, generation, reader))
            if isinstance(found, StreamObject):
                total += _decoded_size(found, limit - total)
    return total


def _decoded_size(stream: pypdf.generic.StreamObject, room: int) -> int:
    from pypdf.generic import ArrayObject

    filters = _resolved(stream.get("/Filter"))
    if isinstance(filters, ArrayObject):
        chain = [str(_resolved(f)) for f in filters]
    else:
        chain = [str(filters)] if filters is not None else []
    parms = _resolved(stream.get("/DecodeParms"))
    data = stream._data  # the stream's encoded bytes; pypdf's get_data() would decode without a bound
    for position, name in enumerate(chain):
        last = position == len(chain) - 1
        if name in _FLATE:
            size, data = _inflate(data, room, keep=not last)
            if last:
                return size
        else:
            each = _resolved(parms[position]) if isinstance(parms, ArrayObject) and position < len(parms) else parms
            decoded = _other(name, data, each)
            if decoded is None:
                break
            data = decoded
        if len(data) > room:
            raise OverLimit
    if len(data) > room:
        raise OverLimit
    return len(data)


def _resolved(value: object) -> object:
    from pypdf.generic import IndirectObject

    return value.get_object() if isinstance(value, IndirectObject) else value


def _inflate(data: bytes, room: int, *, keep: bool) -> tuple[int, bytes]:
    """Inflate in chunks, stopping past ``room``; keeps the output only when a later filter needs it.

    A stream that is not zlib data (or is cut short) counts what inflated before the error: a viewer
    cannot get more out of it either."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # a zlib or gzip header
    size = 0
    kept = bytearray()
    try:
        for start in range(0, len(data), _IN_CHUNK):
            pending = data[start : start + _IN_CHUNK]
            while pending and not inflater.eof:
                out = inflater.decompress(pending, _OUT_CHUNK)
                pending = inflater.unconsumed_tail
                size += len(out)
                if size > room:
                    raise OverLimit
                if keep:
                    kept += out
            if inflater.eof:
                break
    except zlib.error:
        pass
    return size, bytes(kept)


def _other(name: str, data: bytes, parms: object) -> bytes | None:
    """A text or run-length filter's output (pypdf bounds each), or None where the chain ends."""
    from pypdf import filters
    from pypdf.errors import LimitReachedError, PdfReadError
    from pypdf.generic import DictionaryObject

    decoders = {
        "/ASCIIHexDecode": filters.ASCIIHexDecode.decode,
        "/AHx": filters.ASCIIHexDecode.decode,
        "/ASCII85Decode": filters.ASCII85Decode.decode,
        "/A85": filters.ASCII85Decode.decode,
        "/RunLengthDecode": filters.RunLengthDecode.decode,
        "/RL": filters.RunLengthDecode.decode,
        "/LZWDecode": filters.LZWDecode.decode,
        "/LZW": filters.LZWDecode.decode,
    }
    decode = decoders.get(name)
    if decode is None:
        return None
    try:
        return decode(data, parms if isinstance(parms, DictionaryObject) else None)
    except LimitReachedError as exc:  # pypdf's own cap per stream, above ours
        raise OverLimit from exc
    except (PdfReadError, ValueError, IndexError):
        return None
