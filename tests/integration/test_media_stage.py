"""The media stage end to end: adaptation to the carrier profile, the media cache, and the worker wiring.

Media comes from a real HTTP origin on a loopback port. The stage tests run :class:`MediaStage` with a
thread pool; the wiring tests run the real worker built by :func:`mmsgate.runtime.running_worker` from
settings (a process pool, the store of each backend) and watch messages and templates reach their end
state through the store.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import av
import httpx
import pytest
from PIL import Image, ImageSequence

from mmsgate.carriers.base import Carrier
from mmsgate.carriers.routing import Router
from mmsgate.carriers.sandbox.carrier import SandboxCarrier
from mmsgate.common.cache import AccountSettings
from mmsgate.common.guard import AddressGuard, parse_networks
from mmsgate.config import Settings, load_settings
from mmsgate.core import lifecycle
from mmsgate.core.codes import EventCode, JobKind, MessageState, TemplateState
from mmsgate.core.model import Event, Job, Media, MediaKind, Message, Part, Settled, Slide, Template
from mmsgate.core.retry import RetryPolicy
from mmsgate.delivery.engine import Delivery
from mmsgate.errors import MediaError
from mmsgate.jobs.worker import Worker
from mmsgate.media.adapt import CarrierProfile, encoded_size
from mmsgate.media.cache import MediaCache
from mmsgate.media.fetch import Fetcher, FetchLimits
from mmsgate.media.stage import SMIL_ALLOWANCE, MediaStage, Prepared
from mmsgate.postbacks.events import PostbackBuilder
from mmsgate.runtime import media_pool, running_worker
from mmsgate.store import Store
from mmsgate.store.blobs import BlobStore
from tests import media_samples as samples
from tests.conftest import Caller
from tests.integration.media_origin import Origin, Reply, Request, file_reply, status_reply
from tests.waiting import eventually

T = TypeVar("T")
LOOPBACK = AddressGuard(parse_networks("127.0.0.0/8"))
PROFILE = CarrierProfile()
API = "/ep/v2/"


# plumbing -----------------------------------------------------------------------------------------
@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = await Origin().start()
    yield server
    await server.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2, thread_name_prefix="media") as executor:
        yield executor


@dataclass
class Bench:
    """A media stage over a thread pool, its blob store and (optionally) a cache."""

    tmp: Path
    pool: ThreadPoolExecutor
    fetchers: list[Fetcher] = field(default_factory=list)

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.tmp / "blobs")

    def stage(
        self, *, cache: MediaCache | None = None, fresh_seconds: float = 300.0, profile: CarrierProfile = PROFILE
    ) -> MediaStage:
        fetcher = Fetcher(LOOPBACK, FetchLimits(total_timeout=10.0), cache, fresh_seconds=fresh_seconds)
        self.fetchers.append(fetcher)
        return MediaStage(fetcher, self.pool, self.blobs, profile, self.tmp / "spool")

    def cache(self) -> MediaCache:
        return MediaCache(self.tmp / "cache", max_bytes=64 * 1024 * 1024, max_age=3600.0)


@pytest.fixture
async def bench(tmp_path: Path, pool: ThreadPoolExecutor) -> AsyncIterator[Bench]:
    the_bench = Bench(tmp_path, pool)
    yield the_bench
    for fetcher in the_bench.fetchers:
        await fetcher.aclose()


def image_slide(url: str, text: str | None = None) -> Slide:
    return Slide(text=text, media=(Media(MediaKind.IMAGE, url),))


def message_size(slides: Sequence[Slide], parts: Sequence[Part]) -> int:
    """The message as sent: every part and text base64-encoded with its headers, plus the SMIL."""
    texts = sum(encoded_size(len(s.text.encode())) for s in slides if s.text)
    smil = encoded_size(SMIL_ALLOWANCE + 160 * len(slides))
    return texts + smil + sum(encoded_size(p.size) for p in parts)


def decoded_image(data: bytes) -> Image.Image:
    """The image fully decoded (every frame), or an exception."""
    img = Image.open(io.BytesIO(data))
    for frame in ImageSequence.Iterator(img):
        frame.load()
    img.seek(0)
    return img


# adaptation ---------------------------------------------------------------------------------------
async def test_large_photo_is_fitted_to_the_profile_and_still_decodes(bench: Bench, origin: Origin) -> None:
    source = samples.jpeg(4000, 3000, quality=92)
    slides = [image_slide(origin.route("/big.jpg", file_reply(source, "image/jpeg")), "A big photo")]
    prepared = await bench.stage().prepare("m-1", slides, adapt_images=True, transcode_av=False)
    assert prepared.adapted
    (part,) = prepared.parts
    assert part.adapted
    assert part.content_type == "image/jpeg"
    assert (part.width, part.height) == (640, 480)
    data = bench.blobs.get(part.sha256)
    assert len(data) == part.size < len(source)
    img = decoded_image(data)
    assert img.format == "JPEG"
    assert img.size == (640, 480)
    assert message_size(slides, prepared.parts) <= PROFILE.max_message_bytes


async def test_five_megabyte_animated_gif_is_fitted_to_the_profile(bench: Bench, origin: Origin) -> None:
    source = samples.gif(18, 800, 600)
    assert 4_000_000 < len(source) < 7_000_000
    slides = [image_slide(origin.route("/anim.gif", file_reply(source, "image/gif")))]
    prepared = await bench.stage().prepare("m-2", slides, adapt_images=True, transcode_av=False)
    (part,) = prepared.parts
    assert part.adapted
    assert part.width <= PROFILE.max_image_width and part.height <= PROFILE.max_image_height
    assert message_size(slides, prepared.parts) <= PROFILE.max_message_bytes
    img = decoded_image(bench.blobs.get(part.sha256))
    assert img.size == (part.width, part.height)
    if part.content_type == "image/gif":  # the animation kept, smaller
        assert getattr(img, "n_frames", 1) == 18
    else:  # or its first frame as a still
        assert part.content_type == "image/jpeg"


async def test_several_images_share_the_message_budget(bench: Bench, origin: Origin) -> None:
    slides = [
        image_slide(origin.route(f"/p{i}.png", file_reply(samples.png(1600, 1200, name), "image/png")), f"slide {i}")
        for i, name in enumerate(samples.PHOTO_NAMES)
    ]
    prepared = await bench.stage().prepare("m-3", slides, adapt_images=True, transcode_av=False)
    assert len(prepared.parts) == 4
    assert [p.slide for p in prepared.parts] == [1, 2, 3, 4]
    assert message_size(slides, prepared.parts) <= PROFILE.max_message_bytes
    for part in prepared.parts:
        decoded_image(bench.blobs.get(part.sha256))


async def test_small_image_passes_unchanged(bench: Bench, origin: Origin) -> None:
    source = samples.jpeg(320, 240)
    slides = [image_slide(origin.route("/small.jpg", file_reply(source, "image/jpg")))]
    for adapt in (True, False):
        prepared = await bench.stage().prepare(f"m-small-{adapt}", slides, adapt_images=adapt, transcode_av=False)
        assert not prepared.adapted
        (part,) = prepared.parts
        assert bench.blobs.get(part.sha256) == source
        assert part.content_type == "image/jpeg"
        assert (part.width, part.height) == (320, 240)


async def test_oversized_image_with_transcoding_off_is_e331(bench: Bench, origin: Origin) -> None:
    slides = [
        Slide(text="first"),
        image_slide(origin.route("/big.jpg", file_reply(samples.jpeg(4000, 3000), "image/jpeg"))),
    ]
    with pytest.raises(MediaError) as caught:
        await bench.stage().prepare("m-4", slides, adapt_images=False, transcode_av=False)
    assert caught.value.code == "E331"
    assert caught.value.kind == "image"
    assert caught.value.detail.startswith("slide 2 image:")
    assert not caught.value.retryable


async def test_audio_and_video_are_transcoded_when_asked(bench: Bench, origin: Origin) -> None:
    slides = [
        Slide(media=(Media(MediaKind.AUDIO, origin.route("/a.wav", file_reply(samples.wav(2.0), "audio/x-wav"))),)),
        Slide(media=(Media(MediaKind.VIDEO, origin.route("/v.avi", file_reply(samples.avi(), "video/x-msvideo"))),)),
        Slide(media=(Media(MediaKind.CONTACT, origin.route("/c.vcf", file_reply(samples.vcard(), "text/x-vcard"))),)),
    ]
    prepared = await bench.stage().prepare("t-1", slides, adapt_images=True, transcode_av=True)
    audio, video, contact = prepared.parts
    assert audio.content_type == "audio/amr" and audio.adapted
    assert video.content_type == "video/3gpp" and video.adapted
    assert contact.content_type == "text/vcard" and not contact.adapted
    with av.open(io.BytesIO(bench.blobs.get(audio.sha256)), mode="r") as container:
        assert container.streams.audio[0].codec_context.name == "amrnb"
        assert sum(1 for _ in container.decode(audio=0)) > 0
    with av.open(io.BytesIO(bench.blobs.get(video.sha256)), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 10
    assert message_size(slides, prepared.parts) <= PROFILE.max_message_bytes

    untouched = await bench.stage().prepare("m-5", slides, adapt_images=True, transcode_av=False)
    assert [p.content_type for p in untouched.parts] == ["audio/wav", "video/x-msvideo", "text/vcard"]
    assert not untouched.adapted


async def test_audio_too_big_for_the_message_is_e332_unless_transcoded(bench: Bench, origin: Origin) -> None:
    """sendmms does not transcode audio: 40 s of WAV (640 KB) cannot fit the 600 KB profile. savemms
    transcodes it to AMR, which fits."""
    source = samples.wav(40.0)
    assert encoded_size(len(source)) > PROFILE.max_message_bytes
    slides = [
        Slide(text="listen", media=(Media(MediaKind.AUDIO, origin.route("/l.wav", file_reply(source, "audio/wav"))),))
    ]
    with pytest.raises(MediaError) as caught:
        await bench.stage().prepare("m-audio", slides, adapt_images=True, transcode_av=False)
    assert (caught.value.code, caught.value.kind) == ("E332", "audio")
    assert str(PROFILE.max_message_bytes) in caught.value.detail

    prepared = await bench.stage().prepare("t-audio", slides, adapt_images=True, transcode_av=True)
    (part,) = prepared.parts
    assert part.content_type == "audio/amr"
    assert message_size(slides, prepared.parts) <= PROFILE.max_message_bytes
    with av.open(io.BytesIO(bench.blobs.get(part.sha256)), mode="r") as container:
        seconds = sum(frame.samples for frame in container.decode(audio=0)) / 8000
    assert abs(seconds - 40.0) < 0.1


# cache --------------------------------------------------------------------------------------------
async def test_cached_media_is_not_fetched_again(bench: Bench, origin: Origin) -> None:
    slides = [image_slide(origin.route("/cached.jpg", file_reply(samples.jpeg(320, 240), "image/jpeg")))]
    stage = bench.stage(cache=bench.cache())
    first = await stage.prepare("m-a", slides, adapt_images=True, transcode_av=False, use_cache=True)
    second = await stage.prepare("m-b", slides, adapt_images=True, transcode_av=False, use_cache=True)
    assert origin.count("/cached.jpg") == 1
    assert [p.sha256 for p in second.parts] == [p.sha256 for p in first.parts]
    assert second.parts[0].owner_id == "m-b"

    third = await stage.prepare("m-c", slides, adapt_images=True, transcode_av=False, use_cache=False)
    assert origin.count("/cached.jpg") == 2
    assert [p.sha256 for p in third.parts] == [p.sha256 for p in first.parts]


async def test_stale_cache_entry_is_revalidated_and_reused_on_304(bench: Bench, origin: Origin) -> None:
    body = samples.jpeg(320, 240)
    etag = '"photo-v1"'
    modified = "Wed, 01 Jul 2026 12:00:00 GMT"

    async def conditional(request: Request) -> Reply:
        if request.headers.get("if-none-match") == etag:
            return Reply(304, [("ETag", etag)])
        return file_reply(body, "image/jpeg", ETag=etag, Last_Modified=modified)

    slides = [image_slide(origin.route("/photo.jpg", conditional))]
    stage = bench.stage(cache=bench.cache(), fresh_seconds=0.0)
    first = await stage.prepare("m-a", slides, adapt_images=True, transcode_av=False)
    second = await stage.prepare("m-b", slides, adapt_images=True, transcode_av=False)
    asked = origin.requests_to("/photo.jpg")
    assert len(asked) == 2
    assert "if-none-match" not in asked[0].headers
    assert asked[1].headers["if-none-match"] == etag
    assert asked[1].headers["if-modified-since"] == modified
    assert [s.body_bytes for s in origin.sent] == [len(body), 0]
    assert [p.sha256 for p in second.parts] == [p.sha256 for p in first.parts]

    fetched = await stage.fetcher.fetch(slides[0].media[0].url, MediaKind.IMAGE)
    assert fetched.from_cache
    assert fetched.body == body
    assert fetched.content_type == "image/jpeg"


async def test_changed_origin_content_replaces_the_stale_cache_entry(bench: Bench, origin: Origin) -> None:
    versions = [samples.jpeg(320, 240, source="coffee.png"), samples.jpeg(320, 240, source="chelsea.png")]

    async def changing(request: Request) -> Reply:
        current = len(origin.requests_to("/photo.jpg")) - 1
        etag = f'"v{min(current, 1)}"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, [("ETag", etag)])
        return file_reply(versions[min(current, 1)], "image/jpeg", ETag=etag)

    slides = [image_slide(origin.route("/photo.jpg", changing))]
    stage = bench.stage(cache=bench.cache(), fresh_seconds=0.0)
    first = await stage.prepare("m-a", slides, adapt_images=True, transcode_av=False)
    second = await stage.prepare("m-b", slides, adapt_images=True, transcode_av=False)
    third = await stage.prepare("m-c", slides, adapt_images=True, transcode_av=False)
    assert bench.blobs.get(first.parts[0].sha256) == versions[0]
    assert bench.blobs.get(second.parts[0].sha256) == versions[1]
    assert third.parts[0].sha256 == second.parts[0].sha256
    assert origin.requests_to("/photo.jpg")[2].headers["if-none-match"] == '"v1"'


# wiring: the real worker over each store ----------------------------------------------------------
def worker_settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    database = str(request.getfixturevalue("pg_url")) if backend == "postgresql" else None
    return load_settings(
        data_dir=tmp_path / "worker",
        database=database,
        media_allow_networks="127.0.0.0/8",
        media_processes=1,
        media_total_timeout=5,
    )


async def settled_message(
    store: Store, account_id: str, tracking_id: str, within: float = 30.0, *, final: bool = True
) -> Message:
    """The message once in a final state (or, with ``final=False``, once past the media stage)."""
    past_media = (MessageState.ACCEPTED, MessageState.MEDIA_READY, MessageState.SUBMITTING)

    async def probe() -> Message | None:
        message = await store.messages.get_message(account_id, tracking_id)
        done = lifecycle.is_final(message.state) if final else message.state not in past_media
        return message if done else None

    return await eventually(probe, within, f"message {tracking_id} to settle")


async def media_event(store: Store, tracking_id: str) -> Event:
    """The event that ended the message's media stage (ready, adapted, or failed)."""
    events = await store.messages.list_events(tracking_id)
    assert events
    return events[0]


async def settled_template(store: Store, account_id: str, mms_id: str, within: float = 30.0) -> Template:
    async def probe() -> Template | None:
        template = await store.messages.get_template(account_id, mms_id)
        return None if template.state is TemplateState.PROCESSING else template

    return await eventually(probe, within, f"template {mms_id} to leave processing")


async def last_event(store: Store, subject_id: str) -> Event:
    events = await store.messages.list_events(subject_id)
    assert events
    return events[-1]


async def api(client: httpx.AsyncClient, caller: Caller, body: dict[str, object]) -> dict[str, object]:
    response = await client.post(API, json=body, headers={"x-api-key": caller.api_key})
    assert response.status_code == 200
    answer = response.json()
    assert isinstance(answer, dict)
    assert answer["status"] == "success", answer
    return answer


async def send(client: httpx.AsyncClient, caller: Caller, slide: dict[str, object]) -> str:
    answer = await api(client, caller, caller.body(slide=[slide]))
    return str(answer["tracking-id"])


async def save(client: httpx.AsyncClient, caller: Caller, *slides: dict[str, object]) -> str:
    answer = await api(
        client,
        caller,
        {"action": "savemms", "name": "promo", "fallback-sms-text": "see the sale", "slide": list(slides)},
    )
    return str(answer["mms-id"])


async def test_worker_prepares_messages_and_reports_failures(
    store: Store,
    caller: Caller,
    client: httpx.AsyncClient,
    origin: Origin,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    settings = worker_settings(tmp_path, backend, request)
    small = samples.jpeg(320, 240)
    good = origin.route("/good.jpg", file_reply(small, "image/jpeg"))
    big = origin.route("/big.png", file_reply(samples.png(1600, 1200), "image/png"))
    html = origin.route("/fake.png", file_reply(samples.html(), "image/png"))
    pdf = origin.route("/doc.pdf", file_reply(samples.pdf(), "application/pdf"))
    bomb = origin.route("/bomb.pdf", file_reply(samples.pdf_bomb(), "application/pdf"))
    ids = {
        "good": await send(client, caller, {"message-text": "hi", "image": {"url": good}}),
        "big": await send(client, caller, {"image": {"url": big}}),
        "missing": await send(client, caller, {"image": {"url": origin.url("/missing.jpg")}}),
        "html": await send(client, caller, {"image": {"url": html}}),
        "pdf": await send(client, caller, {"message-text": "your invoice", "pdf": {"url": pdf}}),
        "bomb": await send(client, caller, {"pdf": {"url": bomb}}),
    }
    async with running_worker(settings, store):
        done = {name: await settled_message(store, caller.account_id, tid) for name, tid in ids.items()}
    blobs = BlobStore(settings.data_dir / "blobs")

    assert done["good"].state is MessageState.DELIVERED, await store.messages.list_events(ids["good"])
    (part,) = await store.messages.list_parts(ids["good"])
    assert (part.kind, part.content_type, part.size, part.source_url) == (
        MediaKind.IMAGE,
        "image/jpeg",
        len(small),
        good,
    )
    assert blobs.get(part.sha256) == small
    assert decoded_image(blobs.get(part.sha256)).size == (320, 240)
    assert (await media_event(store, ids["good"])).code is None

    assert done["big"].state is MessageState.DELIVERED, await store.messages.list_events(ids["big"])
    (adapted,) = await store.messages.list_parts(ids["big"])
    assert adapted.adapted and (adapted.width, adapted.height) == (640, 480)
    assert decoded_image(blobs.get(adapted.sha256)).size == (640, 480)
    assert (await media_event(store, ids["big"])).code == EventCode.TRANSCODED_SENT.value

    assert done["pdf"].state is MessageState.DELIVERED, await store.messages.list_events(ids["pdf"])
    (document,) = await store.messages.list_parts(ids["pdf"])
    assert blobs.get(document.sha256) == samples.pdf()

    assert done["missing"].state is MessageState.FAILED, await store.messages.list_events(ids["missing"])
    failed = await last_event(store, ids["missing"])
    assert failed.code == EventCode.FAILED.value == "E101"
    assert failed.status == "Failed"
    assert failed.details.startswith("E351")
    assert await store.messages.list_parts(ids["missing"]) == []

    assert done["html"].state is MessageState.FAILED, await store.messages.list_events(ids["html"])
    invalid = await last_event(store, ids["html"])
    assert invalid.code == EventCode.CONTENT_INVALID.value == "E011"
    assert invalid.status == "Content validation failed"
    assert invalid.details.startswith("E629")

    assert done["bomb"].state is MessageState.FAILED, await store.messages.list_events(ids["bomb"])
    refused = await last_event(store, ids["bomb"])
    assert refused.code == EventCode.CONTENT_INVALID.value == "E011"
    assert refused.details.startswith("E629: slide 1 pdf:")
    assert "decompression bomb" in refused.details
    assert await store.messages.list_parts(ids["bomb"]) == []


async def test_worker_prepares_templates_and_sends_saved_messages_from_them(
    store: Store,
    caller: Caller,
    client: httpx.AsyncClient,
    origin: Origin,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    settings = worker_settings(tmp_path, backend, request)
    image = origin.route("/t.jpg", file_reply(samples.jpeg(4000, 3000), "image/jpeg"))
    audio = origin.route("/t.wav", file_reply(samples.wav(), "audio/wav"))
    broken_audio = origin.route("/broken.mp3", file_reply(samples.broken_mp3(), "audio/mpeg"))
    broken_image = origin.route("/broken.jpg", file_reply(samples.truncated_jpeg(), "image/jpeg"))
    broken_video = origin.route("/broken.mp4", file_reply(samples.html(), "video/mp4"))
    good = await save(client, caller, {"message-text": "Sale!", "image": {"url": image}, "audio": {"url": audio}})
    bad_audio = await save(client, caller, {"audio": {"url": broken_audio}})
    bad_image = await save(client, caller, {"message-text": "x", "image": {"url": broken_image}})
    bad_video = await save(client, caller, {"video": {"url": broken_video}})
    saved_send: dict[str, object] = {
        "action": "sendsavedmms",
        "mms-id": good,
        "service-id": caller.service_id,
        "to": caller.to,
        "from": caller.sender,
        "fallback-sms-text": "see the sale",
    }
    early = await client.post(API, json=saved_send, headers={"x-api-key": caller.api_key})
    assert (early.json()["status"], early.json()["error-code"]) == ("failure", "E626")  # still processing

    async with running_worker(settings, store):
        ready = await settled_template(store, caller.account_id, good)
        assert ready.state is TemplateState.READY, await store.messages.list_events(good)
        assert (await last_event(store, good)).code == EventCode.TEMPLATE_READY.value == "N003"
        template_parts = await store.messages.list_parts(good)
        assert [(p.kind, p.content_type) for p in template_parts] == [
            (MediaKind.IMAGE, "image/jpeg"),
            (MediaKind.AUDIO, "audio/amr"),  # transcoded on savemms
        ]

        answer = await api(client, caller, saved_send)
        tracking_id = str(answer["tracking-id"])
        sent = await settled_message(store, caller.account_id, tracking_id)

        failures = {
            name: await settled_template(store, caller.account_id, mms_id)
            for name, mms_id in {"audio": bad_audio, "image": bad_image, "video": bad_video}.items()
        }

    assert sent.state is MessageState.DELIVERED, await store.messages.list_events(tracking_id)
    assert sent.mms_id == good
    message_parts = await store.messages.list_parts(tracking_id)
    assert [(p.sha256, p.content_type, p.size) for p in message_parts] == [
        (p.sha256, p.content_type, p.size) for p in template_parts
    ]
    assert {p.owner_id for p in message_parts} == {tracking_id}
    # the template's prepared parts are reused (preparing the message afresh would not have transcoded the
    # audio to AMR), and nothing is fetched again
    assert (origin.count("/t.jpg"), origin.count("/t.wav")) == (1, 1)
    blobs = BlobStore(settings.data_dir / "blobs")
    assert decoded_image(blobs.get(message_parts[0].sha256)).size == (640, 480)

    expected = {"audio": ("E002", "E629"), "image": ("E004", "E341"), "video": ("E003", "E629")}
    for name, template in failures.items():
        assert template.state is TemplateState.FAILED, name
        event = await last_event(store, template.mms_id)
        code, cause = expected[name]
        assert event.code == code, (name, event)
        assert event.status == "Transcoding failed"
        assert event.details.startswith(cause), (name, event)
        assert await store.messages.list_parts(template.mms_id) == []


@dataclass
class Recording:
    """A job handler that records the attempt number of every run of the handler it wraps."""

    inner: Delivery
    attempts: list[int] = field(default_factory=list)

    async def run(self, job: Job) -> datetime | Settled | None:
        self.attempts.append(job.attempts)
        return await self.inner.run(job)

    async def attempt_failed(
        self, job: Job, error: Exception, attempt: int, max_attempts: int, next_run: datetime
    ) -> None:
        await self.inner.attempt_failed(job, error, attempt, max_attempts, next_run)

    async def give_up(self, job: Job, error: Exception) -> None:
        await self.inner.give_up(job, error)


async def test_retryable_fetch_failures_are_retried_then_given_up(
    store: Store, caller: Caller, client: httpx.AsyncClient, origin: Origin, bench: Bench
) -> None:
    body = samples.jpeg(320, 240)

    async def recovering(_: Request) -> Reply:
        if origin.count("/recovering.jpg") <= 2:
            return status_reply(503, b"busy")
        return file_reply(body, "image/jpeg")

    recovers = await send(client, caller, {"image": {"url": origin.route("/recovering.jpg", recovering)}})
    never = await send(client, caller, {"image": {"url": origin.route("/down.jpg", status_reply(503))}})
    carriers: Router[Carrier] = Router(store.connections, {}, default=SandboxCarrier(store.sandbox))
    accounts = AccountSettings(store.accounts)
    handler = Recording(
        Delivery(
            store.messages,
            store.lifecycle,
            bench.stage(),
            carriers,
            PostbackBuilder(accounts),
            accounts,
            kept=store.reports,
        )
    )
    worker = Worker(
        store.jobs,
        {JobKind.DELIVER: handler},
        idle_wait=0.05,
        policy=RetryPolicy(base=0.05, factor=1.0, max_attempts=4),
    )
    task = asyncio.create_task(worker.run())
    try:
        recovered = await settled_message(store, caller.account_id, recovers, final=False)
        gave_up = await settled_message(store, caller.account_id, never)
    finally:
        await worker.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert recovered.state is MessageState.SUBMITTED  # this worker runs no sandbox reports
    assert origin.count("/recovering.jpg") == 3
    assert len(await store.messages.list_parts(recovers)) == 1
    assert gave_up.state is MessageState.FAILED
    assert origin.count("/down.jpg") == 4
    event = await last_event(store, never)
    assert event.code == "E101"
    assert event.details.startswith("E351")
    assert "503" in event.details
    assert sorted(handler.attempts) == [1, 1, 2, 2, 3, 3, 4]


async def test_prepare_is_a_prepared_result(bench: Bench, origin: Origin) -> None:
    """The stage answers with a Prepared whose parts number the media in slide order."""
    slides = [
        Slide(
            text="one",
            media=(
                Media(
                    MediaKind.CALENDAR, origin.route("/e.ics", file_reply(samples.icalendar_bytes(), "text/calendar"))
                ),
            ),
        ),
        image_slide(origin.route("/i.gif", file_reply(samples.gif(3, 120, 90), "image/gif"))),
    ]
    prepared = await bench.stage().prepare("m-order", slides, adapt_images=True, transcode_av=False)
    assert isinstance(prepared, Prepared)
    assert [(p.position, p.slide, p.kind) for p in prepared.parts] == [
        (1, 1, MediaKind.CALENDAR),
        (2, 2, MediaKind.IMAGE),
    ]
    assert prepared.parts[1].content_type == "image/gif"
    assert getattr(decoded_image(bench.blobs.get(prepared.parts[1].sha256)), "n_frames", 1) == 3


async def test_refused_content_does_not_break_the_process_pool(tmp_path: Path, origin: Origin) -> None:
    """Checks run in worker processes; a refusal travels back as a MediaError with its code and kind, and
    the pool keeps serving the next message."""
    settings = load_settings(data_dir=tmp_path / "data", media_processes=1)
    pool = media_pool(settings)
    fetcher = Fetcher(LOOPBACK)
    stage = MediaStage(fetcher, pool, BlobStore(tmp_path / "blobs"), PROFILE, tmp_path / "spool")
    try:
        fake = [image_slide(origin.route("/fake.png", file_reply(samples.html(), "image/png")))]
        big = [image_slide(origin.route("/big.jpg", file_reply(samples.jpeg(4000, 3000), "image/jpeg")))]
        good = [image_slide(origin.route("/good.png", file_reply(samples.png(320, 240), "image/png")))]
        with pytest.raises(MediaError) as refused:
            await stage.prepare("m-1", fake, adapt_images=True, transcode_av=False)
        assert (refused.value.code, refused.value.kind) == ("E629", "image")
        assert refused.value.detail.startswith("slide 1 image:")
        with pytest.raises(MediaError) as too_big:
            await stage.prepare("m-2", big, adapt_images=False, transcode_av=False)
        assert (too_big.value.code, too_big.value.kind) == ("E331", "image")
        prepared = await stage.prepare("m-3", good, adapt_images=True, transcode_av=False)
        assert [p.content_type for p in prepared.parts] == ["image/png"]
    finally:
        await fetcher.aclose()
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("cached", [True, False], ids=["cache", "no-cache"])
async def test_concurrent_messages_with_the_same_media_all_succeed(bench: Bench, origin: Origin, cached: bool) -> None:
    """The same URL needed (and cached) and stored as the same blob by several messages at once. (How
    many requests reach the origin depends on how their fetches overlap: those under way together share
    one, as test_media_fetch shows.)"""
    source = samples.jpeg(320, 240)
    slides = [image_slide(origin.route("/same.jpg", file_reply(source, "image/jpeg")))]
    stage = bench.stage(cache=bench.cache() if cached else None, fresh_seconds=0.0)
    results = await asyncio.gather(
        *(stage.prepare(f"m-{i}", slides, adapt_images=True, transcode_av=False) for i in range(12))
    )
    assert 1 <= origin.count("/same.jpg") < 12
    assert {r.parts[0].sha256 for r in results} == {results[0].parts[0].sha256}
    assert bench.blobs.get(results[0].parts[0].sha256) == source
    leftovers = [p.name for p in (bench.tmp / "blobs").rglob("*.tmp")] + [
        p.name for p in (bench.tmp / "cache").rglob("*.tmp")
    ]
    assert leftovers == []


async def test_content_met_before_skips_the_worker_processes(bench: Bench, origin: Origin) -> None:
    big = samples.jpeg(1600, 1200)
    body = {"bytes": big}

    async def current(_: Request) -> Reply:
        return file_reply(body["bytes"], "image/jpeg")

    slides = [image_slide(origin.route("/same.jpg", current), "hi")]
    stage = bench.stage()
    first = await stage.prepare("m1", slides, adapt_images=True, transcode_av=False, use_cache=False)
    tasks = stage._tasks
    assert tasks == 2  # checked, then fitted
    again = await stage.prepare("m2", slides, adapt_images=True, transcode_av=False, use_cache=False)
    assert stage._tasks == tasks  # the same bytes: neither checked nor fitted again
    assert [(p.sha256, p.size, p.width, p.adapted) for p in again.parts] == [
        (p.sha256, p.size, p.width, p.adapted) for p in first.parts
    ]
    assert again.adapted and again.parts[0].owner_id == "m2"

    body["bytes"] = samples.jpeg(1200, 900)  # other bytes at the same URL are proven and fitted afresh
    changed = await stage.prepare("m3", slides, adapt_images=True, transcode_av=False, use_cache=False)
    assert stage._tasks == tasks + 2
    assert changed.parts[0].sha256 != first.parts[0].sha256
    assert decoded_image(bench.blobs.get(changed.parts[0].sha256)).size == (640, 480)
