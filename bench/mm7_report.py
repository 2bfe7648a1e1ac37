"""The report of bench/mm7.py: the submit and deliver tables, their notes, and the section appended to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from mm7_deliver import SHORT_CODE, DeliverRow
from mm7_submit import SubmitRow
from support.results import append_section, dated, machine_note, percentile, table


def submit_table(rows: Sequence[SubmitRow]) -> str:
    columns = [
        "callers in flight",
        "submits",
        "submits/s",
        "submit p50 / p99",
        "CPU per submit: bench (connector) / MMSC peer",
        "complete",
    ]
    cells = []
    for row in rows:
        p50, p99 = percentile(row.latencies_ms, 50), percentile(row.latencies_ms, 99)
        own, peer = row.own_cpu / row.submits * 1e6, row.peer_cpu / row.submits * 1e6
        done = "yes" if row.complete else f"NO: {(row.failures or ['submits missing'])[0][:120]}"
        latency, cpu = f"{p50:.2f} / {p99:.2f} ms", f"{own:,.0f} / {peer:,.0f} µs"
        cells.append([f"{row.concurrency}", f"{row.submits:,}", f"{row.rate:,.0f}", latency, cpu, done])
    return table(columns, "rrrrrl", cells)


def deliver_table(row: DeliverRow) -> str:
    p50, p99 = percentile(row.latencies_ms, 50), percentile(row.latencies_ms, 99)
    gateway = row.gateway_cpu / row.n401 * 1e3 if row.n401 else 0.0
    bench = row.bench_cpu / row.n401 * 1e3 if row.n401 else 0.0
    if row.complete:
        done = "yes"
    elif row.failures:
        done = f"NO: {len(row.failures)} failed, first: {row.failures[0][:120]}"
    else:
        done = f"NO: {row.n401} N401s, {row.duplicates} duplicates"
    columns = [
        "DeliverReq",
        "in flight",
        "requests/s",
        "answer p50 / p99",
        "N401 received",
        "last N401 after",
        "MO/s end to end",
        "CPU per MO: gateway / bench",
        "complete",
    ]
    cells = [
        f"{row.requests:,}",
        f"{row.concurrency}",
        f"{row.rate:,.0f}",
        f"{p50:.2f} / {p99:.2f} ms",
        f"{row.n401:,}/{row.requests:,}",
        f"{row.last_n401:.2f} s",
        f"{row.e2e_rate:,.0f}",
        f"{gateway:.2f} / {bench:.2f} ms",
        done,
    ]
    return table(columns, "rrrrrrrrl", [cells])


@dataclass
class Results:
    """Everything a run measured, and what did not complete."""

    submit_rows: list[SubmitRow] = field(default_factory=list)
    build_per_second: float = 0.0
    submit_body_bytes: int = 0
    jpeg_bytes: int = 0
    deliver: DeliverRow | None = None
    mo_jpeg_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return (
            not self.errors
            and all(r.complete for r in self.submit_rows)
            and (self.deliver is None or self.deliver.complete)
        )


def report(results: Results, args: argparse.Namespace) -> list[str]:
    """The tables and their notes, as markdown lines."""
    out: list[str] = []
    if results.submit_rows or results.build_per_second:
        out += [
            f"SubmitReq ({results.submit_body_bytes / 1024:.1f} KB body: SMIL, text, a {results.jpeg_bytes / 1024:.0f} "
            f"KB 640×480 JPEG in base64) to the MMSC peer; `build_submit_req` alone: "
            f"{results.build_per_second:,.0f} calls/s ({1e6 / results.build_per_second:.0f} µs each)."
            if results.build_per_second
            else "SubmitReq to the MMSC peer.",
            "",
        ]
        if results.submit_rows:
            out += [submit_table(results.submit_rows), ""]
    if results.deliver is not None:
        out += [
            f"DeliverReq ({results.deliver.body_bytes / 1024:.1f} KB body: SMIL, text, a "
            f"{results.mo_jpeg_bytes / 1024:.0f} KB 320×240 JPEG in base64) into `mmsgate serve` (SQLite, API + "
            f"workers, MMSGATE_WORKER_CONCURRENCY={args.worker_concurrency}):",
            "",
            deliver_table(results.deliver),
            "",
        ]
    notes = []
    if results.submit_rows:
        notes.append(
            f"Submit: `Mm7Carrier.submit` built directly (no limiter, JPEG bytes inline in `MmsPart.data`), one "
            f"fresh connector and MMSC peer (tests/peers/mmsc-sim.js, HTTP Basic, no reports) per row; "
            f"{args.warmup} warm-up submits, then {args.submits:,}, each with its own TransactionID; every one "
            f"answered SubmitRsp 1000 with a MessageID and checked by the peer. submits/s: submits / time to the "
            f"last answer; latency: `submit()` call to return; CPU: `time.process_time` of this process (connector, "
            f"aiohttp, callers) and utime + stime of the peer, per submit."
        )
        busiest = max(results.submit_rows, key=lambda r: r.concurrency)
        own_us, peer_us = busiest.own_cpu / busiest.submits * 1e6, busiest.peer_cpu / busiest.submits * 1e6
        if own_us > 0 and peer_us > 0:
            notes.append(
                f"Bound: with {busiest.concurrency} in flight the peer (node: one JavaScript thread, plus GC helper "
                f"threads) spends {peer_us:,.0f} µs of CPU per submit, about {1e6 / peer_us:,.0f} submits/s per core; "
                f"the connector's {own_us:,.0f} µs per submit would allow ~{1e6 / own_us:,.0f}/s on one core. The "
                f"rate here is bound by the {'peer' if peer_us > own_us else 'connector'}."
            )
    if results.deliver is not None:
        notes.append(
            f"Deliver: CLI-made MM7 connection with inbound credentials and an account owning {SHORT_CODE} (postbacks "
            f"to an aiohttp receiver in the bench process); pre-built DeliverReq POSTed with HTTP Basic by an aiohttp "
            f"client, {args.deliver_concurrency} in flight; {args.deliver_warmup} warm-up requests (all N401s in) "
            f"first. requests/s: requests / time to the last answer (each HTTP 200, DeliverRsp 1000, TransactionID "
            f"echoed); end to end: N401s / (last N401 arrival − first request); CPU per MO over that window: the "
            f"gateway's processes (/proc), and this process (client + receiver)."
        )
        if results.deliver.problems:
            notes.append(
                f"Gateway log: {len(results.deliver.problems)} warning/error lines, first: "
                f"`{results.deliver.problems[0][:200]}`"
            )
    notes += [f"Did not complete: {error}" for error in results.errors]
    out += [f"- {note}" for note in notes]
    return out


def append_results(command: str, results: Results, args: argparse.Namespace, node_version: str) -> None:
    section = [
        "",
        "## MM7 connector and VASP endpoint (`bench/mm7.py`)",
        "",
        dated(command),
        "",
        machine_note(f"the bench (uvloop), the MMSC peer (node {node_version.lstrip('v')}) and `mmsgate serve`"),
        "",
        *report(results, args),
    ]
    append_section(section)
