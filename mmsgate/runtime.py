"""Builds the background machinery from settings: the media stage, the carrier, the delivery engine,
the job worker and the postback sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from mmsgate.carriers import create_carrier
from mmsgate.carriers.base import Carrier, DeliveryReport, InboundFile, InboundMms
from mmsgate.carriers.mm7.connection import MM7, create_mm7_carrier
from mmsgate.carriers.mm7.vasp import Mm7Inbound
from mmsgate.carriers.sandbox import SandboxCarrier, SandboxReports
from mmsgate.config import Settings
from mmsgate.core.codes import JobKind
from mmsgate.core.model import MediaKind, utcnow
from mmsgate.delivery.engine import Delivery
from mmsgate.delivery.fallback import SmsFallback
from mmsgate.delivery.inbound import InboundReceiver, InboundRefused
from mmsgate.delivery.throttle import SendLimiter
from mmsgate.errors import ConfigError, StoreError
from mmsgate.jobs.pipeline import TemplateMedia
from mmsgate.jobs.worker import JobHandler, Worker, worker_name
from mmsgate.media.adapt import CarrierProfile
from mmsgate.media.blobs import BlobStore
from mmsgate.media.cache import MediaCache
from mmsgate.media.fetch import Fetcher, FetchLimits
from mmsgate.media.guard import AddressGuard, parse_networks
from mmsgate.media.stage import MediaStage
from mmsgate.media.uploads import GatewayUploads
from mmsgate.postbacks.events import PostbackBuilder
from mmsgate.postbacks.outbox import PostbackSender
from mmsgate.routing import Router
from mmsgate.sms.base import InboundSms, SmsConnector, SmsReceipt
from mmsgate.sms.connections import SMPP, create_connector
from mmsgate.sms.sandbox import SandboxSmsConnector
from mmsgate.store.base import Store


def carrier_profile(settings: Settings) -> CarrierProfile:
    values = settings.carrier_profiles.get(settings.carrier_profile)
    if values is None:
        raise ConfigError(
            f"carrier profile {settings.carrier_profile!r} is not one of {', '.join(settings.carrier_profiles)}"
        )
    try:
        return CarrierProfile(name=settings.carrier_profile, **values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"carrier profile {settings.carrier_profile!r}: {exc}") from exc


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        connect_timeout=settings.media_connect_timeout,
        read_timeout=settings.media_read_timeout,
        total_timeout=settings.media_total_timeout,
        caps={
            MediaKind.IMAGE: settings.media_max_image_bytes,
            MediaKind.AUDIO: settings.media_max_audio_bytes,
            MediaKind.VIDEO: settings.media_max_video_bytes,
            MediaKind.CONTACT: settings.media_max_contact_bytes,
            MediaKind.CALENDAR: settings.media_max_calendar_bytes,
            MediaKind.PDF: settings.media_max_pdf_bytes,
        },
    )


def media_pool(settings: Settings) -> ProcessPoolExecutor:
    """Media work runs in its own processes, never on the event loop that answers the API."""
    size = settings.media_processes or os.cpu_count() or 2
    return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"))


def public_url_resolver(settings: Settings, store: Store) -> Callable[[], Awaitable[str]]:
    """Where content URLs point: the configured public URL, else the one the running gateway announced
    in the store, else the configured host and port."""

    async def resolve() -> str:
        if settings.public_url:
            return settings.public_url
        announced = await store.get_value(PUBLIC_URL)
        return announced or f"http://{settings.host}:{settings.port}"

    return resolve


PUBLIC_URL = "public_url"
log = logging.getLogger("mmsgate.runtime")


@dataclass
class Core:
    """The core as carriers and SMS connectors see it (:class:`CarrierSink`, :class:`SmsSink`), and
    the parts the web layer uses."""

    store: Store
    delivery: Delivery
    inbound: InboundReceiver
    blobs: BlobStore
    fallback: SmsFallback

    async def report(self, report: DeliveryReport) -> bool:
        return await self.delivery.report(report)

    async def receive(self, message: InboundMms) -> str:
        return await self.inbound.receive(message)

    async def sms_receipt(self, receipt: SmsReceipt) -> None:
        await self.fallback.receipt(receipt)

    async def sms_inbound(self, message: InboundSms) -> None:
        """An SMS to one of an account's numbers: an N401 with the text as its one file. An SMS the
        gateway can never take (to no account's number) is logged and acknowledged, not refused: an
        SMSC would only send it again."""
        text = InboundFile("text/plain; charset=utf-8", message.text.encode(), "message.txt")
        try:
            await self.inbound.receive(
                InboundMms(
                    carrier=message.connector,
                    sender=message.sender,
                    recipients=(message.recipient,),
                    subject=None,
                    files=(text,),
                )
            )
        except InboundRefused as exc:
            log.warning("inbound SMS from %s over %s dropped: %s", message.sender, message.connector, exc)


def build_inbound(settings: Settings, store: Store) -> InboundReceiver:
    """What takes inbound MMS; enough for a process without workers (the CLI's sandbox send)."""
    return InboundReceiver(
        store,
        BlobStore(settings.data_dir / "blobs"),
        PostbackBuilder(store),
        public_url_resolver(settings, store),
        retention_seconds=settings.inbound_retention_seconds,
        max_bytes=settings.inbound_max_bytes,
    )


@dataclass
class Running:
    """The background machinery of one process."""

    worker: Worker
    postbacks: PostbackSender
    core: Core

    def wake(self) -> None:
        self.worker.wake()


async def prune_once(store: Store, settings: Settings) -> dict[str, int]:
    """Delete what the retention settings say is over (see ``Store.prune``)."""
    now = utcnow()
    return await store.prune(now - timedelta(days=settings.retention_days), now)


async def pruning(store: Store, settings: Settings) -> None:
    """Every ``prune_interval`` seconds, prune; several workers doing it at once is harmless."""
    while True:
        await asyncio.sleep(settings.prune_interval)
        try:
            counts = await prune_once(store, settings)
        except StoreError as exc:
            log.warning("pruning failed (%s); it is tried again later", exc)
            continue
        if any(counts.values()):
            log.info("pruned %s", ", ".join(f"{n} {what}" for what, n in counts.items() if n))


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, store: Store) -> AsyncIterator[Running]:
    """Workers with the media stage, the carrier and the postback sender, running until the context
    ends (then stopped gracefully)."""
    cache = None
    if settings.media_cache_bytes > 0:
        cache = MediaCache(
            settings.data_dir / "cache", max_bytes=settings.media_cache_bytes, max_age=settings.media_cache_max_age
        )
    fetcher = Fetcher(
        AddressGuard(parse_networks(settings.media_allow_networks)),
        fetch_limits(settings),
        cache,
        fresh_seconds=settings.media_cache_fresh_seconds,
        local=GatewayUploads(store, BlobStore(settings.data_dir / "blobs"), public_url_resolver(settings, store)).read,
    )
    blobs = BlobStore(settings.data_dir / "blobs")
    stage = MediaStage(
        fetcher,
        media_pool(settings),
        blobs,
        carrier_profile(settings),
        settings.data_dir / "spool",
        pool_factory=lambda: media_pool(settings),
        recycle_after=200 * (settings.media_processes or os.cpu_count() or 2),
    )
    carrier = create_carrier(settings, store)
    builder = PostbackBuilder(store)
    limiter = None
    if settings.carrier_max_per_second > 0:
        limiter = SendLimiter(store, carrier.name, settings.carrier_max_per_second)
    sms: Router[SmsConnector] = Router(
        store,
        SMPP,
        lambda connection: create_connector(connection, store),
        default=SandboxSmsConnector(store) if isinstance(carrier, SandboxCarrier) else None,
        refresh_seconds=settings.connection_refresh_seconds,
    )
    fallback = SmsFallback(
        store, sms, builder, public_url_resolver(settings, store), busy_backoff=Delivery.busy_backoff
    )
    fallback_codes = frozenset(code.strip() for code in settings.sms_fallback_codes.split(",") if code.strip())
    carriers: Router[Carrier] = Router(
        store,
        MM7,
        lambda connection: create_mm7_carrier(connection, store, blobs),
        default=carrier,
        refresh_seconds=settings.connection_refresh_seconds,
    )
    delivery = Delivery(store, stage, carriers, builder, limiter, fallback=fallback, fallback_codes=fallback_codes)
    core = Core(store, delivery, build_inbound(settings, store), blobs, fallback)
    await carriers.start(core)
    await sms.start(core)
    owner = worker_name()
    handlers: dict[JobKind, JobHandler] = {
        JobKind.DELIVER: delivery,
        JobKind.PREPARE_TEMPLATE: TemplateMedia(store, stage, builder),
        JobKind.MM7_INBOUND: Mm7Inbound(store, blobs, core),
    }
    if isinstance(carrier, SandboxCarrier):
        handlers[JobKind.SANDBOX_REPORT] = SandboxReports(store, core)
    worker = Worker(
        store,
        handlers,
        owner=owner,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
    )
    sender = PostbackSender(
        store,
        owner,
        guard=AddressGuard(parse_networks(settings.postback_allow_networks)),
        timeout=settings.postback_timeout,
        retries=settings.postback_retries,
        retry_interval=settings.postback_retry_interval,
        concurrency=settings.postback_concurrency,
        per_account=settings.postback_per_account,
    )
    store.on_outbox(sender.wake)
    await store.watch_jobs(worker.wake)
    tasks = [
        asyncio.create_task(worker.run(), name="worker"),
        asyncio.create_task(sender.run(), name="postbacks"),
        asyncio.create_task(pruning(store, settings), name="prune"),
    ]
    try:
        yield Running(worker, sender, core)
    finally:
        await worker.stop()
        await sender.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sms.aclose()
        await carriers.aclose()
        await fetcher.aclose()
        stage.pool.shutdown(wait=True, cancel_futures=True)
