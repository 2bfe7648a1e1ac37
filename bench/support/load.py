"""The load: wrk with a Lua script that counts answers that are not a success, and the raw load generator.

wrk (bench/accept.py) POSTs one body at full speed on keep-alive connections and reports its latency
percentiles; ``run_wrk`` also measures the cores wrk itself used. The raw load generator
(bench/pipeline_load.py ``load``, its own process) writes a precomputed HTTP request on K keep-alive
connections, as fast as they allow or paced, and notes each request's send and answer times and the
tracking id it got back.
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from support.gateway import child_env
from support.processes import BenchError, Processes, tail

LOAD_SCRIPT = Path(__file__).resolve().parents[1] / "pipeline_load.py"


# ---------------------------------------------------------------------------------------------
# wrk


def lua_long_string(value: str) -> str:
    for level in range(1, 10):
        close = "]" + "=" * level + "]"
        if close not in value:
            return "[" + "=" * level + "[" + value + close
    raise ValueError("cannot quote this value as a Lua long string")


def wrk_script(body: bytes, api_key: str) -> str:
    return f"""-- written by bench/accept.py
wrk.method = "POST"
wrk.body = {lua_long_string(body.decode())}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = {lua_long_string(api_key)}

local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

failures = 0
sample = ""

function response(status, headers, body)
  if not string.find(body, '"status":"success"', 1, true) then
    failures = failures + 1
    if sample == "" then
      sample = tostring(status) .. " " .. string.sub(body, 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local total, first = 0, ""
  for _, t in ipairs(threads) do
    total = total + (t:get("failures") or 0)
    local s = t:get("sample")
    if first == "" and s ~= nil then first = s end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d failures=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, total, e.connect, e.read, e.write, e.status, e.timeout))
  if first ~= "" then
    io.write("BENCH-SAMPLE " .. (string.gsub(first, "[\\r\\n]", " ")) .. "\\n")
  end
end
"""


def sanity_check(base: str, body: bytes, api_key: str) -> str:
    """POST the benchmark body once; the answer's text, or BenchError if it is not a success."""
    request = urllib.request.Request(
        f"{base}/ep/v2/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "x-api-key": api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        text: str = answer.read().decode("utf-8", "replace")
    if '"status":"success"' not in text:
        raise BenchError(f"the benchmark request is not accepted: {text}")
    return text


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    socket_errors: int
    sample: str
    wrk_cpu: float  # cores used by wrk during the run

    @property
    def errors(self) -> int:
        return self.failures + self.socket_errors


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _latency_ms(output: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
    if not match:
        raise BenchError(f"no {percentile}% latency in wrk's output:\n{output}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str, wrk_cpu: float) -> WrkResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    bench = re.search(
        r"^BENCH requests=(\d+) failures=(\d+) connect=(\d+) read=(\d+) write=(\d+) status=(\d+) timeout=(\d+)",
        output,
        re.MULTILINE,
    )
    if not rps or not bench:
        raise BenchError(f"cannot parse wrk's output:\n{output}")
    sample = re.search(r"^BENCH-SAMPLE (.*)$", output, re.MULTILINE)
    connect, read, write, timeout = (int(bench.group(i)) for i in (3, 4, 5, 7))
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_latency_ms(output, "50"),
        p99_ms=_latency_ms(output, "99"),
        requests=int(bench.group(1)),
        failures=int(bench.group(2)),
        socket_errors=connect + read + write + timeout,
        sample=sample.group(1) if sample else "",
        wrk_cpu=wrk_cpu,
    )


def run_wrk(
    procs: Processes, wrk: str, url: str, script: Path, *, duration: float, connections: int, threads: int
) -> tuple[str, float]:
    """wrk's output and the cores it used (from the reaped child's rusage)."""
    argv = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out_path = script.with_suffix(".out")
    started = time.monotonic()
    proc = procs.start(argv, log=out_path, cwd=script.parent, env=dict(os.environ))
    try:
        proc.wait(timeout=duration + 60)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish:\n{tail(out_path)}") from exc
    finally:
        procs.stop(proc, grace=2)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = out_path.read_text(errors="replace")
    out_path.unlink()
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}:\n{output}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return output, cpu / elapsed if elapsed > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# the raw load generator (its own process)


@dataclass
class Load:
    """What the load generator saw: per request (sent, answered, tracking id, error)."""

    started: float
    records: list[tuple[float, float, str, str]]

    @property
    def tracking_ids(self) -> list[str]:
        return [r[2] for r in self.records if r[2]]

    @property
    def failures(self) -> list[str]:
        return [r[3] for r in self.records if not r[2]]

    @property
    def last_answer(self) -> float:
        return max(r[1] for r in self.records)

    def answer_ms(self) -> list[float]:
        return [(r[1] - r[0]) * 1000 for r in self.records if r[2]]


def run_load(
    procs: Processes,
    port: str,
    request: Path,
    *,
    count: int,
    connections: int,
    rate: float = 0.0,
    pids: list[int] | None = None,
) -> Load:
    out = request.with_name(f"load-{secrets.token_hex(3)}.json")
    log = out.with_suffix(".log")
    argv = [sys.executable, str(LOAD_SCRIPT), "load", "--port", port, "--request", str(request)]
    argv += ["--count", str(count), "--connections", str(connections), "--rate", f"{rate:g}", "--out", str(out)]
    proc = procs.start(argv, log=log, cwd=request.parent, env=child_env())
    if pids is not None:
        pids.append(proc.pid)
    limit = (count / rate if rate > 0 else 0.0) + 300.0
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator did not finish within {limit:.0f} s:\n{tail(log)}") from exc
    finally:
        procs.stop(proc, grace=2)
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"the load generator exited with {proc.returncode}:\n{tail(log)}")
    data = json.loads(out.read_text())
    return Load(float(data["started"]), [(float(a), float(b), str(c), str(d)) for a, b, c, d in data["records"]])
