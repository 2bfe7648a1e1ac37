"""The hosted page a fallback SMS links to (``GET /m/{code}``) and its files (``GET /m/{code}/{position}``).

Each test records a real message with real media (JPEG, MP4, MP3, vCard, iCalendar, PDF) through the store
(SQLite and PostgreSQL), its parts' bytes in the gateway's blob store, then reads the page over HTTP.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import lxml.html
import pytest

from mmsgate.config import Settings
from mmsgate.core.model import Media, MediaKind, Message, Part, Sending, Slide, utcnow
from mmsgate.store import Store
from mmsgate.store.blobs import BlobStore
from tests import media_samples as samples
from tests.conftest import Caller

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
}
HOSTILE_TEXT = '<script>alert("x")</script> & <b>bold</b>\nsecond line\r\nthird line'


@dataclass(frozen=True)
class MediaFile:
    kind: MediaKind
    content_type: str
    data: bytes
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Hosted:
    """A message recorded with its parts and a hosted page."""

    code: str
    message: Message
    parts: list[Part]
    data: dict[int, bytes]
    """Each part's bytes by position."""
    expires_at: datetime

    @property
    def url(self) -> str:
        return f"/m/{self.code}"

    def part(self, kind: MediaKind) -> Part:
        return next(p for p in self.parts if p.kind is kind)


def image_file() -> MediaFile:
    return MediaFile(MediaKind.IMAGE, "image/jpeg", samples.jpeg(320, 240), 320, 240)


def video_file() -> MediaFile:
    return MediaFile(MediaKind.VIDEO, "video/mp4", samples.mp4(160, 120, frames=20, with_audio=True), 160, 120)


def audio_file() -> MediaFile:
    return MediaFile(MediaKind.AUDIO, "audio/mpeg", samples.mp3(1.5))


def pdf_file() -> MediaFile:
    return MediaFile(MediaKind.PDF, "application/pdf", samples.pdf(2))


def full_slides() -> list[tuple[str | None, list[MediaFile]]]:
    """Every kind of content, one slide each (text and a picture on the first)."""
    return [
        (HOSTILE_TEXT, [image_file()]),
        ("Watch this", [video_file()]),
        (None, [audio_file()]),
        (None, [MediaFile(MediaKind.CONTACT, "text/vcard", samples.vcard())]),
        ("See you there", [MediaFile(MediaKind.CALENDAR, "text/calendar", samples.icalendar_bytes())]),
        ("Your invoice", [pdf_file()]),
    ]


async def host_message(
    store: Store,
    blobs: BlobStore,
    caller: Caller,
    slides: list[tuple[str | None, list[MediaFile]]],
    *,
    subject: str | None = "Your order",
    expires_in: timedelta = timedelta(days=30),
) -> Hosted:
    """Accept a message of ``slides``, record its parts (bytes in ``blobs``) and create its hosted page."""
    tracking_id = f"hosted-{time.monotonic_ns()}-{secrets.token_hex(3)}"
    message = Message(
        tracking_id=tracking_id,
        account_id=caller.account_id,
        service_id=caller.service_id,
        to=caller.to,
        sender=caller.sender,
        from_mask=None,
        expires_at=utcnow() + timedelta(days=3),
        cache_content=True,
        sending=Sending(
            subject=subject,
            fallback_sms_text="You have a picture message",
            disable_fallback_sms=False,
            disable_fallback_sms_link=False,
            fallback_link_expires_at=utcnow() + expires_in,
            client_reference=None,
            slides=tuple(
                Slide(text, tuple(Media(f.kind, f"https://media.example/{n}-{f.kind}") for f in files))
                for n, (text, files) in enumerate(slides, 1)
            ),
        ),
    )
    await store.accepting.accept_message(message)
    parts: list[Part] = []
    data: dict[int, bytes] = {}
    for number, (_, files) in enumerate(slides, 1):
        for f in files:
            position = len(parts) + 1
            digest = await asyncio.to_thread(blobs.put, f.data)
            parts.append(
                Part(
                    owner_id=tracking_id,
                    position=position,
                    slide=number,
                    kind=f.kind,
                    content_type=f.content_type,
                    size=len(f.data),
                    sha256=digest,
                    source_url=f"https://media.example/{number}-{f.kind}",
                    width=f.width,
                    height=f.height,
                )
            )
            data[position] = f.data
    assert await store.lifecycle.media_ready(
        tracking_id, parts, code=None, status="Media ready", details="content checked"
    )
    expires_at = utcnow() + expires_in
    page = await store.lifecycle.create_hosted_page(tracking_id, secrets.token_urlsafe(6), expires_at)
    return Hosted(page.code, message, parts, data, page.expires_at)


def parse(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return lxml.html.fromstring(response.text)


@pytest.fixture
def blobs(settings: Settings) -> BlobStore:
    """The blob store the app serves files from (the inbound receiver's, under the data folder)."""
    return BlobStore(settings.data_dir / "blobs")


@pytest.fixture
async def hosted(store: Store, blobs: BlobStore, caller: Caller) -> Hosted:
    return await host_message(store, blobs, caller, full_slides())


async def test_the_page_shows_every_slide_in_order(client: httpx.AsyncClient, hosted: Hosted) -> None:
    response = await client.get(hosted.url)
    doc = parse(response)
    assert doc.xpath("string(//title)") == "Your order"
    assert doc.xpath("string(//h1)") == "Your order"
    assert doc.xpath("//meta[@name='viewport']/@content") == ["width=device-width, initial-scale=1"]
    assert doc.xpath("//script | //link | //iframe | //object | //embed | //form") == []

    sections = doc.xpath("//section[@class='slide']")
    assert [s.get("aria-label") for s in sections] == [f"Slide {n} of 6" for n in range(1, 7)]
    base = f"http://gateway.test{hosted.url}"

    def link(element: Any, attribute: str) -> str:
        """The path an attribute's URL resolves to from the page (they are relative to it)."""
        value: str | None = element.get(attribute)
        assert value is not None and not value.startswith(("/", "http")), value
        return urljoin(base, value).removeprefix("http://gateway.test")

    image, video, audio, contact, calendar, pdf = hosted.parts
    # 1: the picture, then the text
    [img] = sections[0].xpath(".//img")
    assert link(img, "src") == f"/m/{hosted.code}/{image.position}"
    assert (img.get("width"), img.get("height"), img.get("alt")) == ("320", "240", "Picture")
    assert [child.tag for child in sections[0]] == ["img", "p"]
    assert sections[0].xpath("string(p)") == '<script>alert("x")</script> & <b>bold</b>second linethird line'
    assert len(sections[0].xpath("p/br")) == 2
    # 2: the video (with a save link), then its text
    [vid] = sections[1].xpath(".//video")
    assert link(vid, "src") == f"/m/{hosted.code}/{video.position}"
    assert vid.get("controls") is not None and vid.get("preload") == "metadata"
    assert (vid.get("width"), vid.get("height")) == ("160", "120")
    assert [child.tag for child in sections[1]] == ["video", "a", "p"]
    assert sections[1].xpath("string(p)") == "Watch this"
    # 3: the sound alone
    [aud] = sections[2].xpath(".//audio")
    assert link(aud, "src") == f"/m/{hosted.code}/{audio.position}"
    assert aud.get("controls") is not None
    assert sections[2].xpath(".//p") == []
    # 4-6: downloads with a label and the size, then the text
    for section, part, label, name in [
        (sections[3], contact, "Contact card", "contact.vcf"),
        (sections[4], calendar, "Calendar event", "event.ics"),
        (sections[5], pdf, "PDF document", "document.pdf"),
    ]:
        [a] = section.xpath(".//a[@class='file']")
        assert link(a, "href") == f"/m/{hosted.code}/{part.position}"
        assert a.get("download") is not None
        assert a.xpath("string(.//span[@class='name'])") == label
        meta = a.xpath("string(.//span[@class='meta'])")
        assert name in meta and ("bytes" in meta or "KB" in meta), meta
    assert sections[4].xpath("string(p)") == "See you there"
    assert sections[5].xpath("string(p)") == "Your invoice"
    assert sections[3].xpath(".//p") == []
    # no URL anywhere else on the page
    urls = doc.xpath("//@src | //@href")
    assert sorted({link(e.getparent(), e.attrname) for e in urls}) == sorted(
        f"/m/{hosted.code}/{p.position}" for p in hosted.parts
    )


async def test_slide_text_is_escaped(client: httpx.AsyncClient, hosted: Hosted) -> None:
    body = (await client.get(hosted.url)).text
    assert "<script>" not in body and "<b>bold" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;<br>second line" in body


async def test_a_subject_in_html_is_escaped_and_no_subject_says_picture_message(
    client: httpx.AsyncClient, store: Store, blobs: BlobStore, caller: Caller
) -> None:
    tagged = await host_message(store, blobs, caller, [("hi", [])], subject="</title><h1>x</h1>")
    doc = parse(await client.get(tagged.url))
    assert doc.xpath("string(//title)") == "</title><h1>x</h1>"
    assert len(doc.xpath("//h1")) == 1
    plain = await host_message(store, blobs, caller, [("just text", [])], subject=None)
    doc = parse(await client.get(plain.url))
    assert doc.xpath("string(//title)") == doc.xpath("string(//h1)") == "Picture message"
    assert doc.xpath("string(//section/p)") == "just text"


@pytest.mark.parametrize(
    ("kind", "content_type", "disposition"),
    [
        (MediaKind.IMAGE, "image/jpeg", 'inline; filename="picture.jpg"'),
        (MediaKind.VIDEO, "video/mp4", 'inline; filename="video.mp4"'),
        (MediaKind.AUDIO, "audio/mpeg", 'inline; filename="audio.mp3"'),
        (MediaKind.CONTACT, "text/vcard; charset=utf-8", 'attachment; filename="contact.vcf"'),
        (MediaKind.CALENDAR, "text/calendar; charset=utf-8", 'attachment; filename="event.ics"'),
        (MediaKind.PDF, "application/pdf", 'attachment; filename="document.pdf"'),
    ],
)
async def test_each_file_answers_its_exact_bytes(
    client: httpx.AsyncClient, hosted: Hosted, kind: MediaKind, content_type: str, disposition: str
) -> None:
    part = hosted.part(kind)
    response = await client.get(f"{hosted.url}/{part.position}")
    assert response.status_code == 200
    assert response.content == hosted.data[part.position]
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(part.size)
    assert response.headers["content-disposition"] == disposition
    assert response.headers["accept-ranges"] == "bytes"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "sandbox" in response.headers["content-security-policy"]
    assert_private_cache(response, hosted.expires_at)


async def test_a_range_of_the_video_answers_206(client: httpx.AsyncClient, hosted: Hosted) -> None:
    video = hosted.part(MediaKind.VIDEO)
    whole = hosted.data[video.position]
    response = await client.get(f"{hosted.url}/{video.position}", headers={"Range": "bytes=100-1099"})
    assert response.status_code == 206
    assert response.content == whole[100:1100]
    assert response.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    assert response.headers["content-length"] == "1000"
    assert response.headers["content-type"] == "video/mp4"
    tail = await client.get(f"{hosted.url}/{video.position}", headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == whole[-500:]
    beyond = await client.get(f"{hosted.url}/{video.position}", headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416


def assert_private_cache(response: httpx.Response, expires_at: datetime) -> None:
    directive, _, age = response.headers["cache-control"].partition(", max-age=")
    assert directive == "private"
    left = (expires_at - utcnow()).total_seconds()
    assert left - 60 <= int(age) <= left, (age, left)


async def test_the_page_carries_the_security_headers(client: httpx.AsyncClient, hosted: Hosted) -> None:
    response = await client.get(hosted.url)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert_private_cache(response, hosted.expires_at)
    directives = (d.strip().partition(" ") for d in response.headers["content-security-policy"].split(";"))
    policy = {name: value for name, _, value in directives}
    assert policy["default-src"] == "'none'"
    assert policy["img-src"] == policy["media-src"] == "'self'"
    assert policy["style-src"].startswith("'sha256-")
    assert policy["frame-ancestors"] == "'none'"
    assert "script-src" not in policy  # falls back to default-src 'none'


async def test_after_expiry_the_page_and_its_files_answer_410(
    client: httpx.AsyncClient, store: Store, blobs: BlobStore, caller: Caller
) -> None:
    gone = await host_message(store, blobs, caller, full_slides(), expires_in=timedelta(seconds=-1))
    for path in [gone.url, *(f"{gone.url}/{p.position}" for p in gone.parts), f"{gone.url}/99"]:
        response = await client.get(path)
        assert response.status_code == 410, path
        assert response.text == "This content has expired.\n"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/m/nosuchcode",
        "/m/nosuchcode/1",
        "/m/%00",
        "/m/%00/1",
        "/m/%FF%FE",
        "/m/%E2%9C%93",
        "/m/' OR '1'='1",
        "/m/" + "x" * 5000,
        "/m/" + "x" * 5000 + "/1",
    ],
)
async def test_an_unknown_code_answers_404(client: httpx.AsyncClient, hosted: Hosted, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_an_unknown_position_answers_404(client: httpx.AsyncClient, hosted: Hosted) -> None:
    for position in ["0", "7", "99999999999999999999999"]:
        response = await client.get(f"{hosted.url}/{position}")
        assert response.status_code == 404, position
        assert response.text == "No such content.\n"
    assert (await client.get(f"{hosted.url}/abc")).status_code == 404
    assert (await client.get(f"{hosted.url}/1")).status_code == 200


async def test_a_page_of_another_code_does_not_serve_this_ones_files(
    client: httpx.AsyncClient, store: Store, blobs: BlobStore, caller: Caller, hosted: Hosted
) -> None:
    other = await host_message(store, blobs, caller, [("only text", [])])
    assert (await client.get(f"{other.url}/1")).status_code == 404
    assert (await client.get(f"{hosted.url}/1")).content == hosted.data[1]
