"""Image adaptation throughput and memory, beside bare Pillow in the same run.

Prints images adapted per second (one core) for photos of several sizes, mmsgate's adapter against bare
Pillow doing the same fit; the rate of the media stage's process pool; and the peak RSS of preparing an
8-slide message of ~20 MB photos fetched over loopback. Appends the figures to docs/benchmarks.md, whose
section "How the benchmarks measure" says how each is taken and what the targets are.

Run: ``.venv/bin/python bench/media.py [--seconds 8] [--no-record]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image
from support.results import append_section, table, today

from mmsgate.common.guard import AddressGuard, parse_networks
from mmsgate.core.model import Media, MediaKind, Slide
from mmsgate.media.adapt import CarrierProfile, adapt_image
from mmsgate.media.fetch import Fetcher, FetchLimits
from mmsgate.media.stage import MediaStage
from mmsgate.store.blobs import BlobStore

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "data" / "photos"
SIZES = [(1000, 750), (2000, 1500), (4000, 3000)]


def photo(width: int, height: int, quality: int = 90, source: str = "coffee.png") -> bytes:
    with Image.open(PHOTOS / source) as img:
        big = img.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=quality)
    return out.getvalue()


def bare_pillow(body: bytes) -> int:
    with Image.open(io.BytesIO(body)) as img:
        img.thumbnail((640, 480))
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=80)
        return out.tell()


def mmsgate_adapt(body: bytes) -> int:
    return len(adapt_image(body, "image/jpeg", CarrierProfile(), 300_000).body)


def rate(fn: Callable[[bytes], int], body: bytes, seconds: float) -> float:
    fn(body)
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(body)
        count += 1
    return count / (time.perf_counter() - start)


def pool_rate(body: bytes, seconds: float, processes: int) -> float:
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(mmsgate_adapt, [body] * processes))
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            list(pool.map(mmsgate_adapt, [body] * processes * 2))
            count += processes * 2
        return count / (time.perf_counter() - start)


def rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def big_photo(folder: Path) -> int:
    """A ~20 MB JPEG (a photo with fine grain, as a camera's high-ISO output has), written 8 times."""
    with Image.open(PHOTOS / "astronaut.png") as img:
        big = img.convert("RGB").resize((7200, 5400), Image.Resampling.BICUBIC)
    grain = Image.effect_noise(big.size, 60).convert("RGB")
    big = Image.blend(big, grain, 0.2)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=95)
    for n in range(8):
        (folder / f"p{n}.jpg").write_bytes(out.getvalue())
    return out.tell()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


async def big_message(folder: Path) -> tuple[float, float, float, int]:
    """Prepare 8 slides of the photos in ``folder`` served over loopback; time and peak RSS (self, pool)."""
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    fetcher = Fetcher(AddressGuard(parse_networks("127.0.0.0/8")), FetchLimits(total_timeout=120))
    pool = ProcessPoolExecutor(2)  # as on a 2-core machine (MMSGATE_MEDIA_PROCESSES=0)
    stage = MediaStage(fetcher, pool, BlobStore(folder / "blobs"), CarrierProfile(), folder / "spool")
    slides = [Slide(f"slide {n}", (Media(MediaKind.IMAGE, f"http://127.0.0.1:{port}/p{n}.jpg"),)) for n in range(8)]
    start = time.perf_counter()
    try:
        prepared = await stage.prepare("bench", slides, adapt_images=True, transcode_av=False, use_cache=False)
    finally:
        elapsed = time.perf_counter() - start
        await fetcher.aclose()
        pool.shutdown(wait=True)
        server.shutdown()
    out_bytes = sum(p.size for p in prepared.parts)
    return elapsed, rss_mb(resource.RUSAGE_SELF), rss_mb(resource.RUSAGE_CHILDREN), out_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="measuring time per figure")
    parser.add_argument("--no-record", action="store_true", help="do not append to docs/benchmarks.md")
    parser.add_argument("--message", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.message:
        print(json.dumps(asyncio.run(big_message(args.message))))
        return

    rows: list[list[str]] = []
    print(f"{'photo':>12} {'source KB':>10} {'bare Pillow/s':>14} {'mmsgate/s':>10} {'ratio':>6}")
    for width, height in SIZES:
        body = photo(width, height)
        bare = rate(bare_pillow, body, args.seconds)
        ours = rate(mmsgate_adapt, body, args.seconds)
        rows.append(
            [f"{width}×{height} JPEG", f"{len(body) // 1024}", f"{bare:.1f}", f"{ours:.1f}", f"{ours / bare:.2f}"]
        )
        print(f"{width}×{height:<6} {len(body) // 1024:>10} {bare:>14.1f} {ours:>10.1f} {ours / bare:>6.2f}")
    large = photo(4000, 3000)
    pooled = pool_rate(large, args.seconds, 2)
    print(f"media pool, 2 processes, 4000×3000: {pooled:.1f} images/s")

    folder = Path(tempfile.mkdtemp(prefix="mmsgate-bench-media-"))
    try:
        with ProcessPoolExecutor(1) as maker:  # made elsewhere, so this process's peak is not the maker's
            source_mb = maker.submit(big_photo, folder).result() / 1e6
        # measured in a fresh process: its peak RSS is the media stage's alone
        run = subprocess.run(
            [sys.executable, __file__, "--message", str(folder)], capture_output=True, text=True, check=True
        )
        elapsed, parent, child, out_bytes = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"8 slides × {source_mb:.1f} MB photos: prepared in {elapsed:.1f} s, {out_bytes // 1024} KB out; "
        f"peak RSS gateway process {parent:.0f} MB, largest pool process {child:.0f} MB"
    )
    # the ratio as printed (2 decimals) is what must reach 1
    verdict = "PASS" if all(float(r[4]) >= 1.0 for r in rows) and parent + child < 400 else "FAIL"
    print(f"targets (adapter ≥ bare Pillow; peak RSS < 400 MB): {verdict}")

    if not args.no_record:
        columns = ["photo", "source KB", "bare Pillow thumbnail()/s", "mmsgate adapter/s", "ratio"]
        section = [
            "",
            f"## Media adaptation, {today()}",
            "",
            f"Command: `.venv/bin/python bench/media.py --seconds {args.seconds:g}` (2 cores; fit into 640×480, "
            "JPEG quality 80; one core per figure)",
            "",
            table(columns, "lllll", rows),
            "",
            f"Media pool (2 processes), 4000×3000: {pooled:.1f} images/s. "
            f"8-slide message of {source_mb:.1f} MB photos over loopback: {elapsed:.1f} s, "
            f"peak RSS {parent:.0f} MB in the "
            f"gateway process and {child:.0f} MB in the largest pool process. Verdict: {verdict}.",
        ]
        append_section(section)


if __name__ == "__main__":
    main()
