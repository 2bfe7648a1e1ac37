"""Builds the background machinery from settings: the media stage and the job worker."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

from mmsgate.config import Settings
from mmsgate.core.codes import JobKind
from mmsgate.core.model import MediaKind
from mmsgate.errors import ConfigError
from mmsgate.jobs.pipeline import MessageMedia, TemplateMedia
from mmsgate.jobs.worker import Worker
from mmsgate.media.adapt import CarrierProfile
from mmsgate.media.blobs import BlobStore
from mmsgate.media.cache import MediaCache
from mmsgate.media.fetch import Fetcher, FetchLimits
from mmsgate.media.guard import AddressGuard, parse_networks
from mmsgate.media.stage import MediaStage
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
    return ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=200)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, store: Store) -> AsyncIterator[Worker]:
    """A worker with the media stage, running until the context ends (then stopped gracefully)."""
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
    )
    stage = MediaStage(
        fetcher,
        media_pool(settings),
        BlobStore(settings.data_dir / "blobs"),
        carrier_profile(settings),
        settings.data_dir / "spool",
        pool_factory=lambda: media_pool(settings),
    )
    worker = Worker(
        store,
        {JobKind.DELIVER: MessageMedia(store, stage), JobKind.PREPARE_TEMPLATE: TemplateMedia(store, stage)},
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.job_lease_seconds,
    )
    task = asyncio.create_task(worker.run(), name="worker")
    try:
        yield worker
    finally:
        await worker.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await fetcher.aclose()
        stage.pool.shutdown(wait=True, cancel_futures=True)
