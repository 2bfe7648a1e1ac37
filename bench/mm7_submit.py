"""The ``submit`` part of bench/mm7.py: the MM7 connector's SubmitReq against the MMSC test peer.

``Mm7Carrier`` is built directly (a temporary blob store, no send limiter) against tests/peers/mmsc-sim.js
(HTTP Basic on, no VASP URL: it posts no reports); a fresh connector and peer for each concurrency. Imported
by bench/mm7.py, which puts the repository on ``sys.path`` first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import timeit
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from support.cpu import pid_cpu
from support.gateway import BENCH_NUMBER, BENCH_TO
from support.processes import BenchError

from mmsgate.carriers.mm7.build import build_submit_req
from mmsgate.carriers.mm7.connection import Mm7Carrier, is_short_code
from mmsgate.carriers.mm7.settings import Mm7Connection
from mmsgate.carriers.mm7.status import DEFAULT_VERSION
from mmsgate.core.compose import smil_for
from mmsgate.core.mms import TEXT_CONTENT_TYPE, Mms, MmsPart
from mmsgate.store.blobs import BlobStore
from tests.mmsc import Mmsc

MMSC_USERNAME = "bench-vasp"
MMSC_PASSWORD = "bench-secret"
VASP_ID = "bench-vasp"
VAS_ID = "bench-service"
SHORT_CODE = BENCH_NUMBER
SUBSCRIBER = BENCH_TO
TEXT = "Your order 4711 has shipped and arrives Thursday. Here is a photo of the parcel as it left the depot."


class QuietMmsc(Mmsc):
    """The MMSC peer, its ``submit`` events counted instead of parsed and kept: one JSON line of ~1.5 KB per
    submit would otherwise be charged to this process's CPU per submit."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.submits = 0
        self.problems: list[str] = []
        self.expected = 0
        self.all_logged = asyncio.Event()
        """Set once ``expected`` submits were logged."""

    async def _read_events(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if b'"event":"submit"' in line:
                self.submits += 1
                if b'"ok":true' not in line or b'"status":1000' not in line:
                    self.problems.append(line.decode(errors="replace")[:400])
                if self.submits >= self.expected:
                    self.all_logged.set()
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsed", "line": line.decode(errors="replace")}
            self.events.append(event)
            self._changed.set()
        self._changed.set()


@dataclass
class SubmitRow:
    concurrency: int
    submits: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    own_cpu: float = 0.0
    peer_cpu: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.submits / self.seconds if self.seconds else 0.0

    @property
    def complete(self) -> bool:
        return not self.failures and len(self.latencies_ms) == self.submits


def bench_mms(jpeg: bytes) -> Mms:
    """The message of every submit: one slide, the photo and the text under it."""
    text = TEXT.encode()
    image = MmsPart("image1", "slide1.jpg", "image/jpeg", len(jpeg), data=jpeg, slide=1)
    words = MmsPart("text1", "slide1.txt", TEXT_CONTENT_TYPE, len(text), data=text, slide=1)
    return Mms(
        tracking_id="bench-0",
        account_id="bench-account",
        service_id="bench-service",
        to=SUBSCRIBER,
        sender=SHORT_CODE,
        from_mask=None,
        subject="Your parcel",
        expires_at=datetime.now(UTC) + timedelta(days=1),
        smil=smil_for([(image, words, None, 5000)]),
        parts=(image, words),
    )


def build_once(mms: Mms) -> tuple[bytes, str]:
    """What ``Mm7Carrier.submit`` builds for ``mms`` (the same arguments)."""
    return build_submit_req(
        transaction_id=mms.tracking_id,
        version=DEFAULT_VERSION,
        vasp_id=VASP_ID,
        vas_id=VAS_ID,
        sender=mms.sender,
        sender_is_short_code=is_short_code(mms.sender),
        recipient=mms.to,
        subject=mms.subject,
        expiry=mms.expires_at,
        smil=mms.smil,
        parts=[(p, p.data or b"") for p in mms.parts],
    )


def build_rate(mms: Mms, number: int = 500, repeat: int = 5) -> float:
    """``build_submit_req`` calls per second for ``mms`` (the best of ``repeat`` runs of ``number`` calls)."""
    best = min(timeit.repeat(lambda: build_once(mms), number=number, repeat=repeat))
    return number / best


async def submit_all(carrier: Mm7Carrier, mms: Mms, prefix: str, count: int, callers: int, row: SubmitRow) -> None:
    """Submit ``count`` copies of ``mms`` (each its own tracking id) from ``callers`` concurrent callers; notes
    the latencies of the successes in ``row`` (replacing what it held) and the failures."""
    latencies: list[float] = []
    indexes = iter(range(count))

    async def caller() -> None:
        for index in indexes:
            one = msgspec.structs.replace(mms, tracking_id=f"{prefix}-{index}")
            began = time.perf_counter()
            try:
                result = await carrier.submit(one)
            except Exception as exc:
                row.failures.append(repr(exc))
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            if not result.carrier_message_id.startswith("MMSC-"):
                row.failures.append(f"unexpected MessageID {result.carrier_message_id!r}")

    await asyncio.gather(*(caller() for _ in range(callers)))
    row.latencies_ms = latencies


async def run_submits(concurrency: int, mms: Mms, args: argparse.Namespace, work: Path) -> SubmitRow:
    row = SubmitRow(concurrency, args.submits)
    peer = QuietMmsc({"MMSC_USERNAME": MMSC_USERNAME, "MMSC_PASSWORD": MMSC_PASSWORD})
    carrier: Mm7Carrier | None = None
    try:
        await peer.start()
        settings = Mm7Connection(
            url=f"http://127.0.0.1:{peer.port}/mm7",
            vasp_id=VASP_ID,
            vas_id=VAS_ID,
            username=MMSC_USERNAME,
            password=MMSC_PASSWORD,
        )
        blobs = work / f"blobs-c{concurrency}"
        blobs.mkdir()
        carrier = Mm7Carrier(f"bench-c{concurrency}", settings, BlobStore(blobs))
        assert peer.proc is not None
        peer.expected = args.warmup + args.submits
        warm = SubmitRow(concurrency, args.warmup)
        await submit_all(carrier, mms, f"warm-c{concurrency}", args.warmup, concurrency, warm)
        if warm.failures:
            raise BenchError(f"{len(warm.failures)} warm-up submits failed, first: {warm.failures[0][:300]}")
        own_before, peer_before = time.process_time(), pid_cpu(peer.proc.pid)
        started = time.perf_counter()
        await submit_all(carrier, mms, f"bench-c{concurrency}", args.submits, concurrency, row)
        row.seconds = time.perf_counter() - started
        row.own_cpu = time.process_time() - own_before
        row.peer_cpu = pid_cpu(peer.proc.pid) - peer_before
        # the peer logs each submit once answered: let its last lines come
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(peer.all_logged.wait(), 10)
        if peer.submits != args.warmup + args.submits:
            row.failures.append(f"the peer logged {peer.submits} submits of {args.warmup + args.submits}")
        if peer.problems:
            row.failures.append(f"the peer found problems in {len(peer.problems)} SubmitReq: {peer.problems[0]}")
    finally:
        if carrier is not None:
            await carrier.aclose()
        await peer.stop()
    return row
