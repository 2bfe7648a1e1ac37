"""MM7 benchmark: SubmitReq build + send rate of the MM7 connector, and the VASP endpoint's DeliverReq rate.

Two measurements, one after the other: ``submit`` (bench/mm7_submit.py: ``Mm7Carrier`` against the MMSC test
peer, tests/peers/mmsc-sim.js, at each concurrency; and ``build_submit_req`` alone) and ``deliver``
(bench/mm7_deliver.py: DeliverReq POSTed into a real ``mmsgate serve``, until every N401 postback came
back). The tables are printed and appended to docs/benchmarks.md, whose section "How the benchmarks
measure" says how each figure is taken. Exit status: 0 when every run completed, 1 otherwise, 2 without
node or the npm packages of tests/peers.

Run: ``.venv/bin/python bench/mm7.py [--only submit,deliver] [--submits 2000] [--concurrency 1,8,32]
[--requests 3000] [--deliver-concurrency 32] [--no-record]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # mmsgate and the test peers, from this checkout

from mm7_deliver import run_deliver  # noqa: E402
from mm7_report import Results, append_results, report  # noqa: E402
from mm7_submit import bench_mms, build_once, build_rate, run_submits  # noqa: E402
from support.bodies import make_jpeg  # noqa: E402
from support.processes import BenchError  # noqa: E402
from support.results import appended, command_line, percentile  # noqa: E402
from support.script import PEERS, node_version, node_with, run_event_loop  # noqa: E402

from tests.mmsc import PACKAGES  # noqa: E402

PARTS = ("submit", "deliver")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="MM7 benchmark: SubmitReq build + send rate, VASP DeliverReq rate (see the module docstring)."
    )
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)} (default all)")
    parser.add_argument("--submits", type=int, default=2000, help="submits per concurrency (default 2000)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated callers in flight (default 1,8,32)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up submits per concurrency (default 200)")
    parser.add_argument("--requests", type=int, default=3000, help="DeliverReq measured (default 3000)")
    parser.add_argument("--deliver-concurrency", type=int, default=32, help="DeliverReq in flight (default 32)")
    parser.add_argument("--deliver-warmup", type=int, default=200, help="warm-up DeliverReq (default 200)")
    parser.add_argument(
        "--worker-concurrency", type=int, default=64, help="MMSGATE_WORKER_CONCURRENCY of the gateway (default 64)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the N401s (default 120)")
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if not args.parts or any(p not in PARTS for p in args.parts):
        parser.error(f"--only takes a comma-separated subset of {','.join(PARTS)}")
    try:
        args.concurrency_list = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers")
    if not args.concurrency_list or min(args.concurrency_list) < 1:
        parser.error("--concurrency: each must be positive")
    if min(args.submits, args.requests, args.deliver_concurrency, args.worker_concurrency) < 1:
        parser.error("--submits, --requests, --deliver-concurrency and --worker-concurrency must be positive")
    if args.warmup < 0 or args.deliver_warmup < 1:
        parser.error("--warmup must not be negative, --deliver-warmup must be positive")
    return args


async def run(args: argparse.Namespace, work: Path, results: Results) -> None:
    me = asyncio.current_task()
    assert me is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, me.cancel)  # finally blocks stop what started
    if "submit" in args.parts:
        jpeg = make_jpeg(640, 480, 85, 0.22)
        mms = bench_mms(jpeg)
        results.jpeg_bytes = len(jpeg)
        results.submit_body_bytes = len(build_once(mms)[0])
        results.build_per_second = build_rate(mms)
        print(
            f"== build_submit_req: {results.build_per_second:,.0f} calls/s for a "
            f"{results.submit_body_bytes / 1024:.1f} KB SubmitReq",
            flush=True,
        )
        for concurrency in args.concurrency_list:
            print(f"== submit: {args.submits:,} SubmitReq, {concurrency} in flight", flush=True)
            try:
                row = await run_submits(concurrency, mms, args, work)
            except (BenchError, AssertionError, OSError) as exc:
                results.errors.append(f"submit, {concurrency} in flight: {exc}")
                print(f"   did not complete: {exc}", flush=True)
                continue
            results.submit_rows.append(row)
            print(
                f"   {row.rate:,.0f} submits/s, p50 {percentile(row.latencies_ms, 50):.2f} ms, "
                f"p99 {percentile(row.latencies_ms, 99):.2f} ms{'' if row.complete else ', INCOMPLETE'}",
                flush=True,
            )
    if "deliver" in args.parts:
        print(
            f"== deliver: {args.requests:,} DeliverReq into mmsgate serve, {args.deliver_concurrency} in flight",
            flush=True,
        )
        mo_jpeg = make_jpeg(320, 240, 80, 0.0)
        results.mo_jpeg_bytes = len(mo_jpeg)
        try:
            results.deliver = await run_deliver(args, mo_jpeg, work)
        except (BenchError, OSError) as exc:
            results.errors.append(f"deliver: {exc}")
            print(f"   did not complete: {exc}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if "submit" in args.parts and node_with(PACKAGES) is None:
        print(f"needs node and the npm packages of {PEERS} (npm ci there)", file=sys.stderr)
        return 2
    node = shutil.which("node")
    node_at = node_version(node) if node is not None else "none"
    command = command_line("bench/mm7.py", argv)
    results = Results()
    work = Path(tempfile.mkdtemp(prefix="mmsgate-bench-mm7-"))
    try:
        run_event_loop(run(args, work, results))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; every process started is stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n".join(report(results, args)))
    if not args.no_record:
        append_results(command, results, args, node_at)
        print(appended())
    return 0 if results.complete else 1


if __name__ == "__main__":
    sys.exit(main())
