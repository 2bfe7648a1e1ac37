"""The media stage: fetch every slide's media, prove it, fit the whole message to the carrier profile.

Runs after the API has answered, inside a job. Fetching is async on the event loop; checking and
adapting run in a process pool so that they can never starve request handling. Sources are spooled to
temporary files; only prepared parts (at most the profile's size) are held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from mmsgate.core.model import Media, MediaKind, Part, Slide
from mmsgate.core.roles import Blobs
from mmsgate.errors import MediaError, WorkerCrashed
from mmsgate.media.adapt import CarrierProfile, encoded_size
from mmsgate.media.fetch import Fetcher
from mmsgate.media.inspect import MediaInfo
from mmsgate.media.kinds import RULES
from mmsgate.media.work import Checked, adapt_file, check_file

T = TypeVar("T")
SMIL_ALLOWANCE = 600
"""Bytes of the SMIL presentation itself, before its per-slide growth."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """The stage's result: the parts, and whether any content was changed to fit."""

    parts: tuple[Part, ...]
    adapted: bool


@dataclass(slots=True)
class _Source:
    slide: int
    media: Media
    digest: str
    checked: Checked
    path: Path | None = None
    """The spooled file; None while the source is only in ``body`` (a small one whose check was remembered)."""
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class _Made:
    """What fitting one source produced; its bytes are in the blob store."""

    content_type: str
    size: int
    sha256: str
    width: int
    height: int
    changed: bool


K = TypeVar("K")
V = TypeVar("V")


class _Remembered(Generic[K, V]):
    """A small least-recently-used memory: the same bytes always check and fit the same way, so a source
    met before (the same picture in every message of a campaign) skips the worker processes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class _Spool:
    """A temporary folder made on first use (a message whose sources were all met before needs none)."""

    def __init__(self, parent: Path, stack: contextlib.ExitStack) -> None:
        self.parent = parent
        self.stack = stack
        self._dir: Path | None = None
        self._count = 0

    def file(self) -> Path:
        if self._dir is None:
            self._dir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(dir=self.parent, prefix="stage-")))
        self._count += 1
        return self._dir / f"{self._count}.src"


KEEP_IN_MEMORY = 1024 * 1024
"""A source up to this size whose check is remembered stays in memory instead of being spooled."""


@contextlib.contextmanager
def _naming(slide: int, media: Media) -> Iterator[None]:
    """Say which slide and kind a media failure belongs to."""
    try:
        yield
    except MediaError as exc:
        raise MediaError(
            exc.code, f"slide {slide} {media.kind.value}: {exc.detail}", retryable=exc.retryable, kind=media.kind.value
        ) from exc


class MediaStage:
    """Prepares the media of one message or template at a time (many may run concurrently)."""

    def __init__(
        self,
        fetcher: Fetcher,
        pool: Executor,
        blobs: Blobs,
        profile: CarrierProfile,
        spool: Path,
        pool_factory: Callable[[], Executor] | None = None,
        recycle_after: int = 0,
    ) -> None:
        self.fetcher = fetcher
        self.pool = pool
        self.pool_factory = pool_factory
        self.recycle_after = recycle_after
        self._tasks = 0
        self._checked: _Remembered[tuple[str, MediaKind, str | None], Checked] = _Remembered(2048)
        self._made: _Remembered[tuple[object, ...], _Made] = _Remembered(2048)
        self.blobs = blobs
        self.profile = profile
        self.spool = spool
        self._spool_ready = False

    async def _in_pool(self, fn: functools.partial[T]) -> T:
        self._tasks += 1
        if self.recycle_after and self._tasks % self.recycle_after == 0 and self.pool_factory is not None:
            # fresh processes now and then, so a decoder's leaked memory never accumulates; done here rather
            # than with max_tasks_per_child, which can deadlock the pool on Python 3.11 (CPython gh-115634)
            old, self.pool = self.pool, self.pool_factory()
            old.shutdown(wait=False)  # its tasks under way still finish
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except BrokenExecutor as exc:
            # a worker process died: every later task would fail too, so start a fresh pool
            if self.pool is pool and self.pool_factory is not None:
                self.pool = self.pool_factory()
                pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerCrashed(f"a media worker process died: {exc}") from exc

    async def prepare(
        self,
        owner_id: str,
        slides: Sequence[Slide],
        *,
        adapt_images: bool,
        transcode_av: bool,
        use_cache: bool = True,
    ) -> Prepared:
        """Fetch, prove and fit every media file; raise MediaError with the contract's code if one fails."""
        if not any(slide.media for slide in slides):
            return Prepared((), False)  # text only: nothing to fetch, nothing to spool
        if not self._spool_ready:
            await asyncio.to_thread(self.spool.mkdir, parents=True, exist_ok=True)
            self._spool_ready = True
        with contextlib.ExitStack() as stack:
            spool = _Spool(self.spool, stack)
            sources = await self._fetch_and_check(spool, slides, use_cache)
            budgets = self._budgets(slides, sources)
            made = [
                await self._fit(spool, source, budget, adapt_images, transcode_av)
                for source, budget in zip(sources, budgets, strict=True)
            ]
        self._check_total(slides, sources, made)
        parts = tuple(
            Part(
                owner_id=owner_id,
                position=position,
                slide=source.slide,
                kind=source.media.kind,
                content_type=result.content_type,
                size=result.size,
                sha256=result.sha256,
                source_url=source.media.url,
                width=result.width,
                height=result.height,
                duration=source.checked.info.duration,
                adapted=result.changed,
            )
            for position, (source, result) in enumerate(zip(sources, made, strict=True), 1)
        )
        return Prepared(parts, any(r.changed for r in made))

    async def _fit(self, spool: _Spool, source: _Source, budget: int, adapt: bool, transcode: bool) -> _Made:
        kind = source.media.kind
        key = (source.digest, kind, source.checked.info.content_type, budget, adapt, transcode, self.profile)
        known = self._made.get(key)
        if known is not None:  # its bytes are in the blob store, which the gateway never prunes
            return known
        if source.path is None:
            source.path = spool.file()
            await asyncio.to_thread(source.path.write_bytes, source.body or b"")
            source.body = None
        with _naming(source.slide, source.media):
            result = await self._in_pool(
                functools.partial(
                    adapt_file,
                    kind,
                    source.checked.info,
                    source.path,
                    self.profile,
                    budget,
                    adapt=adapt,
                    transcode=transcode,
                )
            )
        digest = await asyncio.to_thread(self.blobs.put, result.body)
        made = _Made(result.content_type, len(result.body), digest, result.width, result.height, result.changed)
        self._made.put(key, made)
        return made

    async def _fetch_and_check(self, spool: _Spool, slides: Sequence[Slide], use_cache: bool) -> list[_Source]:
        sources: list[_Source] = []
        for number, slide in enumerate(slides, 1):
            for media in slide.media:
                with _naming(number, media):
                    fetched = await self.fetcher.fetch(media.url, media.kind, use_cache=use_cache)
                    body, declared = fetched.body, fetched.content_type
                    del fetched
                    if len(body) <= KEEP_IN_MEMORY:
                        digest = hashlib.sha256(body).hexdigest()
                    else:
                        digest = await asyncio.to_thread(lambda data: hashlib.sha256(data).hexdigest(), body)
                    checked = self._checked.get((digest, media.kind, declared))
                    source = _Source(number, media, digest, checked or Checked(MediaInfo(""), 0))
                    if checked is None or len(body) > KEEP_IN_MEMORY:
                        source.path = spool.file()
                        await asyncio.to_thread(source.path.write_bytes, body)
                    else:
                        source.body = body
                    del body  # only one large source is held in memory at a time
                    if checked is None:
                        assert source.path is not None
                        checked = await self._in_pool(functools.partial(check_file, media.kind, declared, source.path))
                        self._checked.put((digest, media.kind, declared), checked)
                        source.checked = checked
                sources.append(source)
        return sources

    def _fixed_bytes(self, slides: Sequence[Slide]) -> int:
        texts = sum(encoded_size(len(s.text.encode())) for s in slides if s.text)
        return texts + encoded_size(SMIL_ALLOWANCE + 160 * len(slides))

    def _budgets(self, slides: Sequence[Slide], sources: Sequence[_Source]) -> list[int]:
        """Raw bytes each part may use: what non-images take is theirs; images share the rest."""
        room = self.profile.max_message_bytes - self._fixed_bytes(slides)
        images = [s for s in sources if s.media.kind is MediaKind.IMAGE]
        for source in sources:
            if source.media.kind is not MediaKind.IMAGE:
                room -= encoded_size(source.checked.size)
        share = room // max(1, len(images))
        image_budget = max(1024, int((share - 814) / 1.37))
        return [
            image_budget
            if s.media.kind is MediaKind.IMAGE
            else max(1024, int((self.profile.max_message_bytes - 814) / 1.37))
            for s in sources
        ]

    def _check_total(self, slides: Sequence[Slide], sources: Sequence[_Source], made: Sequence[_Made]) -> None:
        total = self._fixed_bytes(slides) + sum(encoded_size(m.size) for m in made)
        if total <= self.profile.max_message_bytes:
            return
        largest = max(range(len(made)), key=lambda i: made[i].size)
        kind = sources[largest].media.kind
        raise MediaError(
            kind=kind.value,
            code=RULES[kind].too_big,
            detail=f"the message would be {total} bytes as sent; carrier profile {self.profile.name!r} allows "
            f"{self.profile.max_message_bytes} (largest part: {kind.value} of slide {sources[largest].slide}, "
            f"{made[largest].size} bytes)",
        )
