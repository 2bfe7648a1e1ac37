"""A run's figures and how they are written: percentiles, markdown tables, verdicts, and the dated section a
script appends to docs/benchmarks.md with the command that ran it and the machine it ran on.
"""

from __future__ import annotations

import os
import shlex
import sys
import timeit
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Results of `bench/` scripts, newest last. Each section is one run: compare ratios within a run, not "
    "absolute numbers across runs (±10–15% drift). Accept target (performance guide): ≥ 0.5 × the bare "
    "Starlette ceiling of the same run, with p99 ≤ 25 ms.\n\n"
    "Columns of `accept.py`: *server CPU per request* is the CPU time of all the server's processes divided "
    "by the requests answered (less disturbed by other load than req/s); *CPU cores* are the cores used "
    "during the measured run by the server, wrk, PostgreSQL (backends of the run's database and shared "
    "auxiliary processes) and everything else on the machine (*other*: more than 0.15 marks a disturbed "
    "run).\n"
)
"""The start of docs/benchmarks.md, when a run finds no such file."""


# ---------------------------------------------------------------------------------------------
# figures


def percentile(values: Sequence[float], pct: float) -> float:
    """The value at ``pct`` percent of the sorted values, by index rounded (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def nearest_rank(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# ---------------------------------------------------------------------------------------------
# tables and verdicts


def table(columns: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> str:
    """A markdown table: its head, each column aligned left (``l``) or right (``r``), and its rows."""
    lines = [row(columns), "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += [row(cells) for cells in rows]
    return "\n".join(lines)


def row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def verdict(reasons: Sequence[str]) -> str:
    """PASS, or FAIL with the reasons."""
    return "FAIL: " + ", ".join(reasons) if reasons else "PASS"


def first_line(error: str) -> str:
    """The first line of an error's text, to note it in one line."""
    return error.strip().splitlines()[0] if error.strip() else "error"


# ---------------------------------------------------------------------------------------------
# the record in docs/benchmarks.md


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """How the script was run (``argv``: its arguments, None for this process's), as the record shows it."""
    python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    return shlex.join([python, script, *(sys.argv[1:] if argv is None else argv)])


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def dated(command: str) -> str:
    """The line that says when a run was made, and by which command."""
    return f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC. Command: `{command}`"


def python_note() -> str:
    """The interpreter and how fast it is here (builds differ: a build without PGO/LTO is 2x slower)."""
    best = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000
    where = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    return f"Python {sys.version.split()[0]} ({where}), `sum(range(1000))` in {best * 1e6:.1f} µs"


def machine_note(shared_by: str) -> str:
    """The machine's cores, who shares them during the run, and the interpreter."""
    return f"Machine: {os.cpu_count()} cores, shared by {shared_by}; {python_note()}."


def append_section(lines: Sequence[str]) -> None:
    """Append a run's section (its lines, the first one empty) to docs/benchmarks.md."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(HEADER)
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines).rstrip() + "\n")


def appended() -> str:
    """What a script prints once its section is appended."""
    return f"\nappended to {RESULTS.relative_to(REPO)}"
