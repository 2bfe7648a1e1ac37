"""Pipeline benchmark: messages per second end to end (accept → submit → N101 postback received).

Its setups run one after the other, each started on free ports, warmed up, measured, stopped: ``sqlite``
(``mmsgate serve``), ``pg1`` and ``pg2`` (``mmsgate api`` and 1 or 2 ``mmsgate worker`` processes on a fresh
PostgreSQL database); bench/pipeline_gateway.py starts them. Each gets a warm-up, a ``paced`` phase (accept
→ submit latencies below saturation) and a ``saturated`` one (the end-to-end rate), loaded by
bench/pipeline_load.py; the table is printed and appended to docs/benchmarks.md, whose section "How the
benchmarks measure" says how each figure is taken and what the target is. Exit status: 0 when every setup
run passes, else 1.

Run: ``.venv/bin/python bench/pipeline.py [--only sqlite,pg1,pg2] [--messages 3000] [--rate 100]
[--paced-seconds 10] [--connections 64] [--no-record]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pipeline_gateway import (
    TIMINGS_SQL,
    Gateway,
    Postbacks,
    analyze,
    census,
    query,
    start_gateway,
    start_receiver,
)
from pipeline_report import Row, append_results, notes, pair, process_cores, results_table, verdict_of
from support.bodies import MediaOrigin, sendmms_request
from support.cpu import CpuSnapshot, cores_used, wait_quiet
from support.gateway import DEFAULT_PG_ADMIN
from support.load import run_load
from support.processes import BenchError, Processes
from support.results import appended, command_line
from support.script import interrupt_on_sigterm

SETUPS = ("sqlite", "pg1", "pg2")
LABELS = {
    "sqlite": "SQLite: `mmsgate serve` (1 process, API + workers)",
    "pg1": "PostgreSQL: `mmsgate api` + 1 worker process",
    "pg2": "PostgreSQL: `mmsgate api` + 2 worker processes",
}
SENT, DELIVERED = "N101", "N102"


def measure(
    name: str,
    procs: Processes,
    work: Path,
    args: argparse.Namespace,
    origin: MediaOrigin,
    postbacks: Postbacks,
) -> Row:
    row = Row(setup=name, label=LABELS[name])
    if args.busy_limit > 0:
        row.busy_before = wait_quiet(args.busy_limit)
    fetches_before = origin.requests
    try:
        with start_gateway(name, procs, work, args, postbacks.base) as gateway:
            request = work / name / "sendmms.http"
            request.write_bytes(sendmms_request(gateway.base, gateway.creds, origin.url))
            try:
                run_phases(row, gateway, procs, request, args, postbacks)
            finally:
                with contextlib.suppress(Exception):
                    row.census = census(gateway)
                row.problems = gateway.problems()
                row.origin_fetches = origin.requests - fetches_before
    except BenchError as exc:
        row.error = str(exc)
    return row


def note_stall(row: Row, phase: str, gateway: Gateway, arrived: int, expected: int, args: argparse.Namespace) -> None:
    """Say what the gateway looked like when a phase's N101 postbacks did not all arrive in time."""
    if arrived >= expected:
        return
    text = (
        f"{phase}: {arrived} of {expected} N101 postbacks within {args.timeout:g} s; live media-pool processes "
        f"per gateway process: {gateway.media_pools()}; store: {census(gateway)}"
    )
    row.stalled.append(text)
    print(f"   {text}", flush=True)


def drain(postbacks: Postbacks, tids: Sequence[str], phase: str, gateway: Gateway, args: argparse.Namespace) -> None:
    """Wait for a phase's N102 postbacks too, so that the next phase starts on an idle gateway."""
    delivered = postbacks.wait(tids, DELIVERED, args.timeout, gateway)
    if len(delivered) < len(tids):
        print(f"   {phase}: only {len(delivered)} of {len(tids)} N102 postbacks within {args.timeout:g} s", flush=True)


def run_phases(
    row: Row, gateway: Gateway, procs: Processes, request: Path, args: argparse.Namespace, postbacks: Postbacks
) -> None:
    # warm-up: the first fetch fills the media cache; the media pool's processes start
    if args.warmup > 0:
        warm = run_load(procs, gateway.port, request, count=args.warmup, connections=min(args.connections, args.warmup))
        row.failures += warm.failures
        if not warm.tracking_ids:
            raise BenchError(f"no warm-up message was accepted; first answer: {warm.failures[0][:300]}")
        sent = postbacks.wait(warm.tracking_ids, SENT, args.timeout, gateway)
        if len(sent) < len(warm.tracking_ids):
            note_stall(row, "warm-up", gateway, len(sent), len(warm.tracking_ids), args)
            raise BenchError(f"the warm-up's N101 postbacks did not all arrive ({len(sent)}/{len(warm.tracking_ids)})")
        drain(postbacks, warm.tracking_ids, "warm-up", gateway, args)
        print(f"   warm-up: {len(warm.tracking_ids)} messages, all N101 postbacks received", flush=True)

    # paced
    count = round(args.rate * args.paced_seconds)
    if count > 0:
        paced = run_load(procs, gateway.port, request, count=count, connections=args.connections, rate=args.rate)
        row.failures += paced.failures
        tids = paced.tracking_ids
        row.paced_messages, row.paced_accepted = count, len(tids)
        row.paced_rate = len(tids) / max(paced.last_answer - paced.started, 1e-6)
        sent = postbacks.wait(tids, SENT, args.timeout, gateway)
        row.paced_n101 = len(sent)
        note_stall(row, "paced", gateway, len(sent), len(tids), args)
        wanted = set(tids)
        timings = {str(t): (float(c), s) for t, c, s in query(gateway.database_url, TIMINGS_SQL) if t in wanted}
        row.to_submit_ms = pair([(s - c) * 1000 for c, s in timings.values() if s is not None])
        row.to_n101_ms = pair([(at - timings[t][0]) * 1000 for t, at in sent.items() if t in timings])
        row.answer_ms = pair(paced.answer_ms())
        drain(postbacks, tids, "paced", gateway, args)
        print(
            f"   paced: {len(tids)}/{count} accepted at {row.paced_rate:.0f} msg/s, {len(sent)} N101; "
            f"accept→submit p50 {row.to_submit_ms[0]:.1f} ms p99 {row.to_submit_ms[1]:.1f} ms; "
            f"accept→N101 p50 {row.to_n101_ms[0]:.1f} ms p99 {row.to_n101_ms[1]:.1f} ms; "
            f"API answer p50 {row.answer_ms[0]:.1f} ms p99 {row.answer_ms[1]:.1f} ms",
            flush=True,
        )

    if gateway.database:
        # a live database has statistics (autovacuum analyzes a table that grew within a minute or so);
        # this one is seconds old: without them, plans made while its tables were nearly empty would stay
        analyze(gateway.database_url)

    # saturated
    bench_pids = [os.getpid(), postbacks.proc.pid]
    before = CpuSnapshot.take()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = run_load(procs, gateway.port, request, count=args.messages, connections=args.connections, pids=bench_pids)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the load generator's CPU: it is gone by the end
    load_cpu = (usage.ru_utime - reaped.ru_utime) + (usage.ru_stime - reaped.ru_stime)
    row.failures += load.failures
    tids = load.tracking_ids
    row.messages, row.accepted = args.messages, len(tids)
    row.accept_rate = len(tids) / max(load.last_answer - load.started, 1e-6)
    print(f"   saturated: {len(tids)}/{args.messages} accepted at {row.accept_rate:,.0f} msg/s", flush=True)
    after = [CpuSnapshot.take()]  # the CPU window ends when the last N101 (so far) arrived

    def progress() -> None:
        after[0] = CpuSnapshot.take()

    sent = postbacks.wait(tids, SENT, args.timeout, gateway, on_progress=progress)
    sessions = gateway.sessions()
    row.cores = cores_used(before, after[0], sessions, gateway.database, bench_pids, load_cpu, row.process_cores)
    row.n101 = len(sent)
    if sent:
        spent = (after[0].at - before.at) * 1000 / len(sent)
        row.cpu_ms = (row.cores[0] * spent, row.cores[1] * spent)
    note_stall(row, "saturated", gateway, len(sent), len(tids), args)
    if sent:
        last = max(sent.values())
        row.last_n101_s = last - load.started
        row.e2e_rate = len(sent) / max(last - load.started, 1e-6)
        created = {str(t): float(c) for t, c, _ in query(gateway.database_url, TIMINGS_SQL)}
        row.saturated_to_n101_ms = pair([(at - created[t]) * 1000 for t, at in sent.items() if t in created])
    print(
        f"   saturated: {len(sent)}/{len(tids)} N101 received, the last {row.last_n101_s:.2f} s after the first "
        f"request: {row.e2e_rate:,.0f} msg/s end to end; CPU cores (gateway / PostgreSQL / bench / other): "
        f"{' / '.join(f'{c:.2f}' for c in row.cores)} (gateway: {process_cores(row)}); CPU per message: gateway "
        f"{row.cpu_ms[0]:.2f} ms, PostgreSQL {row.cpu_ms[1]:.2f} ms",
        flush=True,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Pipeline benchmark: accept → submit → N101 postback, end to end (see the module docstring)."
    )
    parser.add_argument(
        "--only", default=",".join(SETUPS), help=f"comma-separated setups to run, of {','.join(SETUPS)} (default all)"
    )
    parser.add_argument("--messages", type=int, default=3000, help="messages of the saturated phase (default 3000)")
    parser.add_argument("--rate", type=float, default=100.0, help="msg/s of the paced phase (default 100)")
    parser.add_argument("--paced-seconds", type=float, default=10.0, help="seconds of the paced phase (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections of the load (default 64)")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up messages per setup (default 100)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for a phase's N101 postbacks (default 120)"
    )
    parser.add_argument(
        "--worker-concurrency", type=int, default=64, help="MMSGATE_WORKER_CONCURRENCY of the gateway (default 64)"
    )
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help=f"admin database URL (default {DEFAULT_PG_ADMIN})")
    parser.add_argument(
        "--busy-limit",
        type=float,
        default=0.25,
        help="before each setup, wait (up to 2 min) until other programs use fewer cores than this (0: do not wait)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="MMSGATE_NAME=VALUE",
        help="a setting of the gateway's processes (repeatable), to try a setting's effect",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SETUPS]
    if unknown or not chosen:
        parser.error(f"--only takes a comma-separated subset of {','.join(SETUPS)}; unknown: {','.join(unknown)}")
    if args.messages < 1 or args.connections < 1 or args.rate < 0 or args.warmup < 0:
        parser.error("--messages and --connections must be positive, --rate and --warmup not negative")
    args.setups = [s for s in SETUPS if s in chosen]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    command = command_line("bench/pipeline.py", argv)
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="mmsgate-pipeline-"))
    rows: list[Row] = []
    try:
        with MediaOrigin() as origin:
            postbacks = start_receiver(procs, work)
            for name in args.setups:
                print(f"== {name}: {LABELS[name]}", flush=True)
                row = measure(name, procs, work, args, origin, postbacks)
                rows.append(row)
                if row.error:
                    print(f"   did not complete: {row.error}", flush=True)
                if row.census and not row.stalled:
                    print(f"   store: {row.census}", flush=True)
                for line in row.problems[:5]:
                    print(f"   log: {line[:300]}", flush=True)
            print()
            print(results_table(rows))
            for note in notes(rows, args, origin):
                print(f"- {note}")
            if not args.no_record:
                append_results(command, rows, args, origin)
                print(appended())
    except KeyboardInterrupt:
        print("interrupted; stopping every process started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if rows and all(verdict_of(r) == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
