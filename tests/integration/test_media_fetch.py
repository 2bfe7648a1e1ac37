"""Media fetch under the contract's rules (section 3), against a real HTTP origin on a loopback port.

Each test fetches with the product's :class:`Fetcher` (SSRF guard included, loopback allowed explicitly)
and proves the content with :func:`decide_type` and :func:`inspect_content`, then asserts the contract's
code for the outcome. The address guard is also tested on its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import resource
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from mmsgate.common.guard import AddressGuard, BlockedAddress, UnresolvedHost, parse_networks
from mmsgate.core.model import MediaKind
from mmsgate.errors import MediaError
from mmsgate.media.fetch import DEFAULT_CAPS, MAX_REDIRECTS, Fetched, Fetcher, FetchLimits
from mmsgate.media.inspect import MAX_PIXELS, MediaInfo, inspect_content
from mmsgate.media.sniff import decide_type
from tests import media_samples as samples
from tests.integration.media_origin import Origin, Reply, file_reply, redirect, status_reply, wait_for

LOOPBACK = AddressGuard(parse_networks("127.0.0.0/8"))
K = MediaKind
FETCH_FAILED = {
    K.IMAGE: "E351",
    K.AUDIO: "E352",
    K.VIDEO: "E353",
    K.CONTACT: "E355",
    K.CALENDAR: "E356",
    K.PDF: "E357",
}
TOO_BIG = {K.IMAGE: "E331", K.AUDIO: "E332", K.VIDEO: "E333", K.CONTACT: "E335", K.CALENDAR: "E336", K.PDF: "E337"}
BAD_CONTENT = {K.IMAGE: "E341", K.AUDIO: "E629", K.VIDEO: "E629", K.CONTACT: "E629", K.CALENDAR: "E629", K.PDF: "E629"}
A_SAMPLE: dict[MediaKind, Callable[[], bytes]] = {
    K.IMAGE: lambda: samples.jpeg(320, 240),
    K.AUDIO: samples.mp3,
    K.VIDEO: samples.mp4,
    K.CONTACT: samples.vcard,
    K.CALENDAR: samples.icalendar_bytes,
    K.PDF: samples.pdf,
}
A_TYPE = {
    K.IMAGE: "image/jpeg",
    K.AUDIO: "audio/mpeg",
    K.VIDEO: "video/mp4",
    K.CONTACT: "text/vcard",
    K.CALENDAR: "text/calendar",
    K.PDF: "application/pdf",
}


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = await Origin().start()
    yield server
    await server.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    the_fetcher = Fetcher(LOOPBACK, FetchLimits(connect_timeout=2.0, read_timeout=5.0, total_timeout=10.0))
    yield the_fetcher
    await the_fetcher.aclose()


@dataclass(frozen=True)
class Obtained:
    fetched: Fetched
    content_type: str
    info: MediaInfo


async def obtain(fetcher: Fetcher, url: str, kind: MediaKind) -> Obtained:
    """Fetch, decide the type and prove the content, as the media stage does (or raise MediaError)."""
    fetched = await fetcher.fetch(url, kind)
    content_type = decide_type(kind, fetched.content_type, fetched.body)
    info = await asyncio.to_thread(inspect_content, kind, content_type, fetched.body)
    return Obtained(fetched, content_type, info)


async def refusal(fetcher: Fetcher, url: str, kind: MediaKind) -> MediaError:
    with pytest.raises(MediaError) as caught:
        await obtain(fetcher, url, kind)
    return caught.value


# every accepted type of every kind -----------------------------------------------------------------
ACCEPTED: list[tuple[MediaKind, str, Callable[[], bytes], str]] = [
    (K.IMAGE, "image/jpeg", lambda: samples.jpeg(640, 480), "image/jpeg"),
    (K.IMAGE, "image/jpg", lambda: samples.jpeg(320, 240), "image/jpeg"),
    (K.IMAGE, "image/png", lambda: samples.png(320, 240), "image/png"),
    (K.IMAGE, "image/gif", lambda: samples.gif(4, 160, 120), "image/gif"),
    (K.AUDIO, "audio/mpeg", samples.mp3, "audio/mpeg"),
    (K.AUDIO, "audio/mp3", samples.mp3, "audio/mpeg"),
    (K.AUDIO, "audio/wav", samples.wav, "audio/wav"),
    (K.AUDIO, "audio/x-wav", samples.wav, "audio/wav"),
    (K.AUDIO, "audio/x-wave", samples.wav, "audio/wav"),
    (K.AUDIO, "audio/amr", samples.amr, "audio/amr"),
    (K.VIDEO, "video/mp4", samples.mp4, "video/mp4"),
    (K.VIDEO, "video/3gpp", samples.three_gp, "video/3gpp"),
    (K.VIDEO, "video/mpeg", samples.mpeg, "video/mpeg"),
    (K.VIDEO, "video/x-msvideo", samples.avi, "video/x-msvideo"),
    (K.VIDEO, "video/x-ms-wmv", samples.wmv, "video/x-ms-wmv"),
    (K.VIDEO, "video/quicktime", samples.quicktime, "video/quicktime"),
    (K.CONTACT, "text/vcard", samples.vcard, "text/vcard"),
    (K.CONTACT, "text/v-card", samples.vcard, "text/vcard"),
    (K.CONTACT, "text/x-vcard", samples.vcard, "text/vcard"),
    (K.CALENDAR, "text/calendar", samples.icalendar_bytes, "text/calendar"),
    (K.PDF, "application/pdf", samples.pdf, "application/pdf"),
    (K.PDF, "application/x-pdf", samples.pdf, "application/pdf"),
]


@pytest.mark.parametrize(
    ("kind", "declared", "make", "expected"), ACCEPTED, ids=[f"{k.value}-{d}" for k, d, _, _ in ACCEPTED]
)
async def test_every_accepted_type_is_fetched_and_proven(
    origin: Origin, fetcher: Fetcher, kind: MediaKind, declared: str, make: Callable[[], bytes], expected: str
) -> None:
    body = make()
    url = origin.route("/media", file_reply(body, declared))
    got = await obtain(fetcher, url, kind)
    assert got.fetched.body == body
    assert got.fetched.content_type == declared
    assert not got.fetched.from_cache
    assert got.content_type == expected
    assert origin.count("/media") == 1
    assert origin.requests[0].headers["host"] == f"127.0.0.1:{origin.port}"
    if kind is K.IMAGE:
        assert got.info.width > 0 and got.info.height > 0
    if kind in (K.AUDIO, K.VIDEO):
        assert got.info.duration > 0


async def test_content_type_parameters_and_case_are_ignored(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/cal", file_reply(samples.icalendar_bytes(), "Text/Calendar; charset=UTF-8"))
    got = await obtain(fetcher, url, K.CALENDAR)
    assert got.fetched.content_type == "text/calendar"
    assert got.content_type == "text/calendar"


@pytest.mark.parametrize(
    ("kind", "declared"),
    [
        (K.IMAGE, "audio/mpeg"),
        (K.IMAGE, "image/webp"),
        (K.AUDIO, "video/mp4"),
        (K.CONTACT, "text/plain"),
        (K.CALENDAR, "text/plain"),
        (K.PDF, "application/msword"),
        (K.VIDEO, "image/gif"),
    ],
)
async def test_a_type_not_accepted_for_the_kind_is_e629(
    origin: Origin, fetcher: Fetcher, kind: MediaKind, declared: str
) -> None:
    url = origin.route("/x", file_reply(A_SAMPLE[kind](), declared))
    error = await refusal(fetcher, url, kind)
    assert error.code == "E629"
    assert not error.retryable


async def test_a_declared_type_is_corrected_by_the_bytes_within_the_kind(origin: Origin, fetcher: Fetcher) -> None:
    jpeg_as_png = origin.route("/photo.png", file_reply(samples.jpeg(320, 240), "image/png"))
    mp3_as_wav = origin.route("/song.wav", file_reply(samples.mp3(), "audio/wav"))
    assert (await obtain(fetcher, jpeg_as_png, K.IMAGE)).content_type == "image/jpeg"
    assert (await obtain(fetcher, mp3_as_wav, K.AUDIO)).content_type == "audio/mpeg"


# octet-stream and missing types ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(K))
@pytest.mark.parametrize("declared", ["application/octet-stream", None])
async def test_generic_type_with_provable_bytes_is_accepted_and_corrected(
    origin: Origin, fetcher: Fetcher, kind: MediaKind, declared: str | None
) -> None:
    url = origin.route("/file", file_reply(A_SAMPLE[kind](), declared))
    got = await obtain(fetcher, url, kind)
    assert got.fetched.content_type == declared
    assert got.content_type == A_TYPE[kind]


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        (K.IMAGE, samples.noise),
        (K.IMAGE, samples.html),
        (K.AUDIO, samples.noise),
        (K.AUDIO, lambda: samples.jpeg(64, 48)),  # provable, but an image is no audio
        (K.PDF, samples.letter),
        (K.CONTACT, samples.icalendar_bytes),
    ],
    ids=["image-noise", "image-html", "audio-noise", "audio-jpeg", "pdf-text", "contact-calendar"],
)
async def test_generic_type_with_unprovable_or_wrong_bytes_is_e629(
    origin: Origin, fetcher: Fetcher, kind: MediaKind, make: Callable[[], bytes]
) -> None:
    url = origin.route("/file", file_reply(make(), "application/octet-stream"))
    error = await refusal(fetcher, url, kind)
    assert error.code == "E629"
    assert "octet-stream" in error.detail


# content that is not what it claims -----------------------------------------------------------------
async def test_html_served_as_png_is_e629(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/logo.png", file_reply(samples.html(), "image/png"))
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E629"
    assert "text/html" in error.detail


async def test_decompression_bomb_png_is_e341_without_decoding_it(origin: Origin, fetcher: Fetcher) -> None:
    bomb = samples.bomb_png()
    assert len(bomb) < 256 * 1024
    assert MAX_PIXELS < 30_000 * 30_000
    url = origin.route("/bomb.png", file_reply(bomb, "image/png"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E341"
    assert time.monotonic() - started < 5.0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50, f"checking the bomb grew the process by {grown_mb:.0f} MB"


async def test_pdf_bomb_is_e629_without_inflating_it(origin: Origin, fetcher: Fetcher) -> None:
    """A 300 KB PDF whose one content stream inflates to 300 MB opens with pypdf and has a page; the
    bounded count of its streams refuses it, having inflated no more than the limit, and holding none of it."""
    bomb = samples.pdf_bomb(300 * 1024 * 1024)
    assert len(bomb) < 400 * 1024
    url = origin.route("/bomb.pdf", file_reply(bomb, "application/pdf"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    error = await refusal(fetcher, url, K.PDF)
    assert error.code == "E629"
    assert "decompression bomb" in error.detail
    assert time.monotonic() - started < 5.0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50, f"checking the bomb grew the process by {grown_mb:.0f} MB"


async def test_a_pdf_with_compressed_content_under_the_limit_is_accepted(origin: Origin, fetcher: Fetcher) -> None:
    text = b"BT /F1 12 Tf 72 712 Td (Your invoice) Tj ET\n" * 2000
    document = samples.pdf_with_streams(
        (zlib.compress(text, 9), ("/FlateDecode",)),
        (b"0 0 m 100 100 l S", ()),
        (samples.deflated_zeros(4 << 20), ("/Fl",)),
    )
    got = await obtain(fetcher, origin.route("/invoice.pdf", file_reply(document, "application/pdf")), K.PDF)
    assert got.fetched.body == document
    assert got.info.frames == 1


async def test_image_over_the_pixel_limit_but_under_pillows_is_e341(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/wide.png", file_reply(samples.bomb_png(8000, 6000), "image/png"))
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E341"
    assert "pixel limit" in error.detail


async def test_truncated_jpeg_is_e341(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/cut.jpg", file_reply(samples.truncated_jpeg(), "image/jpeg"))
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E341"


@pytest.mark.parametrize("kind", list(K))
async def test_empty_file_is_bad_content(origin: Origin, fetcher: Fetcher, kind: MediaKind) -> None:
    url = origin.route("/empty", file_reply(b"", A_TYPE[kind]))
    error = await refusal(fetcher, url, kind)
    assert error.code == BAD_CONTENT[kind]
    assert "empty" in error.detail


@pytest.mark.parametrize(
    ("kind", "declared", "make"),
    [
        (K.CONTACT, "text/vcard", samples.malformed_vcard),
        (K.CALENDAR, "text/calendar", samples.malformed_icalendar),
        (K.CALENDAR, "text/calendar", samples.icalendar_bad_date),
        (K.PDF, "application/pdf", samples.fake_pdf),
        (K.PDF, "application/pdf", samples.letter),
        (K.AUDIO, "audio/mpeg", samples.broken_mp3),
        (K.VIDEO, "video/mp4", lambda: samples.mp4()[:600]),
    ],
    ids=["vcard", "icalendar-unclosed", "icalendar-bad-date", "pdf-fake", "pdf-letter", "mp3-broken", "mp4-cut"],
)
async def test_malformed_documents_and_media_are_e629(
    origin: Origin, fetcher: Fetcher, kind: MediaKind, declared: str, make: Callable[[], bytes]
) -> None:
    url = origin.route("/doc", file_reply(make(), declared))
    error = await refusal(fetcher, url, kind)
    assert error.code == "E629"
    assert not error.retryable


async def test_audio_longer_than_ten_minutes_is_too_big(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/long.wav", file_reply(samples.wav(601.0), "audio/wav"))
    error = await refusal(fetcher, url, K.AUDIO)
    assert error.code == "E332"
    assert "601 s" in error.detail


# transfer rules -----------------------------------------------------------------------------------
async def test_chunked_response_is_refused(origin: Origin, fetcher: Fetcher) -> None:
    body = samples.jpeg(320, 240)
    url = origin.route("/chunked.jpg", Reply(200, [("Content-Type", "image/jpeg")], body, chunked=True, chunk=1000))
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E351"
    assert "chunked" in error.detail
    assert not error.retryable


async def test_response_without_content_length_is_refused(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/nolength.pdf", Reply(200, [("Content-Type", "application/pdf")], samples.pdf()))
    error = await refusal(fetcher, url, K.PDF)
    assert error.code == "E357"
    assert "Content-Length" in error.detail


@pytest.mark.parametrize("kind", ["image", "contact"])
async def test_body_longer_than_content_length_is_refused(origin: Origin, fetcher: Fetcher, kind: str) -> None:
    """Bytes past Content-Length fail the fetch, whether or not the declared bytes alone are a valid file."""
    if kind == "image":
        body, media_kind, ctype, code = samples.jpeg(640, 480), K.IMAGE, "image/jpeg", "E351"
        declared = len(body) // 2
    else:
        body, media_kind, ctype, code = samples.vcard(), K.CONTACT, "text/vcard", "E355"
        declared = len(body)
        body += b"JUNK" * 1000
    url = origin.route(f"/long.{kind}", Reply(200, [("Content-Type", ctype), ("Content-Length", str(declared))], body))
    error = await refusal(fetcher, url, media_kind)
    assert error.code == code
    assert "longer than its Content-Length" in error.detail


async def test_body_shorter_than_content_length_is_a_retryable_fetch_failure(origin: Origin, fetcher: Fetcher) -> None:
    body = samples.mp3()
    url = origin.route("/short.mp3", Reply(200, [("Content-Type", "audio/mpeg"), ("Content-Length", "99999")], body))
    error = await refusal(fetcher, url, K.AUDIO)
    assert error.code == "E352"
    assert error.retryable


async def test_slow_drip_hits_the_total_timeout(origin: Origin) -> None:
    body = samples.jpeg(64, 48)
    url = origin.route(
        "/drip.jpg",
        Reply(200, [("Content-Type", "image/jpeg"), ("Content-Length", str(len(body)))], body, drip=0.3),
    )
    slow = Fetcher(LOOPBACK, FetchLimits(connect_timeout=2.0, read_timeout=5.0, total_timeout=1.0))
    try:
        started = time.monotonic()
        error = await refusal(slow, url, K.IMAGE)
        elapsed = time.monotonic() - started
    finally:
        await slow.aclose()
    assert error.code == "E351"
    assert error.retryable
    assert "1 s" in error.detail
    assert 0.9 <= elapsed < 3.0
    assert origin.sent[0].body_bytes < 10


async def test_stalled_body_hits_the_read_timeout(origin: Origin) -> None:
    url = origin.route(
        "/stall.jpg", Reply(200, [("Content-Type", "image/jpeg"), ("Content-Length", "5000")], b"", hold=True)
    )
    stalled = Fetcher(LOOPBACK, FetchLimits(connect_timeout=2.0, read_timeout=0.3, total_timeout=10.0))
    try:
        started = time.monotonic()
        error = await refusal(stalled, url, K.IMAGE)
        elapsed = time.monotonic() - started
    finally:
        await stalled.aclose()
    assert error.code == "E351"
    assert error.retryable
    assert "timed out" in error.detail
    assert elapsed < 3.0


async def deadline_refusal(url: str, deadline: float) -> tuple[MediaError, float]:
    """Fetch ``url`` with a total deadline far shorter than the read timeout; the refusal and its time."""
    limited = Fetcher(LOOPBACK, FetchLimits(connect_timeout=2.0, read_timeout=10.0, total_timeout=deadline))
    try:
        started = time.monotonic()
        error = await asyncio.wait_for(refusal(limited, url, K.IMAGE), deadline + 5)  # no deadline: fails, not hangs
        return error, time.monotonic() - started
    finally:
        await limited.aclose()


async def test_an_origin_sending_one_byte_a_second_hits_the_deadline_per_url(origin: Origin) -> None:
    """Each byte comes well within the read timeout; the deadline for the whole answer still ends it."""
    body = samples.jpeg(64, 48)
    url = origin.route(
        "/trickle.jpg",
        Reply(200, [("Content-Type", "image/jpeg"), ("Content-Length", str(len(body)))], body, drip=1.0),
    )
    error, elapsed = await deadline_refusal(url, 2.5)
    assert error.code == "E351"
    assert error.retryable
    assert "no complete answer within 2.5 s (the deadline for a URL's headers and body together; " in error.detail
    assert re.search(rf"[1-3] of {len(body)} bytes of {re.escape(url)} had arrived", error.detail), error.detail
    assert 2.4 <= elapsed < 4.0
    assert origin.sent[0].body_bytes <= 4


async def test_a_body_shorter_than_its_length_held_open_hits_the_deadline(origin: Origin) -> None:
    """The origin lies: it declares 5000 bytes, sends 100 and keeps the connection open."""
    url = origin.route(
        "/short.jpg",
        Reply(200, [("Content-Type", "image/jpeg"), ("Content-Length", "5000")], b"\xff" * 5000, send=100, hold=True),
    )
    error, elapsed = await deadline_refusal(url, 1.5)
    assert error.code == "E351"
    assert error.retryable
    assert "within 1.5 s" in error.detail and "100 of 5000 bytes" in error.detail
    assert 1.4 <= elapsed < 3.0
    await wait_for(lambda: origin.sent[0].client_closed, what="the gateway to close the connection")


async def test_headers_that_never_come_hit_the_deadline(origin: Origin) -> None:
    never = asyncio.Event()

    async def silent(_: object) -> Reply:
        await never.wait()  # the origin takes the request and never answers
        return Reply()

    url = origin.route("/silent.jpg", silent)
    error, elapsed = await deadline_refusal(url, 1.0)
    assert error.retryable
    assert "within 1 s" in error.detail and f"no response headers from {url}" in error.detail
    assert 0.9 <= elapsed < 2.5


async def test_connection_refused_is_a_retryable_fetch_failure(fetcher: Fetcher) -> None:
    closed = await Origin().start()
    url = closed.url("/gone.jpg")
    await closed.close()
    error = await refusal(fetcher, url, K.VIDEO)
    assert error.code == "E353"
    assert error.retryable


@pytest.mark.parametrize("kind", list(K))
async def test_http_404_is_the_kinds_fetch_failure(origin: Origin, fetcher: Fetcher, kind: MediaKind) -> None:
    url = origin.url("/missing")
    error = await refusal(fetcher, url, kind)
    assert error.code == FETCH_FAILED[kind]
    assert "404" in error.detail
    assert not error.retryable


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True), (403, False), (410, False)])
async def test_http_errors_say_whether_they_are_retryable(
    origin: Origin, fetcher: Fetcher, status: int, retryable: bool
) -> None:
    url = origin.route("/flaky", status_reply(status, b"try later"))
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E351"
    assert error.retryable is retryable


# size caps ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(K))
async def test_declared_length_over_the_kinds_cap_is_its_too_big_code(origin: Origin, kind: MediaKind) -> None:
    body = A_SAMPLE[kind]()
    caps = dict.fromkeys(K, len(body) - 1)
    url = origin.route("/big", file_reply(body, A_TYPE[kind]))
    capped = Fetcher(LOOPBACK, FetchLimits(caps=caps))
    exact = Fetcher(LOOPBACK, FetchLimits(caps={**caps, kind: len(body)}))
    try:
        error = await refusal(capped, url, kind)
        at_the_cap = await exact.fetch(url, kind)
    finally:
        await capped.aclose()
        await exact.aclose()
    assert at_the_cap.body == body
    assert error.code == TOO_BIG[kind]
    assert not error.retryable


async def test_a_200_mb_file_fails_fast_without_being_downloaded(origin: Origin, fetcher: Fetcher) -> None:
    declared = 200 * 1024 * 1024
    assert declared > DEFAULT_CAPS[K.IMAGE]
    head = samples.jpeg(640, 480)
    url = origin.route(
        "/huge.jpg",
        Reply(200, [("Content-Type", "image/jpeg"), ("Content-Length", str(declared))], head, hold=True),
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    error = await refusal(fetcher, url, K.IMAGE)
    elapsed = time.monotonic() - started
    assert error.code == "E331"
    assert str(declared) in error.detail
    assert elapsed < 2.0
    await wait_for(lambda: origin.sent[0].client_closed, 5.0, "the gateway to hang up")
    assert origin.sent[0].body_bytes <= len(head) < 1024 * 1024
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50, f"the fetch grew the process by {grown_mb:.0f} MB"


# redirects ----------------------------------------------------------------------------------------
async def test_redirects_up_to_the_limit_are_followed(origin: Origin, fetcher: Fetcher) -> None:
    for hop in range(MAX_REDIRECTS):
        origin.route(f"/hop{hop}", redirect(f"/hop{hop + 1}", status=(301, 302, 303, 307, 308)[hop % 5]))
    body = samples.png(64, 48)
    origin.route(f"/hop{MAX_REDIRECTS}", file_reply(body, "image/png"))
    got = await obtain(fetcher, origin.url("/hop0"), K.IMAGE)
    assert got.fetched.body == body
    assert len(origin.requests) == MAX_REDIRECTS + 1


async def test_redirect_loop_fails_after_five_redirects(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/loop", redirect("/loop"))
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E351"
    assert "more than 5 redirects" in error.detail
    assert origin.count("/loop") == MAX_REDIRECTS + 1


async def test_redirect_without_location_fails(origin: Origin, fetcher: Fetcher) -> None:
    url = origin.route("/nowhere", Reply(302, [("Content-Length", "0")]))
    error = await refusal(fetcher, url, K.PDF)
    assert error.code == "E357"
    assert "Location" in error.detail


@pytest.mark.parametrize(
    "target",
    ["http://10.0.0.1/a.jpg", "http://192.168.1.1/a.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"],
)
async def test_redirect_to_a_private_address_is_refused(origin: Origin, fetcher: Fetcher, target: str) -> None:
    url = origin.route("/bounce", redirect(target))
    started = time.monotonic()
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E351"
    assert "non-public" in error.detail
    assert not error.retryable
    assert time.monotonic() - started < 2.0  # refused before any connection attempt, not timed out


async def test_a_redirect_to_an_octal_loopback_fails_at_once_like_the_same_url_given_directly() -> None:
    """``0177.0.0.1`` is 127.0.0.1 to resolvers that read octal; the gateway takes it for no address, and
    refuses it for good whether a redirect names it or the slide does."""
    allowed = await Origin("127.0.0.2").start()
    fetcher = Fetcher(AddressGuard(parse_networks("127.0.0.2/32")))
    target = "http://0177.0.0.1/secret.jpg"
    try:
        url = allowed.route("/a", redirect(target))
        started = time.monotonic()
        by_redirect = await refusal(fetcher, url, K.IMAGE)
        assert time.monotonic() - started < 2.0
        direct = await refusal(fetcher, target, K.IMAGE)
    finally:
        await fetcher.aclose()
        await allowed.close()
    for error in (by_redirect, direct):
        assert error.code == "E351"
        assert not error.retryable
        assert "not a usable URL" in error.detail
    assert by_redirect.detail.startswith(f"{url}: redirects to {target!r}")
    assert allowed.count("/a") == 1


async def test_redirect_to_loopback_is_refused_when_loopback_is_not_allowed() -> None:
    """The first hop is on an allowed address (127.0.0.2 only); it redirects to 127.0.0.1 and to localhost,
    which are not allowed: the gateway refuses without sending them a request."""
    allowed = await Origin("127.0.0.2").start()
    forbidden = await Origin("127.0.0.1").start()
    fetcher = Fetcher(AddressGuard(parse_networks("127.0.0.2/32")))
    try:
        forbidden.route("/secret.jpg", file_reply(samples.jpeg(64, 48), "image/jpeg"))
        by_address = allowed.route("/a", redirect(forbidden.url("/secret.jpg")))
        by_name = allowed.route("/b", redirect(f"http://localhost:{forbidden.port}/secret.jpg"))
        for url in (by_address, by_name):
            error = await refusal(fetcher, url, K.IMAGE)
            assert error.code == "E351"
            assert "non-public" in error.detail
            assert not error.retryable
        assert allowed.count("/a") == 1 and allowed.count("/b") == 1
        assert forbidden.requests == []
    finally:
        await fetcher.aclose()
        await allowed.close()
        await forbidden.close()


async def test_loopback_is_refused_by_default(origin: Origin) -> None:
    url = origin.route("/a.jpg", file_reply(samples.jpeg(64, 48), "image/jpeg"))
    default = Fetcher(AddressGuard())
    try:
        error = await refusal(default, url, K.IMAGE)
    finally:
        await default.aclose()
    assert error.code == "E351"
    assert "non-public" in error.detail
    assert origin.requests == []


async def test_a_host_name_is_resolved_checked_and_kept_in_the_host_header(origin: Origin, fetcher: Fetcher) -> None:
    body = samples.jpeg(64, 48)
    origin.route("/named.jpg", file_reply(body, "image/jpeg"))
    got = await obtain(fetcher, f"http://localhost:{origin.port}/named.jpg", K.IMAGE)
    assert got.fetched.body == body
    assert origin.requests[0].headers["host"] == f"localhost:{origin.port}"


async def test_an_allowed_ipv6_origin_is_fetched() -> None:
    v6 = await Origin("::1").start()
    fetcher = Fetcher(AddressGuard(parse_networks("::1/128")))
    try:
        body = samples.pdf()
        got = await obtain(fetcher, v6.route("/v6.pdf", file_reply(body, "application/pdf")), K.PDF)
        assert got.fetched.body == body
        assert v6.requests[0].headers["host"] == f"[::1]:{v6.port}"
        error = await refusal(fetcher, f"http://127.0.0.1:{v6.port}/v6.pdf", K.PDF)
        assert error.code == "E357"
    finally:
        await fetcher.aclose()
        await v6.close()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.jpg", "file:///etc/passwd", "http:///nohost", "not a url"])
async def test_only_http_urls_are_fetched(fetcher: Fetcher, url: str) -> None:
    error = await refusal(fetcher, url, K.IMAGE)
    assert error.code == "E351"
    assert not error.retryable


# the address guard on its own ---------------------------------------------------------------------
REFUSED_BY_DEFAULT = [
    "127.0.0.1",
    "127.5.6.7",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "febf::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",
    "2002:a00:1::1",
    "2002:c0a8:101::1",
    "2002:a9fe:a9fe::1",
    "::ffff:192.168.1.1",
    "::ffff:0.0.0.0",
    # the deprecated site-local range, which the standard library calls global
    "fec0::1",
    "fec0:1:2:3::4",
    "feff:ffff::1",
    # NAT64 (well-known and local-use prefixes) wrapping a non-public IPv4 address
    "64:ff9b::10.0.0.1",
    "64:ff9b::127.0.0.1",
    "64:ff9b::169.254.169.254",
    "64:ff9b::192.168.0.1",
    "64:ff9b:1::10.0.0.1",
    "64:ff9b:1::127.0.0.1",
    "64:ff9b:1::169.254.169.254",
    # local-use NAT64 outside its /96 form: where the IPv4 address sits depends on the local translator
    "64:ff9b:1:a00:1::",
    "64:ff9b:1:ffff::8.8.8.8",
]
PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "::ffff:93.184.216.34",
    "2002:808:808::1",
    "2002:5db8:d822:1::2",
    # NAT64 wrapping a public IPv4 address: an IPv6-only gateway reaches IPv4 origins this way
    "64:ff9b::8.8.8.8",
    "64:ff9b::93.184.216.34",
    "64:ff9b:1::8.8.8.8",
    "64:ff9b:1::93.184.216.34",
]


@pytest.mark.parametrize("address", REFUSED_BY_DEFAULT)
def test_guard_refuses_non_public_addresses_by_default(address: str) -> None:
    assert not AddressGuard().permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_guard_permits_public_addresses(address: str) -> None:
    assert AddressGuard().permits(ipaddress.ip_address(address))


def test_guard_honours_allowed_networks() -> None:
    guard = AddressGuard(parse_networks("127.0.0.0/8, 10.1.0.0/16,fd00::/8"))
    assert guard.permits(ipaddress.ip_address("127.0.0.1"))
    assert guard.permits(ipaddress.ip_address("10.1.2.3"))
    assert guard.permits(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert guard.permits(ipaddress.ip_address("fd12::1"))
    assert not guard.permits(ipaddress.ip_address("10.2.0.1"))
    assert not guard.permits(ipaddress.ip_address("192.168.0.1"))
    assert not guard.permits(ipaddress.ip_address("::1"))
    assert not guard.permits(ipaddress.ip_address("fe80::1"))
    assert guard.permits(ipaddress.ip_address("8.8.8.8"))


def test_guard_allows_a_listed_nat64_or_site_local_network() -> None:
    guard = AddressGuard(parse_networks("64:ff9b:1::/48,fec0::/10"))
    assert guard.permits(ipaddress.ip_address("64:ff9b:1:a00:1::"))
    assert guard.permits(ipaddress.ip_address("fec0::1"))
    assert not guard.permits(ipaddress.ip_address("64:ff9b::10.0.0.1"))


@pytest.mark.parametrize(
    "target", ["http://[fec0::1]/a.jpg", "http://[64:ff9b::a00:1]/a.jpg", "http://[64:ff9b:1::a9fe:a9fe]/a.jpg"]
)
async def test_fetches_to_site_local_and_nat64_wrapped_private_addresses_are_refused(
    fetcher: Fetcher, target: str
) -> None:
    started = time.monotonic()
    error = await refusal(fetcher, target, K.IMAGE)
    assert error.code == "E351"
    assert "non-public" in error.detail
    assert not error.retryable
    assert time.monotonic() - started < 2.0  # refused before any connection attempt, not timed out


def test_parse_networks_accepts_strings_and_iterables() -> None:
    assert parse_networks("") == ()
    assert parse_networks(" 127.0.0.1/8 , ::1 ") == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_networks(["10.0.0.0/8"]) == (ipaddress.ip_network("10.0.0.0/8"),)


async def test_guard_resolves_names_and_checks_every_address() -> None:
    nat64_private = ipaddress.ip_address("64:ff9b::a00:1")  # wraps 10.0.0.1
    assert not AddressGuard().permits(nat64_private)
    with pytest.raises(BlockedAddress, match="non-public"):
        await AddressGuard().resolve("localhost", 80)
    with pytest.raises(BlockedAddress, match="non-public"):
        await AddressGuard().resolve("[::1]", 80)
    with pytest.raises(UnresolvedHost, match="cannot resolve"):
        await AddressGuard().resolve("no-such-host.invalid", 80)
    assert await LOOPBACK.resolve("localhost", 80) == ipaddress.ip_address("127.0.0.1")
    assert await AddressGuard().resolve("93.184.216.34", 80) == ipaddress.ip_address("93.184.216.34")
    wrapped = ipaddress.ip_address("64:ff9b:1::93.184.216.34")
    assert await AddressGuard().resolve("[64:ff9b:1::5db8:d822]", 80) == wrapped
    with pytest.raises(BlockedAddress, match="non-public"):
        await AddressGuard().resolve("[fec0::1]", 80)


# messages that need one URL at once ----------------------------------------------------------------
async def test_concurrent_fetches_of_one_url_share_one_request(origin: Origin, fetcher: Fetcher) -> None:
    """A campaign's messages start together and all name one picture: the origin is asked once."""
    body = samples.jpeg(320, 240)
    release = asyncio.Event()

    async def slow(_request: object) -> Reply:
        await release.wait()
        return file_reply(body, "image/jpeg")

    url = origin.route("/campaign.jpg", slow)
    fetches = [asyncio.create_task(fetcher.fetch(url, K.IMAGE)) for _ in range(12)]
    await wait_for(lambda: origin.count("/campaign.jpg") >= 1, what="the first request")
    release.set()
    results = await asyncio.gather(*fetches)
    assert {r.body for r in results} == {body}
    assert origin.count("/campaign.jpg") == 1
    assert fetcher.requests == 1
    # once answered, the next message asks again (no cache here): sharing is only among those waiting
    await fetcher.fetch(url, K.IMAGE)
    assert origin.count("/campaign.jpg") == 2


async def test_a_shared_fetch_survives_its_first_callers_cancellation_and_shares_failures(
    origin: Origin, fetcher: Fetcher
) -> None:
    release = asyncio.Event()

    async def slow(_request: object) -> Reply:
        await release.wait()
        return status_reply(503)

    url = origin.route("/busy.jpg", slow)
    first = asyncio.create_task(fetcher.fetch(url, K.IMAGE))
    await wait_for(lambda: origin.count("/busy.jpg") == 1, what="the first request")
    second = asyncio.create_task(fetcher.fetch(url, K.IMAGE))
    await asyncio.sleep(0)  # one turn of the loop: the second caller starts and joins the request under way
    first.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(MediaError) as failed:
        await second
    assert failed.value.code == FETCH_FAILED[K.IMAGE] and failed.value.retryable
    assert origin.count("/busy.jpg") == 1
