"""Accept benchmark: how many ``sendmms`` requests per second mmsgate accepts, against the bare ceiling.

Its setups run one after the other, each started on free ports, warmed up, loaded with wrk, stopped:
``bare`` (the ceiling: bench/bare_app.py, a bare Starlette app answering fixed JSON), ``sqlite``
(``mmsgate serve`` on SQLite), ``pg1`` and ``pg2`` (``mmsgate api`` on a fresh PostgreSQL database, 1 and 2
processes). The table is printed and appended to docs/benchmarks.md, whose section "How the benchmarks
measure" says how each figure is taken and what the target is. Exit status: 0 when every setup run passes
(the ceiling counts as passing when it has no errors), 1 otherwise, 2 without wrk.

Run: ``.venv/bin/python bench/accept.py [--duration 15] [--connections 64] [--only sqlite,pg1,pg2,bare]``
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from support.bodies import sendmms_body
from support.cpu import OTHER_LOAD_WARNING, CpuSnapshot, CpuUse, wait_quiet
from support.gateway import (
    BENCH_NUMBER,
    BENCH_TO,
    DEFAULT_PG_ADMIN,
    Credentials,
    child_env,
    demo_account,
    free_port,
    fresh_database,
    mmsgate_argv,
    provision,
    start_listening,
    wait_healthy,
)
from support.load import WrkResult, parse_wrk, run_wrk, sanity_check, wrk_script
from support.processes import BenchError, Processes, wait_members
from support.results import (
    append_section,
    appended,
    command_line,
    first_line,
    machine_note,
    table,
    today,
    verdict,
)
from support.script import interrupt_on_sigterm

BENCH_DIR = Path(__file__).resolve().parent
SETUPS = ("bare", "sqlite", "pg1", "pg2")
LABELS = {
    "bare": "bare Starlette, fixed JSON (1 process)",
    "sqlite": "mmsgate serve, SQLite (1 process, API + worker)",
    "pg1": "mmsgate api, PostgreSQL (1 process)",
    "pg2": "mmsgate api, PostgreSQL (2 processes)",
}
TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
BARE_CREDENTIALS = Credentials(api_key="bare", service_id="1000000001", sender=BENCH_NUMBER, to=BENCH_TO)


@dataclass
class Server:
    base: str
    creds: Credentials
    proc: subprocess.Popen[bytes]
    database: str  # the PostgreSQL database's name, or ""


@dataclass
class Row:
    setup: str
    label: str
    result: WrkResult | None = None
    error: str = ""
    cpu: CpuUse | None = None  # during the measured run
    other_cpu: float = 0.0  # cores used by neither the server, wrk nor PostgreSQL: other load on the machine
    busy_before: float = 0.0  # cores in use on the machine just before the setup started
    body_bytes: int = 0


# ---------------------------------------------------------------------------------------------
# setups


@contextlib.contextmanager
def start_setup(name: str, procs: Processes, work: Path, args: argparse.Namespace) -> Iterator[Server]:
    """Start one setup's server(s); stop them (and drop its database) on leaving."""
    home = work / name
    home.mkdir()
    data = home / "data"
    with contextlib.ExitStack() as stack:

        def start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path, str]:
            proc, log, base = start_listening(procs, argv, home, "server.log", env)
            stack.callback(procs.stop, proc)
            return proc, log, base

        database = ""
        if name == "bare":
            proc, log, base = start([sys.executable, str(BENCH_DIR / "bare_app.py"), "--port", "0"], child_env())
            creds = BARE_CREDENTIALS
        elif name == "sqlite":
            env = child_env({"MMSGATE_WORKERS": "false"} if args.no_workers else None)
            proc, log, base = start(mmsgate_argv("serve", "--data-dir", str(data), "--port", "0"), env)
            _, creds = demo_account(data)
        elif name in ("pg1", "pg2"):
            database, url = stack.enter_context(fresh_database(args.pg_admin, name))
            _, creds = provision(url, data, home)
            # one process may take port 0; several need a concrete port (uvicorn's supervisor binds it)
            port = "0" if name == "pg1" else str(free_port())
            processes = "1" if name == "pg1" else "2"
            argv = ["api", "--processes", processes, "--port", port, "--database", url, "--data-dir", str(data)]
            proc, log, base = start(mmsgate_argv(*argv), child_env())
        else:
            raise BenchError(f"unknown setup {name!r}")
        wait_healthy(base, proc, log)
        if name == "pg2":
            wait_members(proc.pid, 2, log)
        yield Server(base, creds, proc, database)


def label_of(name: str, args: argparse.Namespace) -> str:
    if name == "sqlite" and args.no_workers:
        return "mmsgate serve, SQLite (1 process, API only: MMSGATE_WORKERS=false)"
    return LABELS[name]


def measure(name: str, procs: Processes, work: Path, args: argparse.Namespace, wrk: str) -> Row:
    row = Row(setup=name, label=label_of(name, args))
    if args.busy_limit > 0:
        row.busy_before = wait_quiet(args.busy_limit)
    try:
        with start_setup(name, procs, work, args) as server:
            body = sendmms_body(server.creds, datetime.now(UTC))
            row.body_bytes = len(body)
            sanity_check(server.base, body, server.creds.api_key)
            script = work / name / "sendmms.lua"
            script.write_text(wrk_script(body, server.creds.api_key))
            url = f"{server.base}/ep/v2/"
            if args.warmup > 0:
                run_wrk(
                    procs, wrk, url, script, duration=args.warmup, connections=args.connections, threads=args.threads
                )
            before = CpuSnapshot.take()
            output, wrk_cpu = run_wrk(
                procs, wrk, url, script, duration=args.duration, connections=args.connections, threads=args.threads
            )
            row.cpu = CpuUse.between(before, CpuSnapshot.take(), server.proc.pid, server.database)
            row.result = parse_wrk(output, wrk_cpu)
            row.other_cpu = max(0.0, row.cpu.machine - row.cpu.server_total - row.cpu.postgres - wrk_cpu)
            if args.verbose:
                print(output, flush=True)
    except BenchError as exc:
        row.error = str(exc)
    return row


# ---------------------------------------------------------------------------------------------
# report


def verdict_of(row: Row, ceiling: float | None) -> str:
    if row.result is None:
        return "FAIL (did not run)"
    r = row.result
    if row.setup == "bare":
        return "ceiling" if r.errors == 0 else "ceiling has errors"
    reasons = []
    if r.errors:
        reasons.append(f"{r.errors} errors")
    if ceiling is None:
        reasons.append("no ceiling measured")
    elif r.rps < TARGET_RATIO * ceiling:
        reasons.append(f"< {TARGET_RATIO:g} x ceiling")
    if r.p99_ms > TARGET_P99_MS:
        reasons.append(f"p99 > {TARGET_P99_MS:g} ms")
    if reasons == ["no ceiling measured"]:
        return "n/a (no ceiling)"
    return verdict(reasons)


def cpu_per_request(row: Row) -> str:
    """Server CPU time per answered request (all its processes): less disturbed by other load than req/s."""
    if row.cpu is None or row.result is None or row.result.rps <= 0:
        return "–"
    return f"{row.cpu.server_total / row.result.rps * 1e6:.0f} µs"


def cpu_summary(row: Row) -> str:
    if row.cpu is None or row.result is None:
        return "–"
    server = f"{row.cpu.server_total:.2f}"
    if len(row.cpu.server) > 1:
        server += " (" + " + ".join(f"{c:.2f}" for c in row.cpu.server) + ")"
    return f"{server} / {row.result.wrk_cpu:.2f} / {row.cpu.postgres:.2f} / {row.other_cpu:.2f}"


def results_table(rows: Sequence[Row]) -> str:
    ceiling = _ceiling(rows)
    columns = [
        "setup",
        "req/s",
        "p50",
        "p99",
        "ratio to bare ceiling",
        "errors",
        "verdict",
        "server CPU per request",
        "CPU cores: server / wrk / PostgreSQL / other",
    ]
    cells = []
    for row in rows:
        r = row.result
        if r is None:
            cells.append([row.label, "–", "–", "–", "–", "–", verdict_of(row, ceiling), "–", "–"])
            continue
        ratio = f"{r.rps / ceiling:.2f}" if ceiling else "n/a"
        errors = f"{r.errors}" if r.errors == 0 else f"**{r.errors}** ({100 * r.errors / max(r.requests, 1):.2f}%)"
        cells.append(
            [
                row.label,
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.2f} ms",
                f"{r.p99_ms:.2f} ms",
                ratio,
                errors,
                verdict_of(row, ceiling),
                cpu_per_request(row),
                cpu_summary(row),
            ]
        )
    return table(columns, "lrrrrrlrl", cells)


def notes(rows: Sequence[Row]) -> list[str]:
    out: list[str] = []
    by = {r.setup: r.result for r in rows if r.result}
    one, two = by.get("pg1"), by.get("pg2")
    if one and two and one.rps:
        out.append(f"PostgreSQL, 2 API processes / 1: {two.rps / one.rps:.2f}x.")
    for row in rows:
        if row.error:
            out.append(f"{row.setup} did not run: {first_line(row.error)}")
        elif row.result and row.result.sample:
            out.append(f"{row.setup}: first non-success answer: `{row.result.sample[:200]}`")
        if row.result and (row.other_cpu > OTHER_LOAD_WARNING or row.busy_before > OTHER_LOAD_WARNING):
            out.append(
                f"{row.setup}: other load on the machine ({row.busy_before:.2f} cores before, "
                f"{row.other_cpu:.2f} during the run): its figures are disturbed; run again on a quiet machine."
            )
    return out


def append_results(command: str, rows: Sequence[Row], args: argparse.Namespace) -> None:
    body_bytes = next((r.body_bytes for r in rows if r.body_bytes), 0)
    section = [
        "",
        f"## {today()}: accept (`bench/accept.py`)",
        "",
        f"Command: `{command}`",
        "",
        f"{machine_note('wrk and the server(s)')} "
        f"Load: wrk {args.threads} threads, {args.connections} connections, {args.warmup:g} s warm-up, "
        f"{args.duration:g} s measured per setup; `sendmms` body {body_bytes} bytes, 3 slides. "
        f"Target: ≥ {TARGET_RATIO:g} × bare ceiling, p99 ≤ {TARGET_P99_MS:g} ms, no errors.",
        "",
        results_table(rows),
        "",
    ]
    append_section(section + [f"- {note}" for note in notes(rows)])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Accept benchmark: mmsgate against a bare Starlette ceiling (see the module docstring)."
    )
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per setup (default 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per setup (default 3; 0: none)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--only", default=",".join(SETUPS), help=f"comma-separated setups to run, of {','.join(SETUPS)} (default all)"
    )
    parser.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN, help=f"admin database URL (default {DEFAULT_PG_ADMIN})")
    parser.add_argument(
        "--busy-limit",
        type=float,
        default=0.25,
        help="before each setup, wait (up to 2 min) until other programs use fewer cores than this (0: do not wait)",
    )
    parser.add_argument(
        "--no-workers",
        action="store_true",
        help="run `mmsgate serve` (sqlite) without its embedded job worker (MMSGATE_WORKERS=false): the API alone",
    )
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    parser.add_argument("--verbose", action="store_true", help="print wrk's full output")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SETUPS]
    if unknown or not chosen:
        parser.error(f"--only takes a comma-separated subset of {','.join(SETUPS)}; unknown: {','.join(unknown)}")
    args.setups = [s for s in SETUPS if s in chosen]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    interrupt_on_sigterm()
    command = command_line("bench/accept.py", argv)
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="mmsgate-bench-"))
    rows: list[Row] = []
    try:
        for name in args.setups:
            print(f"== {name}: {label_of(name, args)}", flush=True)
            row = measure(name, procs, work, args, wrk)
            rows.append(row)
            if row.result:
                r = row.result
                print(
                    f"   {r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, errors {r.errors}, "
                    f"server CPU/request {cpu_per_request(row)}, "
                    f"CPU cores (server / wrk / PostgreSQL / other): {cpu_summary(row)}",
                    flush=True,
                )
            else:
                print(f"   did not run: {row.error}", flush=True)
    except KeyboardInterrupt:
        print("interrupted; stopping every process started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(results_table(rows))
    for note in notes(rows):
        print(f"- {note}")
    if not args.no_record:
        append_results(command, rows, args)
        print(appended())
    ceiling = _ceiling(rows)
    return 0 if all(verdict_of(r, ceiling) in ("PASS", "ceiling") for r in rows) else 1


def _ceiling(rows: Sequence[Row]) -> float | None:
    return next((r.result.rps for r in rows if r.setup == "bare" and r.result), None)


if __name__ == "__main__":
    sys.exit(main())
