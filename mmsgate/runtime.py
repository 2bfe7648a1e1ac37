"""Builds a worker's machinery from settings: the media stage, the carrier plug-ins' connectors, the
delivery engine and its sink, the job worker, the postback sender, the pruner and the sweep of kept reports,
and runs them until the context ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from mmsgate.carriers import PLUGINS, plugin
from mmsgate.carriers.base import Carrier, SmsConnector
from mmsgate.carriers.plugin import Plugin, Ports
from mmsgate.carriers.routing import Connect, Router
from mmsgate.carriers.throttle import SendLimiter
from mmsgate.common.guard import AddressGuard, parse_networks
from mmsgate.config import Settings
from mmsgate.core.codes import JobKind
from mmsgate.core.model import JobHandler, MediaKind, utcnow
from mmsgate.core.records import Connection
from mmsgate.core.retry import RetryPolicy
from mmsgate.delivery.engine import Delivery
from mmsgate.delivery.fallback import SmsFallback
from mmsgate.delivery.sink import EngineSink
from mmsgate.delivery.templates import TemplateMedia
from mmsgate.errors import ConfigError, StoreError
from mmsgate.jobs.worker import Worker, worker_name
from mmsgate.media.adapt import CarrierProfile
from mmsgate.media.cache import MediaCache
from mmsgate.media.fetch import Fetcher, FetchLimits
from mmsgate.media.stage import MediaStage
from mmsgate.media.uploads import GatewayUploads
from mmsgate.postbacks.events import PostbackBuilder
from mmsgate.postbacks.outbox import PostbackSender
from mmsgate.store import Store
from mmsgate.wiring import account_settings, blob_store, database_named, inbound_receiver, public_url_resolver

log = logging.getLogger("mmsgate.runtime")


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


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(base=settings.job_retry_base, cap=settings.job_retry_cap, max_attempts=settings.job_max_attempts)


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


@dataclass
class Running:
    """The background machinery of one process."""

    worker: Worker
    postbacks: PostbackSender
    sink: EngineSink

    def wake(self) -> None:
        self.worker.wake()


async def prune_once(store: Store, settings: Settings) -> dict[str, int]:
    """Delete what the retention settings say is over (see :meth:`mmsgate.core.roles.Retention.prune`)."""
    now = utcnow()
    return await store.retention.prune(now - timedelta(days=settings.retention_days), now)


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


KEPT_REPORTS_INTERVAL = 5.0
"""Seconds between two sweeps of reports kept before their submit's record (see
:meth:`~mmsgate.delivery.engine.Delivery.apply_kept_reports`): the longest a report waits after a crash
between that record and its check."""


async def applying_kept_reports(delivery: Delivery) -> None:
    """Every ``KEPT_REPORTS_INTERVAL`` seconds, apply the kept reports whose submit is recorded by now;
    several workers doing it at once is harmless (each step is a compare-and-set)."""
    while True:
        await asyncio.sleep(KEPT_REPORTS_INTERVAL)
        try:
            await delivery.apply_kept_reports()
        except StoreError as exc:
            log.warning("applying kept reports failed (%s); it is tried again in %.0f s", exc, KEPT_REPORTS_INTERVAL)
        except Exception:  # the sweep must outlive any one failure: said, and tried again
            log.exception("applying kept reports failed; it is tried again in %.0f s", KEPT_REPORTS_INTERVAL)


C = TypeVar("C", Carrier, SmsConnector)


def _connect(found: Plugin, side: Callable[[str, Any, Ports], C], ports: Ports) -> Connect[C]:
    """How a stored connection of ``found``'s kind becomes its connector (``side``: its ``mms`` or ``sms``)."""

    def connect(connection: Connection) -> tuple[C, tuple[str, ...]]:
        settings = found.load(connection.config)
        return side(connection.name, settings, ports), settings.route_prefixes

    return connect


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, store: Store) -> AsyncIterator[Running]:
    """Workers with the media stage, the carriers and the postback sender, running until the context
    ends (then stopped gracefully)."""
    cache = None
    if settings.media_cache_bytes > 0:
        cache = MediaCache(
            settings.data_dir / "cache", max_bytes=settings.media_cache_bytes, max_age=settings.media_cache_max_age
        )
    blobs = blob_store(settings)
    public_url = public_url_resolver(settings, store.values)
    fetcher = Fetcher(
        AddressGuard(parse_networks(settings.media_allow_networks)),
        fetch_limits(settings),
        cache,
        fresh_seconds=settings.media_cache_fresh_seconds,
        local=GatewayUploads(store.console, blobs, public_url).read,
    )
    stage = MediaStage(
        fetcher,
        media_pool(settings),
        blobs,
        carrier_profile(settings),
        settings.data_dir / "spool",
        pool_factory=lambda: media_pool(settings),
        recycle_after=200 * (settings.media_processes or os.cpu_count() or 2),
    )
    accounts = account_settings(settings, store)
    builder = PostbackBuilder(accounts)
    ports = Ports(windows=store.windows, blobs=blobs, sandbox=store.sandbox)
    default = plugin(settings.carrier)
    if default.default is None:
        raise ConfigError(f"{settings.carrier} cannot be the default carrier: its connections are configured")
    carrier, companion = default.default(ports)
    limiter = None
    if settings.carrier_max_per_second > 0:
        limiter = SendLimiter(store.windows, carrier.name, settings.carrier_max_per_second)
    carriers: Router[Carrier] = Router(
        store.connections,
        {p.kind: _connect(p, p.mms, ports) for p in PLUGINS.values() if p.mms is not None},
        default=carrier,
        refresh_seconds=settings.connection_refresh_seconds,
        label="MMS",
    )
    sms: Router[SmsConnector] = Router(
        store.connections,
        {p.kind: _connect(p, p.sms, ports) for p in PLUGINS.values() if p.sms is not None},
        default=None,
        refresh_seconds=settings.connection_refresh_seconds,
        label="SMS",
    )
    companions: Mapping[str, SmsConnector] = {carrier.name: companion} if companion is not None else {}
    policy = retry_policy(settings)
    fallback = SmsFallback(
        store.messages,
        store.lifecycle,
        sms,
        builder,
        public_url,
        companion=lambda name: companions.get(name or carrier.name),
        policy=policy,
    )
    fallback_codes = frozenset(code.strip() for code in settings.sms_fallback_codes.split(",") if code.strip())
    delivery = Delivery(
        store.messages,
        store.lifecycle,
        stage,
        carriers,
        builder,
        accounts,
        limiter,
        fallback=fallback,
        fallback_codes=fallback_codes,
        kept=store.reports,
        policy=policy,
    )
    inbound = inbound_receiver(settings, store, accounts, blobs)
    sink = EngineSink(delivery, fallback, inbound, store.messages, store.lifecycle)
    await carriers.start(sink)
    await sms.start(sink)
    if companion is not None:
        await companion.start(sink)
    owner = worker_name()
    handlers: dict[JobKind, JobHandler] = {
        JobKind.DELIVER: delivery,
        JobKind.PREPARE_TEMPLATE: TemplateMedia(store.messages, store.lifecycle, stage, builder, accounts),
    }
    for each in PLUGINS.values():
        if each.handlers is not None:
            handlers.update(each.handlers(ports, sink))
    worker = Worker(
        store.jobs,
        handlers,
        owner=owner,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
        renew_seconds=settings.lease_renew_seconds,
        database=database_named(settings),
        policy=policy,
    )
    sender = PostbackSender(
        store.outbox,
        owner,
        guard=AddressGuard(parse_networks(settings.postback_allow_networks)),
        timeout=settings.postback_timeout,
        retries=settings.postback_retries,
        retry_interval=settings.postback_retry_interval,
        concurrency=settings.postback_concurrency,
        per_account=settings.postback_per_account,
        lease_seconds=settings.job_lease_seconds,
        renew_seconds=settings.lease_renew_seconds,
        database=database_named(settings),
    )
    store.outbox.on_outbox(sender.wake)
    await store.jobs.watch_jobs(worker.wake)
    tasks = [
        asyncio.create_task(worker.run(), name="worker"),
        asyncio.create_task(sender.run(), name="postbacks"),
        asyncio.create_task(pruning(store, settings), name="prune"),
        asyncio.create_task(applying_kept_reports(delivery), name="kept-reports"),
    ]
    try:
        yield Running(worker, sender, sink)
    finally:
        await worker.stop()
        await sender.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sms.aclose()
        if companion is not None:
            await companion.aclose()
        await carriers.aclose()
        await fetcher.aclose()
        stage.pool.shutdown(wait=True, cancel_futures=True)
