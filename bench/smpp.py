"""SMPP benchmark: submits per second over one bind of the SMPP connector, with delivery receipts on.

For each window (default 10 and 50): a fresh connector (a transceiver bind, under uvloop) against the test
SMSC (tests/peers/smsc-sim.js, quiet), a warm-up, then N one-part SMS (default 5,000) from as many concurrent
callers as the window has slots, each asking for a receipt. The table is printed and appended to
docs/benchmarks.md, whose section "How the benchmarks measure" says how each figure is taken. Exit status: 0
when every run completed (every submit returned an id and every receipt came), 1 otherwise, 2 without node
or the npm packages.

Run: ``.venv/bin/python bench/smpp.py [--messages 5000] [--windows 10,50] [--no-record]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # mmsgate, from this checkout

from support.cpu import pid_cpu  # noqa: E402
from support.results import (  # noqa: E402
    append_section,
    appended,
    command_line,
    dated,
    machine_note,
    percentile,
    table,
)
from support.script import PEERS, node_version, node_with, run_event_loop  # noqa: E402

from mmsgate.carriers.base import InboundSms, Sms  # noqa: E402
from mmsgate.carriers.smpp.connector import SmppConnector, SmppTiming  # noqa: E402
from mmsgate.carriers.smpp.settings import SmppConnection  # noqa: E402
from mmsgate.core.records import SmsReceipt  # noqa: E402

SCRIPT = PEERS / "smsc-sim.js"
SYSTEM_ID = "bench"
PASSWORD = "bench"
TEXT = "Your order 4711 has shipped and arrives Thursday. Track it at https://example.com/t/4711"


@dataclass
class Row:
    window: int
    messages: int
    submit_seconds: float = 0.0
    receipt_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    receipts: int = 0
    failures: list[str] = field(default_factory=list)
    own_cpu: float = 0.0
    peer_cpu: float = 0.0

    @property
    def submits_per_second(self) -> float:
        return self.messages / self.submit_seconds if self.submit_seconds else 0.0

    @property
    def receipts_per_second(self) -> float:
        return self.receipts / self.receipt_seconds if self.receipt_seconds else 0.0

    @property
    def complete(self) -> bool:
        return not self.failures and self.receipts == self.messages


class Counter:
    """The sink: counts receipts, notes when the last one expected came."""

    def __init__(self) -> None:
        self.count = 0
        self.expected = 0
        self.done = asyncio.Event()
        self.last = 0.0

    async def sms_receipt(self, receipt: SmsReceipt) -> None:
        self.count += 1
        self.last = time.perf_counter()
        if self.count >= self.expected:
            self.done.set()

    async def sms_inbound(self, message: InboundSms) -> None:
        pass

    def expect(self, count: int) -> None:
        self.count, self.expected, self.last = 0, count, 0.0
        self.done.clear()


class Peer:
    """The SMSC peer in its own process group; its stdout is drained (quiet mode prints little)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> Peer:
        env = {**os.environ, "SMSC_PORT": "0", "SMSC_SYSTEM_ID": SYSTEM_ID, "SMSC_PASSWORD": PASSWORD}
        env["SMSC_QUIET"] = "1"
        self.proc = await asyncio.create_subprocess_exec(
            self.node,
            str(SCRIPT),
            cwd=PEERS,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        first = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 20))
        self.port = int(first["port"])
        self._drain = asyncio.create_task(self._draining())
        return self

    async def _draining(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while await self.proc.stdout.readline():
            pass

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return pid_cpu(self.proc.pid)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()


async def submit_all(connector: SmppConnector, count: int, callers: int, row: Row) -> list[float]:
    """Submit ``count`` SMS from ``callers`` concurrent callers; the latency of each, in ms."""
    latencies: list[float] = []
    indexes = iter(range(count))

    async def caller() -> None:
        for index in indexes:
            began = time.perf_counter()
            try:
                result = await connector.submit(Sms(f"bench-{index}", "MMSGate", "15551230000", TEXT))
            except Exception as exc:
                row.failures.append(repr(exc))
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            if len(result.message_ids) != 1:
                row.failures.append(f"{len(result.message_ids)} ids for a one-part SMS")

    await asyncio.gather(*(caller() for _ in range(callers)))
    return latencies


async def run_window(peer: Peer, window: int, messages: int, warmup: int) -> Row:
    row = Row(window, messages)
    sink = Counter()
    settings = SmppConnection(host="127.0.0.1", port=peer.port, system_id=SYSTEM_ID, password=PASSWORD, window=window)
    connector = SmppConnector(f"bench-w{window}", settings, timing=SmppTiming(response_timeout=30.0))
    await asyncio.wait_for(connector.start(sink), 20)
    try:
        for count, record in ((warmup, False), (messages, True)):
            sink.expect(count)
            own_before, peer_before = time.process_time(), peer.cpu_seconds()
            start = time.perf_counter()
            latencies = await submit_all(connector, count, window, row)
            submitted = time.perf_counter()
            try:
                await asyncio.wait_for(sink.done.wait(), 60)
            except TimeoutError:
                row.failures.append(f"{sink.count} of {count} receipts within 60 s")
            if record:
                row.submit_seconds = submitted - start
                row.receipt_seconds = (sink.last or time.perf_counter()) - start
                row.latencies_ms = latencies
                row.receipts = sink.count
                row.own_cpu = time.process_time() - own_before
                row.peer_cpu = peer.cpu_seconds() - peer_before
    finally:
        await connector.aclose()
    return row


def results_table(rows: Sequence[Row]) -> str:
    columns = [
        "window",
        "SMS (1 segment each)",
        "submits/s",
        "receipts/s",
        "submit p50 / p99",
        "CPU per SMS: connector / peer",
        "complete",
    ]
    cells = []
    for row in rows:
        p50, p99 = percentile(row.latencies_ms, 50), percentile(row.latencies_ms, 99)
        own = row.own_cpu / row.messages * 1e6
        peer = row.peer_cpu / row.messages * 1e6
        done = "yes" if row.complete else f"NO: {(row.failures or ['receipts missing'])[0][:120]}"
        rates = [f"{row.submits_per_second:,.0f}", f"{row.receipts_per_second:,.0f}"]
        cpu = f"{own:.0f} / {peer:.0f} µs"
        cells.append([f"{row.window}", f"{row.messages:,}", *rates, f"{p50:.2f} / {p99:.2f} ms", cpu, done])
    return table(columns, "rrrrrrl", cells)


def append_results(command: str, rows: Sequence[Row], node_version: str, args: argparse.Namespace) -> None:
    peer = f"node {node_version.lstrip('v')}, tests/peers/smsc-sim.js quiet"
    section = [
        "",
        "## SMPP connector (`bench/smpp.py`)",
        "",
        dated(command),
        "",
        machine_note(f"the connector (this process, uvloop) and the SMSC peer ({peer})"),
        "",
        results_table(rows),
        "",
        f"- One transceiver bind per row; {args.warmup} warm-up SMS first; as many concurrent callers as the window"
        " has slots. submits/s: SMS / time to the last submit's answer; receipts/s: receipts / time from the first"
        " submit to the last receipt (the peer sends each receipt as soon as it answered the submit).",
    ]
    append_section(section)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SMPP benchmark: submits/s over one bind (see the module docstring).")
    parser.add_argument("--messages", type=int, default=5000, help="SMS per window (default 5000)")
    parser.add_argument("--windows", default="10,50", help="comma-separated windows to measure (default 10,50)")
    parser.add_argument("--warmup", type=int, default=500, help="warm-up SMS per window (default 500)")
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    args = parser.parse_args(argv)
    try:
        args.window_list = [int(w) for w in args.windows.split(",") if w.strip()]
    except ValueError:
        parser.error("--windows takes comma-separated integers")
    if args.messages < 1 or args.warmup < 0 or not args.window_list or min(args.window_list) < 1:
        parser.error("--messages and each window must be positive, --warmup not negative")
    return args


async def run(args: argparse.Namespace, node: str) -> list[Row]:
    rows = []
    for window in args.window_list:
        peer = await Peer(node).start()
        try:
            print(f"== window {window}: {args.messages:,} SMS", flush=True)
            rows.append(await run_window(peer, window, args.messages, args.warmup))
        finally:
            await peer.stop()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    node = node_with(["smpp"])
    if node is None:
        print(f"needs node and the npm packages of {PEERS} (npm ci there)", file=sys.stderr)
        return 2
    node_at = node_version(node)
    command = command_line("bench/smpp.py", argv)
    rows = run_event_loop(run(args, node))
    print()
    print(results_table(rows))
    if not args.no_record:
        append_results(command, rows, node_at, args)
        print(appended())
    return 0 if all(row.complete for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
