"""The bound on what a PDF's streams inflate to: every filter chain a bomb can hide in, and good PDFs."""

from __future__ import annotations

import base64
import io
import zlib

import pypdf
import pytest

from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.inspect import inspect_content
from mmsgate.media.pdf import MAX_PDF_INFLATED, OverLimit, inflated_size
from tests import media_samples as samples

MB = 1024 * 1024


def reader(document: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(document), strict=False)


def test_a_300_mb_bomb_of_300_kb_is_refused_e629() -> None:
    bomb = samples.pdf_bomb(300 * MB)
    assert len(bomb) < 400 * 1024
    assert len(reader(bomb).pages) == 1  # pypdf alone opens it as a good one-page PDF
    with pytest.raises(MediaError) as refused:
        inspect_content(MediaKind.PDF, "application/pdf", bomb)
    assert refused.value.code == "E629"
    assert f"past {MAX_PDF_INFLATED} bytes" in refused.value.detail


def test_good_pdfs_pass_and_their_streams_are_counted() -> None:
    assert inspect_content(MediaKind.PDF, "application/pdf", samples.pdf(3)).frames == 3
    text = b"BT /F1 12 Tf 72 712 Td (Hello) Tj ET\n"
    document = samples.pdf_with_streams((zlib.compress(text), ("/FlateDecode",)), (b"0 0 m 9 9 l S", ()))
    assert inspect_content(MediaKind.PDF, "application/pdf", document).frames == 1
    assert inflated_size(reader(document)) == len(text) + len(b"0 0 m 9 9 l S")


def test_the_limit_is_on_all_streams_together() -> None:
    """Many streams each well under the limit, together over it."""
    each = samples.deflated_zeros(MAX_PDF_INFLATED // 4 + 1)
    document = samples.pdf_with_streams(*[(each, ("/FlateDecode",))] * 4)
    with pytest.raises(OverLimit):
        inflated_size(reader(document))
    assert inflated_size(reader(samples.pdf_with_streams(*[(each, ("/FlateDecode",))] * 3))) == 3 * len(
        zlib.decompress(each)
    )


@pytest.mark.parametrize(
    "chain",
    [
        ("/Fl",),
        ("/ASCII85Decode", "/FlateDecode"),
        ("/ASCIIHexDecode", "/FlateDecode"),
        ("/FlateDecode", "/FlateDecode"),
        ("/FlateDecode", "/DCTDecode"),
    ],
)
def test_a_bomb_is_found_behind_any_chain_of_filters(chain: tuple[str, ...]) -> None:
    data = bytes(12 * MB)
    for name in reversed(chain):  # encode last filter first: the reader decodes in the listed order
        if name in ("/Fl", "/FlateDecode"):
            data = zlib.compress(data, 9)
        elif name == "/ASCII85Decode":
            data = base64.a85encode(data) + b"~>"
        elif name == "/ASCIIHexDecode":
            data = data.hex().encode() + b">"
    document = samples.pdf_with_streams((data, chain))
    assert len(document) < MB
    with pytest.raises(OverLimit):
        inflated_size(reader(document), limit=10 * MB)
    assert inflated_size(reader(document), limit=13 * MB) == 12 * MB


def test_a_stream_that_is_not_zlib_counts_what_it_holds() -> None:
    document = samples.pdf_with_streams((b"no zlib here", ("/FlateDecode",)), (b"abc", ("/JBIG2Decode",)))
    assert inflated_size(reader(document)) == 3
    assert inspect_content(MediaKind.PDF, "application/pdf", document).frames == 1
