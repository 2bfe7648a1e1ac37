"""The report of bench/pipeline.py: a setup's figures (``Row``), its verdict, the table and its notes, and the
section appended to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from support.bodies import MediaOrigin
from support.cpu import OTHER_LOAD_WARNING
from support.results import append_section, dated, first_line, machine_note, nearest_rank, table, verdict

TARGET_RATE = 2000.0
TARGET_P50_MS = 50.0


@dataclass
class Row:
    setup: str
    label: str
    error: str = ""
    # saturated
    messages: int = 0
    accepted: int = 0
    accept_rate: float = 0.0
    n101: int = 0
    e2e_rate: float = 0.0
    last_n101_s: float = 0.0  # from the first request sent
    saturated_to_n101_ms: tuple[float, float] = (float("nan"), float("nan"))
    cores: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # gateway, PostgreSQL, bench, other
    cpu_ms: tuple[float, float] = (0.0, 0.0)  # CPU time per message (N101 received): gateway, PostgreSQL
    process_cores: dict[str, float] = field(default_factory=dict)  # the gateway's, per process (with its pool)
    # paced
    paced_messages: int = 0
    paced_accepted: int = 0
    paced_n101: int = 0
    paced_rate: float = 0.0
    to_submit_ms: tuple[float, float] = (float("nan"), float("nan"))
    to_n101_ms: tuple[float, float] = (float("nan"), float("nan"))
    answer_ms: tuple[float, float] = (float("nan"), float("nan"))
    # both
    failures: list[str] = field(default_factory=list)
    origin_fetches: int = 0
    census: str = ""
    stalled: list[str] = field(default_factory=list)  # phases whose N101 did not all arrive, and what was seen
    problems: list[str] = field(default_factory=list)
    busy_before: float = 0.0


def pair(values: Sequence[float]) -> tuple[float, float]:
    """The p50 and p99 of ``values`` (nan when there are none)."""
    return nearest_rank(values, 50), nearest_rank(values, 99)


def process_cores(row: Row) -> str:
    return ", ".join(f"{name} {cores:.2f}" for name, cores in row.process_cores.items())


def verdict_of(row: Row) -> str:
    if not row.messages and not row.paced_accepted:
        return "FAIL (did not run)"
    reasons = []
    if row.error:
        reasons.append("incomplete")
    if row.failures:
        reasons.append(f"{len(row.failures)} API failures")
    if row.n101 < row.accepted or row.paced_n101 < row.paced_accepted:
        reasons.append("N101 missing")
    if not row.messages:
        reasons.append("no saturated phase")
    elif row.e2e_rate < TARGET_RATE:
        reasons.append(f"< {TARGET_RATE:,.0f} msg/s")
    if not row.paced_accepted:
        reasons.append("no paced phase")
    elif not row.to_submit_ms[0] <= TARGET_P50_MS:
        reasons.append(f"paced p50 > {TARGET_P50_MS:g} ms")
    return verdict(reasons)


def _ms(values: tuple[float, float]) -> str:
    p50, p99 = values
    if p50 != p50:  # nan
        return "–"
    return f"{p50:,.0f} / {p99:,.0f} ms" if p50 >= 100 else f"{p50:.1f} / {p99:.1f} ms"


def results_table(rows: Sequence[Row]) -> str:
    columns = [
        "setup",
        "accept msg/s",
        "end-to-end msg/s (saturated)",
        "N101 received",
        "paced accept→submit p50 / p99",
        "paced accept→N101 p50 / p99",
        "CPU per message: gateway / PostgreSQL",
        "CPU cores: gateway / PostgreSQL / bench / other",
        "verdict",
    ]
    cells = []
    for row in rows:
        if not row.messages and not row.paced_accepted:
            cells.append([row.label, "–", "–", "–", "–", "–", "–", "–", verdict_of(row)])
            continue
        accept, e2e, cpu, cores, received = "–", "–", "–", "–", []
        if row.messages:
            accept, e2e = f"{row.accept_rate:,.0f}", f"{row.e2e_rate:,.0f}"
            cpu = f"{row.cpu_ms[0]:.2f} / {row.cpu_ms[1]:.2f} ms"
            cores = " / ".join(f"{c:.2f}" for c in row.cores)
            received.append(f"{row.n101}/{row.accepted}")
        if row.paced_accepted:
            received.append(f"{row.paced_n101}/{row.paced_accepted} paced")
        measured = [accept, e2e, " + ".join(received), _ms(row.to_submit_ms), _ms(row.to_n101_ms), cpu, cores]
        cells.append([row.label, *measured, verdict_of(row)])
    return table(columns, "lrrrrrrll", cells)


def notes(rows: Sequence[Row], args: argparse.Namespace, origin: MediaOrigin) -> list[str]:
    paced = f"paced {args.rate:g} msg/s for {args.paced_seconds:g} s" if args.rate > 0 else "no paced phase"
    out = [
        f"Each message: 1 slide, text + a {len(origin.body) // 1024} KB 320×240 JPEG from an origin in the bench "
        f"process (same URL every time: the gateway's media cache serves it after the first fetch); sandbox "
        f"carrier, the recipient delivers at once (an N102 follows each N101); MMSGATE_WORKER_CONCURRENCY="
        f"{args.worker_concurrency}. Load: {args.connections} keep-alive connections; warm-up {args.warmup} "
        f"messages, then {paced}, then {args.messages} messages saturated. End to end = N101 received / "
        f"(last N101 arrival − first request sent); CPU over that window (*CPU per message*: CPU time "
        f"/ N101 received, less disturbed by other load than msg/s; *bench*: load generator, postback receiver, "
        f"media origin; *other*: everything else on the machine)."
    ]
    for row in rows:
        if row.error:
            out.append(f"{row.setup} did not complete: {first_line(row.error)}")
        measured = []
        if row.messages:
            measured.append(
                f"last N101 {row.last_n101_s:.1f} s after the first request, accept→N101 p50 / p99 when saturated "
                f"{_ms(row.saturated_to_n101_ms)}, gateway cores by process {process_cores(row)}"
            )
        if row.paced_accepted:
            measured.append(f"paced: {row.paced_rate:.0f} msg/s, API answer p50 / p99 {_ms(row.answer_ms)}")
        if measured:
            out.append(f"{row.setup}: {'; '.join(measured)}; origin fetched {row.origin_fetches}×.")
        if row.paced_rate and row.e2e_rate and row.e2e_rate < args.rate:
            out.append(
                f"{row.setup}: the paced rate ({args.rate:g} msg/s) is above the end-to-end capacity "
                f"({row.e2e_rate:,.0f} msg/s): the paced latencies are those of a saturated gateway."
            )
        out += [f"{row.setup}: {text}" for text in row.stalled]
        if row.failures:
            out.append(f"{row.setup}: {len(row.failures)} API failures, first: `{row.failures[0][:200]}`")
        if row.problems:
            out.append(
                f"{row.setup}: {len(row.problems)} warning/error lines in the gateway's logs, first: "
                f"`{row.problems[0][:200]}`"
            )
        if row.busy_before > OTHER_LOAD_WARNING or row.cores[3] > OTHER_LOAD_WARNING:
            out.append(
                f"{row.setup}: other load on the machine ({row.busy_before:.2f} cores before the setup, "
                f"{row.cores[3]:.2f} during the saturated phase): its figures are disturbed."
            )
    return out


def append_results(command: str, rows: Sequence[Row], args: argparse.Namespace, origin: MediaOrigin) -> None:
    section = [
        "",
        "## Pipeline (accept → submit → N101 postback)",
        "",
        dated(command),
        "",
        f"{machine_note('the gateway, PostgreSQL, the load generator and the postback receiver')} "
        f"Target: ≥ {TARGET_RATE:,.0f} msg/s end to end (saturated), p50 accept→submit ≤ {TARGET_P50_MS:g} ms "
        f"(paced, {args.rate:g} msg/s).",
        "",
        results_table(rows),
        "",
    ]
    append_section(section + [f"- {note}" for note in notes(rows, args, origin)])
