"""What bench/chaos.py checks after the chaos, how it prints it, and the section it appends to docs/benchmarks.md.

Everything is read from where a user would find it: the load generator's answers, the store (PostgreSQL,
read with plain SQL as a benchmark may), the postback receiver's records and the workers' logs.
"""

from __future__ import annotations

import argparse
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos_cluster import Death, Exit, Fleet
from pipeline_gateway import ANY_ID
from support.processes import log_problems, read_log
from support.results import append_section, dated, machine_note, table

FINAL_STATES = ("delivered", "rejected", "failed", "expired", "sms-delivered", "sms-failed")
MIN_ACCEPTED = 5000
STRANDED_AFTER = 60.0
"""Seconds after the load's end by which every accepted message must be final (the issue's acceptance)."""
LONGEST_WAIT = 30.0
"""Seconds a message's work may wait after the process holding it died (the issue's acceptance)."""
RECONCILED = "reconciled with"
"""What a worker logs when it asked the carrier about a submit a dead process left unrecorded."""


@dataclass
class Run:
    """What one run saw."""

    kills: list[tuple[str, float]] = field(default_factory=list)
    restarts: list[tuple[str, float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load_started: float = 0.0
    load_seconds: float = 0.0
    sent: int = 0
    accepted: list[str] = field(default_factory=list)
    accepted_after_retry: int = 0
    refused: list[str] = field(default_factory=list)
    unanswered: int = 0
    unanswered_stored: int = 0
    accepted_twice: int = 0
    lost: list[str] = field(default_factory=list)
    stranded: list[tuple[str, str]] = field(default_factory=list)
    stranded_story: dict[str, list[str]] = field(default_factory=dict)  # tracking id -> its events and jobs
    drained_after: float | None = None
    end_states: Counter[str] = field(default_factory=Counter)
    unexpected: list[tuple[str, str, str]] = field(default_factory=list)  # tracking id, state, expected
    double_submits: list[str] = field(default_factory=list)
    postbacks: Counter[str] = field(default_factory=Counter)  # 200 / 500 / held
    duplicate_postbacks: int = 0
    missing_postbacks: list[tuple[str, str]] = field(default_factory=list)
    deaths: list[Death] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    early_reports: tuple[int, int] = (0, 0)  # delivery reports, SMS receipts kept until their submit's record
    reconciled: int = 0
    problems: list[tuple[str, int]] = field(default_factory=list)

    @property
    def waits(self) -> list[tuple[float, str]]:
        return [
            (seconds, f"{death.held[key]} held by {death.slot}")
            for death in self.deaths
            for key, seconds in death.waited.items()
        ]

    @property
    def longest_wait(self) -> tuple[float, str]:
        return max(self.waits, default=(0.0, "nothing was held by a killed worker"))


# ---------------------------------------------------------------------------------------------
# reading the store and the receiver


Params = Sequence[Any] | dict[str, Any]


def query(url: str, sql: str, params: Params = (), tries: int = 20) -> list[tuple[Any, ...]] | None:
    """The rows of ``sql``, tried again for a while if PostgreSQL is restarting; None if it never answered."""
    import psycopg

    for _ in range(tries):
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                return list(conn.execute(sql.encode(), params).fetchall())
        except psycopg.Error:
            time.sleep(0.5)
    return None


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    found = query(url, sql)
    if found is None:
        raise RuntimeError(f"PostgreSQL did not answer: {sql[:80]}")
    return found


class Receiver:
    """The postback receiver's records, read incrementally: what each POST got, by (tracking id, code)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.seen = 0
        self.outcomes: Counter[str] = Counter()
        self.delivered: Counter[tuple[str, str]] = Counter()

    def poll(self) -> None:
        import json

        with urllib.request.urlopen(f"{self.base}/records?from={self.seen}", timeout=10) as answer:
            text = answer.read()
        for line in text.split(b"\n") if text else []:
            self.seen += 1
            _, outcome, body = line.split(b" ", 2)
            self.outcomes[outcome.decode()] += 1
            if outcome == b"200":
                try:
                    data = json.loads(body)
                    self.delivered[(str(data.get("tracking-id", "")), str(data.get("code", "")))] += 1
                except ValueError:
                    self.delivered[("", "unreadable")] += 1


def check_store(
    run: Run, url: str, records: list[list[Any]], expected: dict[str, str], receiver: str, deadline: float
) -> None:
    """Fill ``run`` from the load's records (in the order of ``expected``: client reference -> the final state
    its handset gives), the store and the receiver (waiting for postbacks until every expected one arrived,
    nothing is left to send, or ``deadline``)."""
    references = list(expected)
    run.sent = len(records)
    unanswered_refs = set()
    for i, (_, _, tracking_id, outcome, tries, detail) in enumerate(records):
        if outcome == "accepted":
            run.accepted.append(str(tracking_id))
            run.accepted_after_retry += int(tries) > 1
        elif outcome == "unanswered":
            unanswered_refs.add(references[i])
        else:
            run.refused.append(str(detail))
    run.unanswered = len(unanswered_refs)
    messages = rows(url, "SELECT tracking_id, state, client_reference FROM messages")
    stored = {str(t) for t, _, _ in messages}
    run.lost = [t for t in run.accepted if t not in stored]
    per_reference = Counter(str(r) for _, _, r in messages)
    run.accepted_twice = sum(1 for n in per_reference.values() if n > 1)
    run.unanswered_stored = sum(1 for r in unanswered_refs if per_reference[r])
    for tracking_id, state, reference in messages:
        run.end_states[str(state)] += 1
        wanted = expected.get(str(reference), "?")
        if str(state) in FINAL_STATES and state != wanted:
            run.unexpected.append((str(tracking_id), str(state), wanted))
    doubles = rows(
        url,
        "SELECT subject_id FROM events WHERE code = 'N101' GROUP BY subject_id HAVING count(*) > 1 "
        "UNION SELECT submission_id FROM sandbox_submissions WHERE calls > 1 "
        "UNION SELECT tracking_id FROM sandbox_sms GROUP BY tracking_id HAVING count(*) > 1",
    )
    run.double_submits = sorted(str(r[0]) for r in doubles)
    wait_postbacks(run, url, Receiver(receiver), deadline)


STORY_SQL = (
    "SELECT created_at, 'event ' || coalesce(code, '-') || ' ' || status || ': ' || details FROM events "
    "WHERE subject_id = %(id)s UNION ALL "
    "SELECT updated_at, 'job ' || kind || ' ' || state || ', ' || attempts || ' attempts' || "
    "coalesce(', last error: ' || last_error, '') FROM jobs WHERE ref = %(id)s OR ref IN "
    "(SELECT carrier_message_id FROM messages WHERE tracking_id = %(id)s) ORDER BY 1"
)


def tell_stranded(run: Run, url: str, first: float, count: int = 5) -> None:
    """The events and jobs of the first stranded messages (times from ``first``, the load's start)."""
    for tracking_id, _ in run.stranded[:count]:
        found = query(url, STORY_SQL, {"id": tracking_id}) or []
        run.stranded_story[tracking_id] = [f"+{float(at) - first:7.1f} s  {what}"[:220] for at, what in found]


def wait_postbacks(run: Run, url: str, receiver: Receiver, deadline: float) -> None:
    """Every postback the store has (and each final state's code) must arrive answered 200 at least once."""
    final = ", ".join(f"'{s}'" for s in FINAL_STATES)
    expected_sql = (
        "SELECT subject_id, code FROM postbacks UNION "
        "SELECT subject_id, code FROM (SELECT DISTINCT ON (e.subject_id) e.subject_id, e.code FROM events e "
        f"JOIN messages m ON m.tracking_id = e.subject_id WHERE e.code IS NOT NULL AND m.state IN ({final}) "
        "ORDER BY e.subject_id, e.id DESC) AS last"
    )
    idle_since: float | None = None
    while True:
        receiver.poll()
        expected = {(str(s), str(c)) for s, c in rows(url, expected_sql)}
        missing = sorted(k for k in expected if k not in receiver.delivered)
        pending = rows(url, "SELECT count(*) FROM postbacks WHERE state IN ('queued', 'running')")[0][0]
        now = time.time()
        idle_since = (idle_since or now) if not pending else None
        if not missing or now >= deadline or (idle_since is not None and now - idle_since > 5):
            break
        time.sleep(1.0)
    run.missing_postbacks = missing
    run.postbacks = receiver.outcomes
    run.duplicate_postbacks = sum(n - 1 for n in receiver.delivered.values() if n > 1)


def count_in_logs(fleet: Fleet, early_report: re.Pattern[str]) -> tuple[tuple[int, int], int, list[tuple[str, int]]]:
    """From the workers' logs: the distinct delivery reports and SMS receipts kept because they came before
    their submit's record, the reconciled submits; from every process's log: its warnings and errors,
    counted by their text (ids left out)."""
    reconciled = 0
    kept: dict[str, set[str]] = {"report": set(), "receipt": set()}
    problems: Counter[str] = Counter()
    for slot in fleet.slots:
        text = read_log(slot.log)
        if slot.is_worker:
            for line in text.splitlines():
                match = early_report.search(line)
                if match:
                    kept[match.group(1)].add(match.group(2))
                elif RECONCILED in line:
                    reconciled += 1
        for line in log_problems(slot.log):
            problems[f"{slot.name.rstrip('0123456789')}: {ANY_ID.sub('…', line)[:160]}"] += 1
    return (len(kept["report"]), len(kept["receipt"])), reconciled, problems.most_common(8)


# ---------------------------------------------------------------------------------------------
# the verdict, printed and recorded


def verdict_reasons(run: Run, args: argparse.Namespace) -> list[str]:
    reasons = []
    if len(run.accepted) < MIN_ACCEPTED:
        reasons.append(f"{len(run.accepted)} accepted (the acceptance asks ≥ {MIN_ACCEPTED:,})")
    for count, what in (
        (len(run.lost), "lost"),
        (len(run.stranded), "stranded"),
        (len(run.exits), "own exits"),
        (len(run.double_submits), "double submits"),
        (len(run.missing_postbacks), "missing postbacks"),
    ):
        if count:
            reasons.append(f"{count} {what}")
    longest, _ = run.longest_wait
    if longest > LONGEST_WAIT:
        reasons.append(f"a wait of {longest:.0f} s after a death (> {LONGEST_WAIT:.0f} s)")
    if not run.kills:
        reasons.append("no process was killed")
    if len(run.restarts) < 2:
        reasons.append(f"PostgreSQL restarted {len(run.restarts)} times, not 2")
    return reasons


def figures(run: Run) -> list[tuple[str, str]]:
    """The run's figures as (name, value) pairs, for the console and the record alike."""
    kinds = Counter(name.rstrip("0123456789") for name, _ in run.kills)
    waits = sorted(seconds for seconds, _ in run.waits)
    longest, what = run.longest_wait
    over = sum(1 for w in waits if w > LONGEST_WAIT)
    unlisted = sum(1 for d in run.deaths if d.listed_at is None)
    left = sum(1 for _, state in run.stranded if state not in FINAL_STATES)
    drained = f"not drained: {left} not final"
    if run.drained_after is not None:
        drained = f"{max(run.drained_after, 0.0):.1f} s"
    states = ", ".join(f"{s} {n:,}" for s, n in sorted(run.end_states.items(), key=lambda x: -x[1]))
    exits = "; ".join(f"{e.slot} exit {e.code}: {e.last_lines.splitlines()[-1][:120]}" for e in run.exits[:3])
    return [
        ("sendmms sent", f"{run.sent:,}"),
        ("accepted", f"{len(run.accepted):,} ({run.accepted_after_retry} after retrying an E503/5xx answer)"),
        ("refused", f"{len(run.refused)}" + (f" (e.g. {run.refused[0][:100]})" if run.refused else "")),
        ("unanswered (connection lost)", f"{run.unanswered} ({run.unanswered_stored} of them stored all the same)"),
        ("stored twice (a retried request)", f"{run.accepted_twice}"),
        ("end states", states or "none"),
        ("end states not the handset's", f"{len(run.unexpected)}"),
        ("lost (accepted, no row)", f"{len(run.lost)}"),
        (f"stranded (not final {STRANDED_AFTER:.0f} s after the load)", f"{len(run.stranded)}"),
        ("time to drain (from the load's end)", drained),
        ("double submits", f"{len(run.double_submits)}"),
        (
            "postbacks answered 200 / 500 / held open",
            f"{run.postbacks['200']:,} / {run.postbacks['500']:,} / {run.postbacks['held']:,}",
        ),
        ("duplicate postbacks (allowed)", f"{run.duplicate_postbacks:,}"),
        ("missing postbacks", f"{len(run.missing_postbacks)}"),
        ("processes that exited on their own", f"{len(run.exits)}" + (f" ({exits})" if exits else "")),
        ("kills (SIGKILL + start at once)", f"{len(run.kills)} (api {kinds['api']}, worker {kinds['worker']})"),
        (
            "PostgreSQL restarts (at, taking)",
            ", ".join(f"-m {m} at +{a - run.load_started:.0f} s, {b - a:.1f} s" for m, a, b in run.restarts) or "none",
        ),
        (
            "work held by killed workers",
            f"{len(waits)} jobs/postbacks; waited p50 {waits[len(waits) // 2] if waits else 0:.1f} s, "
            f"{over} over {LONGEST_WAIT:.0f} s" + (f"; {unlisted} deaths not listed" if unlisted else ""),
        ),
        ("longest wait after a death", f"{longest:.1f} s ({what})"),
        (
            "kept until their submit's record (worker logs)",
            f"{run.early_reports[0]} delivery reports, {run.early_reports[1]} SMS receipts",
        ),
        ("submits reconciled after a death", f"{run.reconciled}"),
        ("load duration", f"{run.load_seconds:.0f} s"),
    ]


def print_figures(run: Run, args: argparse.Namespace) -> None:
    print()
    width = max(len(name) for name, _ in figures(run))
    for name, value in figures(run):
        print(f"{name:<{width}}  {value}")
    for tracking_id, state in run.stranded[:5]:
        print(f"   stranded: {tracking_id} {state}")
        for line in run.stranded_story.get(tracking_id, []):
            print(f"      {line}")
    for tracking_id, code in run.missing_postbacks[:5]:
        print(f"   missing postback: {tracking_id} {code}")
    for tracking_id, state, wanted in run.unexpected[:5]:
        print(f"   end state: {tracking_id} {state} (its handset: {wanted})")
    for exit_ in run.exits[:3]:
        print(f"   {exit_.slot} (pid {exit_.pid}) exited with {exit_.code}; its log ended:\n{exit_.last_lines}")
    for line, count in run.problems:
        print(f"   log ({count}×): {line}")
    for note in run.notes:
        print(f"   note: {note}")


def append_record(command: str, run: Run, args: argparse.Namespace, verdict: str) -> None:
    lines = [
        "",
        f"## Chaos (`bench/chaos.py`): {args.messages:,} messages, seed {args.seed}",
        "",
        dated(command),
        machine_note("the gateway's 4 processes, its PostgreSQL cluster and the bench (load, receiver, origin)"),
        "",
        table(("figure", "value"), "ll", [(name, value) for name, value in figures(run)]),
        "",
        f"Verdict: {verdict}",
    ]
    lines += [f"- {note}" for note in run.notes]
    append_section(lines)
