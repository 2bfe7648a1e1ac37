"""Real media for the media tests, made with the real libraries (Pillow, PyAV, vobject, icalendar, pypdf).

Nothing here is a few magic bytes followed by filler: every "good" sample decodes with the library made
for its format, and every "bad" sample is bad in a way a real origin could serve (truncated, a bomb,
HTML, a text file posing as a PDF, a card that does not parse).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import icalendar
import pypdf
import vobject
from PIL import Image, ImageDraw

PHOTOS = Path(__file__).resolve().parent / "data" / "photos"  # public domain / CC0, see LICENSES.md there
"""Public-domain photos (see LICENSES.md there)."""
PHOTO_NAMES = ("coffee.png", "astronaut.png", "chelsea.png", "hubble_deep_field.jpg")


@functools.lru_cache(maxsize=8)
def _photo(name: str) -> Image.Image:
    with Image.open(PHOTOS / name) as img:
        return img.convert("RGB")


def photo(name: str = "coffee.png", size: tuple[int, int] | None = None) -> Image.Image:
    """One of the sample photos as RGB, scaled (up or down) to ``size`` when given."""
    img = _photo(name)
    if size is not None and size != img.size:
        return img.resize(size, Image.Resampling.BICUBIC)
    return img.copy()


# images ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def jpeg(width: int, height: int, quality: int = 85, source: str = "coffee.png") -> bytes:
    out = io.BytesIO()
    photo(source, (width, height)).save(out, "JPEG", quality=quality)
    return out.getvalue()


@functools.lru_cache(maxsize=16)
def png(width: int, height: int, source: str = "chelsea.png") -> bytes:
    out = io.BytesIO()
    photo(source, (width, height)).save(out, "PNG", compress_level=1)
    return out.getvalue()


@functools.lru_cache(maxsize=4)
def gif(frames: int, width: int, height: int, source: str = "hubble_deep_field.jpg", grain: float = 60.0) -> bytes:
    """An animated GIF: ``frames`` different crops of a photo panning across it, 100 ms each.

    Film grain (Gaussian noise of ``grain`` sigma, blended in) keeps LZW from compressing it much, the way
    real camera footage turned GIF does: 18 frames of 800×600 come to about 5 MB.
    """
    big = photo(source, (width * 2, height * 2))
    images: list[Image.Image] = []
    for i in range(frames):
        x = (i * width) // max(1, frames)
        y = (i * height) // max(1, frames)
        frame = big.crop((x, y, x + width, y + height))
        if grain > 0:
            frame = Image.blend(frame, Image.effect_noise((width, height), grain).convert("RGB"), 0.25)
        images.append(frame.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG))
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def truncated_jpeg(width: int = 640, height: int = 480) -> bytes:
    """A real JPEG cut off half way through its entropy-coded data."""
    whole = jpeg(width, height)
    return whole[: len(whole) // 2]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=2)
def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit grayscale PNG of ``width``×``height`` white pixels: a decompression bomb.

    Pillow would need one byte per pixel to decode it (900 MB for the default size), but the file is
    about 100 KB: each row is the same few hundred bytes, which zlib compresses about 1000:1. Built
    row by row so that generating it never holds the decoded image in memory.
    """
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter type 0, then the packed bits
    packer = zlib.compressobj(9)
    block = row * 256
    parts = [packer.compress(block) for _ in range(height // 256)]
    parts.append(packer.compress(row * (height % 256)))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def drawn_png(width: int = 64, height: int = 48) -> bytes:
    """A small PNG with a transparent background and a shape drawn on it (RGBA)."""
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((4, 4, width - 4, height - 4), fill=(200, 30, 30, 255))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


# audio ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _second_of_tone(rate: int, freq: float = 440.0) -> bytes:
    """One second of a sine tone, 16-bit little-endian mono (a whole number of cycles, so it loops cleanly)."""
    values = [int(12_000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(rate)]
    return struct.pack(f"<{rate}h", *values)


def _tone(samples: int, rate: int, start: int = 0) -> bytes:
    second = _second_of_tone(rate)
    offset = (start % rate) * 2
    needed = samples * 2
    looped = second * (2 + needed // len(second))
    return looped[offset : offset + needed]


def _audio(container: str, codec: str, rate: int, seconds: float, sample_format: str) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as target:
        stream = target.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        stream.codec_context.layout = "mono"
        stream.codec_context.format = sample_format
        frame_size = stream.codec_context.frame_size or 1024
        total = int(rate * seconds)
        done = 0
        while done < total:
            count = min(frame_size, total - done)
            frame = av.AudioFrame(format=sample_format, layout="mono", samples=count)
            frame.planes[0].update(_tone(count, rate, done))
            frame.sample_rate = rate
            frame.pts = done
            frame.time_base = Fraction(1, rate)
            done += count
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()


def mp3(seconds: float = 1.0) -> bytes:
    return _audio("mp3", "libmp3lame", 22_050, seconds, "s16p")


def wav(seconds: float = 1.0) -> bytes:
    return _audio("wav", "pcm_s16le", 8_000, seconds, "s16")


def amr(seconds: float = 1.0) -> bytes:
    return _audio("amr", "libopencore_amrnb", 8_000, seconds, "s16")


def broken_mp3(seconds: float = 1.0) -> bytes:
    """An MP3's ID3 header followed by bytes that are no MPEG audio at all: sniffs as MP3, decodes to nothing."""
    whole = mp3(seconds)
    id3_size = 10 + _syncsafe(whole[6:10])
    return whole[:id3_size] + bytes((i * 37) % 251 for i in range(4000))


def _syncsafe(data: bytes) -> int:
    value = 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
    return value


# video ----------------------------------------------------------------------------------------------
def _rgb_frame(img: Image.Image) -> av.VideoFrame:
    frame = av.VideoFrame(img.width, img.height, "rgb24")
    plane = frame.planes[0]
    raw = img.tobytes()
    stride = img.width * 3
    if plane.line_size == stride:
        plane.update(raw)
    else:
        pad = b"\x00" * (plane.line_size - stride)
        plane.update(b"".join(raw[y * stride : (y + 1) * stride] + pad for y in range(img.height)))
    return frame


def _video(container: str, codec: str, width: int, height: int, frames: int, fps: int, with_audio: bool) -> bytes:
    scene = photo("astronaut.png", (width * 2, height * 2))
    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as target:
        stream = target.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        audio = None
        if with_audio:
            audio = target.add_stream("aac", rate=22_050)
            audio.codec_context.layout = "mono"
            audio.codec_context.format = "fltp"
        for i in range(frames):
            x = (i * width) // max(1, frames)
            frame = _rgb_frame(scene.crop((x, x // 2, x + width, x // 2 + height))).reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
        if audio is not None:
            _mux_silence(target, audio, frames / fps)
    return out.getvalue()


def _mux_silence(target: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    size = stream.codec_context.frame_size or 1024
    done = 0
    while done < int(rate * seconds):
        frame = av.AudioFrame(format="fltp", layout="mono", samples=size)
        frame.planes[0].update(struct.pack(f"<{size}f", *(0.2 * math.sin(i / 5) for i in range(size))))
        frame.sample_rate = rate
        frame.pts = done
        frame.time_base = Fraction(1, rate)
        done += size
        for packet in stream.encode(frame):
            target.mux(packet)
    for packet in stream.encode(None):
        target.mux(packet)


def mp4(width: int = 160, height: int = 120, frames: int = 10, *, with_audio: bool = False) -> bytes:
    return _video("mp4", "libx264", width, height, frames, 10, with_audio)


def three_gp(width: int = 176, height: int = 144, frames: int = 10) -> bytes:
    return _video("3gp", "h263", width, height, frames, 10, False)


def quicktime(width: int = 160, height: int = 120, frames: int = 10) -> bytes:
    return _video("mov", "libx264", width, height, frames, 10, False)


def avi(width: int = 160, height: int = 120, frames: int = 10) -> bytes:
    return _video("avi", "mpeg4", width, height, frames, 10, False)


def mpeg(width: int = 160, height: int = 120, frames: int = 10) -> bytes:
    return _video("mpeg", "mpeg1video", width, height, frames, 25, False)


def wmv(width: int = 160, height: int = 120, frames: int = 10) -> bytes:
    return _video("asf", "wmv2", width, height, frames, 10, False)


# documents ------------------------------------------------------------------------------------------
def vcard(name: str = "Jane Doe") -> bytes:
    card = vobject.vCard()
    card.add("fn").value = name
    given, _, family = name.partition(" ")
    card.add("n").value = vobject.vcard.Name(family=family, given=given)
    card.add("tel").value = "+15550100001"
    card.add("email").value = "jane@example.com"
    text: str = card.serialize()
    return text.encode()


def icalendar_bytes(summary: str = "Launch review") -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//mmsgate tests//EN")
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", "review-1@example.com")
    event.add("summary", summary)
    event.add("dtstart", dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC))
    event.add("dtend", dt.datetime(2026, 7, 1, 16, 0, tzinfo=dt.UTC))
    event.add("dtstamp", dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def pdf(pages: int = 1) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_streams(*streams: tuple[bytes, tuple[str, ...]]) -> bytes:
    """A one-page PDF whose page content is the given streams, each stored as given under its filters
    (e.g. ``(zlib.compress(b"..."), ("/FlateDecode",))``), with a correct cross-reference table."""
    first = 4
    refs = " ".join(f"{first + i} 0 R" for i in range(len(streams)))
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [{refs}] >>".encode(),
    ]
    for data, filters in streams:
        names = " ".join(filters)
        bodies.append(f"<< /Length {len(data)} /Filter [{names}] >>\nstream\n".encode() + data + b"\nendstream")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def deflated_zeros(size: int) -> bytes:
    """``size`` zero bytes deflated at level 9 (about a thousand times smaller), made a megabyte at a time."""
    deflater = zlib.compressobj(9)
    block = bytes(1024 * 1024)
    parts = [deflater.compress(block[: min(len(block), size - done)]) for done in range(0, size, len(block))]
    return b"".join(parts) + deflater.flush()


@functools.lru_cache(maxsize=2)
def pdf_bomb(inflated: int = 300 * 1024 * 1024) -> bytes:
    """A valid PDF of about 300 KB whose one content stream inflates to ``inflated`` bytes of zeros."""
    return pdf_with_streams((deflated_zeros(inflated), ("/FlateDecode",)))


def malformed_vcard() -> bytes:
    """Starts like a vCard, then a line that is no property, and the card is never closed."""
    return b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nthis line is not a property\r\n"


def malformed_icalendar() -> bytes:
    """Starts like a calendar, has an event, and is never closed."""
    return b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:Never closed\r\nDTSTART:20260701T150000Z\r\n"


def icalendar_bad_date() -> bytes:
    """Structurally complete, but the event's start is not a date."""
    return (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:1@example.com\r\n"
        b"SUMMARY:Meet\r\nDTSTART:next tuesday-ish\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def fake_pdf() -> bytes:
    """A PDF header and trailer keyword around bytes that are no PDF objects: sniffs as PDF, does not open."""
    return b"%PDF-1.7\n" + bytes((i * 131) % 256 for i in range(3000)) + b"\n%%EOF\n"


def letter() -> bytes:
    """Plain text that an origin might label application/pdf."""
    return b"Dear customer,\n\nYour invoice is attached.\n\nRegards\n" * 20


def html() -> bytes:
    return (
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
        b"<body><h1>Not Found</h1><p>The requested image was not found.</p></body></html>\n"
    )


def noise(size: int = 4096) -> bytes:
    """Bytes that prove no type at all."""
    return bytes((i * 7919 + (i >> 3)) % 256 for i in range(size))
