"""Fault bench: messages under load while API and worker processes are SIGKILLed and PostgreSQL restarts.

A run starts a PostgreSQL cluster of its own (bench/chaos_cluster.py), 2 ``mmsgate api`` processes on their
own ports and 2 ``mmsgate worker`` processes (each with its own data dir) on it, with the sandbox carrier and
an account whose postbacks go to a receiver that fails a share of them (bench/chaos_peers.py). The load
(bench/chaos_peers.py ``load``) sends N ``sendmms`` at a steady rate over both API ports: to a handset that
delivers at once (its report races its submit's record), to one that rejects, and to one that takes no MMS
(the message falls back to SMS); a share with an image from a media origin on loopback. Under load, every
2-8 s (random, ``--seed``) one of the four processes is SIGKILLed and started again at once, and PostgreSQL is
restarted twice (``-m immediate`` and ``-m fast``). Then the chaos stops, and the bench waits for every message
to reach a final state and every postback to arrive, and checks the issue's acceptance (see chaos_report.py
and the section "Chaos" of docs/benchmarks.md). Exit status: 0 on PASS, 1 on FAIL.

Run: ``.venv/bin/python bench/chaos.py [--seed 1] [--messages 6000] [--rate 40] [--keep-logs] [--no-record]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaos_cluster import Cluster, Fleet, LeaseWatch
from chaos_report import (
    FINAL_STATES,
    STRANDED_AFTER,
    Run,
    append_record,
    check_store,
    count_in_logs,
    print_figures,
    query,
    tell_stranded,
    verdict_reasons,
)
from support.bodies import MediaOrigin
from support.gateway import (
    LISTENING,
    WORKER_RUNNING,
    Credentials,
    child_env,
    free_port,
    mmsgate_argv,
    provision,
    run_cli,
)
from support.processes import BenchError, Processes, tail, wait_line
from support.results import appended, command_line, verdict
from support.script import interrupt_on_sigterm

EARLY_REPORT = re.compile(r"(report|receipt) .*? for (\S+) came before its (?:submit|SMS) was recorded")
"""What a worker logs (at INFO) of a delivery report (``report``) or an SMS receipt (``receipt``) that came
before its submit's record, and kept until that record exists; counted by kind, distinct ids."""
PEERS = Path(__file__).resolve().with_name("chaos_peers.py")
HANDSETS = (  # number, sandbox behaviour, share of the messages, the final state it should end in
    ("15550100001", "delivers", 0.70, "delivered"),
    ("15550100002", "rejects", 0.15, "rejected"),
    ("15550100003", "no-mms", 0.15, "sms-delivered"),
)
KILL_EVERY = (2.0, 8.0)
"""Seconds between two kills, drawn at random from this range."""
POSTBACK_GRACE = 30.0
"""Seconds after the drain the bench still waits for postbacks (a receiver's refusals are retried)."""
GATEWAY_SETTINGS = {
    "MMSGATE_MEDIA_ALLOW_NETWORKS": "127.0.0.0/8",  # the media origin is on loopback
    "MMSGATE_POSTBACK_ALLOW_NETWORKS": "127.0.0.0/8",  # so is the postback receiver
    "MMSGATE_LOG_LEVEL": "INFO",  # the early-report and reconcile lines are counted in the workers' logs
    "MMSGATE_MEDIA_PROCESSES": "1",
    "MMSGATE_POSTBACK_TIMEOUT": "2",  # the receiver holds some requests open for longer
    "MMSGATE_POSTBACK_RETRY_INTERVAL": "2",  # a refused postback is retried within the run
}


# ---------------------------------------------------------------------------------------------
# set-up


def message_bodies(args: argparse.Namespace, creds: Credentials, image_url: str) -> tuple[list[str], dict[str, str]]:
    """The load's sendmms bodies (compact JSON, one a line) and, by client reference in the same order, the
    final state each should reach (its handset's)."""
    rng = random.Random(args.seed)
    expiry = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    weights = [h[2] for h in HANDSETS]
    bodies, expected = [], {}
    for i in range(args.messages):
        to, _, _, final = rng.choices(HANDSETS, weights)[0]
        reference = f"chaos-{args.seed}-{i:05d}"
        slide: dict[str, Any] = {"message-text": f"Chaos bench message {i}: your parcel is on its way."}
        if rng.random() < args.image_share:
            slide["image"] = {"url": f"{image_url}?v={i % 40}"}
        data = {
            "action": "sendmms",
            "service-id": creds.service_id,
            "to": to,
            "from": creds.sender,
            "message-subject": "Your order has shipped",
            "fallback-sms-text": "Your order has shipped: see the photo of your parcel at the link below.",
            "fallback-sms-link-expiration": expiry,
            "client-reference": reference,
            "slide": [slide],
        }
        bodies.append(json.dumps(data, separators=(",", ":")))
        expected[reference] = final
    return bodies, expected


def start_fleet(procs: Processes, home: Path, url: str) -> tuple[Fleet, list[int]]:
    """2 API processes on fixed ports and 2 workers, each with its own data dir, started and waited for."""
    fleet = Fleet(procs, home)
    env = child_env(GATEWAY_SETTINGS)
    ports = [free_port(), free_port()]
    for n, port in enumerate(ports, 1):
        data = str(home / f"api{n}-data")
        fleet.add(f"api{n}", mmsgate_argv("api", "--port", str(port), "--database", url, "--data-dir", data), env)
    for n in (1, 2):
        data = str(home / f"worker{n}-data")
        fleet.add(f"worker{n}", mmsgate_argv("worker", "--database", url, "--data-dir", data), env)
    for slot in fleet.slots:
        fleet.start(slot)
    for slot in fleet.slots:
        assert slot.proc is not None
        pattern = WORKER_RUNNING if slot.is_worker else LISTENING
        wait_line(slot.proc, slot.log, pattern, 60, who=slot.name)
    return fleet, ports


def start_receiver(procs: Processes, work: Path, args: argparse.Namespace) -> str:
    log = work / "receiver.log"
    argv = [sys.executable, str(PEERS), "receiver", "--seed", str(args.seed)]
    argv += ["--fail", f"{args.postback_fail:g}", "--hold", f"{args.postback_hold:g}"]
    proc = procs.start(argv, log=log, cwd=work, env=child_env())
    match = wait_line(proc, log, LISTENING, 30, who="the postback receiver")
    return match.group(1).rstrip("/")


# ---------------------------------------------------------------------------------------------
# the chaos under load


def restart_postgres(cluster: Cluster, mode: str, run: Run) -> None:
    try:
        took = cluster.restart(mode)
        print(f"   PostgreSQL restarted (-m {mode}) in {took:.1f} s", flush=True)
    except Exception as exc:  # the run goes on; the verdict says the restart did not happen
        run.notes.append(f"PostgreSQL restart -m {mode} failed: {exc}")
        print(f"   PostgreSQL restart -m {mode} failed: {exc}", flush=True)


def under_load(
    args: argparse.Namespace, procs: Processes, fleet: Fleet, cluster: Cluster, watch: LeaseWatch, load_argv: list[str]
) -> tuple[dict[str, Any], Run]:
    """Run the load while killing processes and restarting PostgreSQL; the load's result."""
    rng = random.Random(args.seed + 1)
    run = Run()
    out = Path(load_argv[load_argv.index("--out") + 1])
    log = out.with_suffix(".log")
    load = procs.start(load_argv, log=log, cwd=out.parent, env=child_env())
    started = time.time()
    planned = args.messages / args.rate
    modes = ["immediate", "fast"]
    rng.shuffle(modes)
    restarts = [
        (started + planned * rng.uniform(0.2, 0.45), modes[0]),
        (started + planned * rng.uniform(0.55, 0.8), modes[1]),
    ]
    restarting: threading.Thread | None = None
    next_kill = started + rng.uniform(*KILL_EVERY)
    limit = started + planned + 300
    while load.poll() is None:
        now = time.time()
        if now > limit:
            raise BenchError(f"the load did not finish within {planned + 300:.0f} s:\n{tail(log)}")
        note_exits(fleet, watch)
        if now >= next_kill:
            live = fleet.live()
            if live:
                slot = rng.choice(live)
                pid, died = fleet.kill(slot)
                run.kills.append((slot.name, died))
                if slot.is_worker:
                    watch.died(slot.name, pid, died)
            next_kill = now + rng.uniform(*KILL_EVERY)
        if restarts and now >= restarts[0][0] and (restarting is None or not restarting.is_alive()):
            _, mode = restarts.pop(0)
            restarting = threading.Thread(target=restart_postgres, args=(cluster, mode, run), daemon=True)
            restarting.start()
        time.sleep(0.05)
    if restarting is not None:
        restarting.join()
    for _, mode in restarts:  # the load ended before its planned moment: restart now, noted
        run.notes.append(f"PostgreSQL restart -m {mode} came after the load's end")
        restart_postgres(cluster, mode, run)
    if load in procs.running:
        procs.running.remove(load)
    if load.returncode != 0 or not out.exists():
        raise BenchError(f"the load generator exited with {load.returncode}:\n{tail(log)}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result, run


def note_exits(fleet: Fleet, watch: LeaseWatch) -> None:
    """Say which processes exited on their own; what a dead worker held is watched as after a kill."""
    for exit_ in fleet.check():
        print(f"   {exit_.slot} (pid {exit_.pid}) exited on its own with {exit_.code}", flush=True)
        if exit_.slot.startswith("worker"):
            watch.died(exit_.slot, exit_.pid, exit_.at)


def drain(args: argparse.Namespace, fleet: Fleet, watch: LeaseWatch, url: str, load_end: float, run: Run) -> None:
    """Wait until every message is final (or ``--drain-seconds`` after the load's end). Stranded: a message
    not final by ``STRANDED_AFTER`` s after the load's end, by the time of its final state's record
    (``updated_at``) or not final at all."""
    final = ", ".join(f"'{s}'" for s in FINAL_STATES)
    deadline = load_end + max(args.drain_seconds, STRANDED_AFTER)
    while True:
        note_exits(fleet, watch)
        left = query(url, f"SELECT count(*) FROM messages WHERE state NOT IN ({final})")
        if (left is not None and left[0][0] == 0) or time.time() >= deadline:
            break
        time.sleep(1.0)
    cutoff = load_end + STRANDED_AFTER
    found = query(
        url,
        f"SELECT tracking_id, state, updated_at FROM messages WHERE state NOT IN ({final}) OR updated_at > %s "
        "ORDER BY updated_at",
        (cutoff,),
    )
    if found is None:
        raise BenchError("PostgreSQL did not answer after the load")
    run.stranded = [(str(t), str(s)) for t, s, _ in found]
    tell_stranded(run, url, run.load_started)
    if not any(str(s) not in FINAL_STATES for _, s, _ in found):
        last = query(url, "SELECT max(updated_at) FROM messages")
        run.drained_after = float(last[0][0]) - load_end if last and last[0][0] is not None else None


# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fault bench: kills and database restarts under load.")
    parser.add_argument("--seed", type=int, default=1, help="seed of the messages, kills and restarts (default 1)")
    parser.add_argument("--messages", type=int, default=6000, help="sendmms requests of the load (default 6000)")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second of the load (default 40)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections of the load (default 16)")
    parser.add_argument("--image-share", type=float, default=0.3, help="share of messages with an image (default 0.3)")
    parser.add_argument("--postback-fail", type=float, default=0.10, help="share of postbacks answered 500 (0.10)")
    parser.add_argument("--postback-hold", type=float, default=0.02, help="share of postbacks held open (0.02)")
    parser.add_argument(
        "--drain-seconds", type=float, default=90.0, help="longest wait for the drain after the load (default 90)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs and print where")
    parser.add_argument("--no-record", action="store_true", help="do not append the results to docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.rate <= 0 or args.connections < 1:
        parser.error("--messages, --rate and --connections must be positive")
    if not 0 <= args.image_share <= 1 or not 0 <= args.postback_fail + args.postback_hold < 1:
        parser.error("--image-share must be within 0-1, --postback-fail + --postback-hold below 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    command = command_line("bench/chaos.py", argv)
    procs = Processes()
    work = Path(tempfile.mkdtemp(prefix="mmsgate-chaos-"))
    os.chmod(work, 0o755)  # the cluster's folder inside belongs to the postgres user
    cluster = Cluster(work / "pg")
    fleet: Fleet | None = None
    watch: LeaseWatch | None = None
    reasons: list[str] = []
    try:
        print(f"== PostgreSQL cluster of the run's own in {cluster.root}", flush=True)
        cluster.init()
        cluster.start()
        url = cluster.create_database("mmsgate")
        with MediaOrigin() as origin:
            receiver = start_receiver(procs, work, args)
            _, creds = provision(url, work / "cli-data", work, f"{receiver}/postbacks")
            for number, behaviour, _, _ in HANDSETS:
                handset = ["sandbox", "handset", number, "--behaviour", behaviour, "--delay", "0"]
                run_cli([*handset, "--database", url, "--data-dir", str(work / "cli-data"), "--json"], work)
            fleet, ports = start_fleet(procs, work, url)
            bodies, expected = message_bodies(args, creds, origin.url)
            (work / "bodies.jsonl").write_text("\n".join(bodies) + "\n")
            load_argv = [sys.executable, str(PEERS), "load", "--ports", ",".join(map(str, ports))]
            load_argv += ["--bodies", str(work / "bodies.jsonl"), "--api-key", creds.api_key]
            load_argv += ["--connections", str(args.connections), "--rate", f"{args.rate:g}"]
            load_argv += ["--out", str(work / "load.json")]
            watch = LeaseWatch(url)
            watch.start()
            print(
                f"== load: {args.messages} sendmms at {args.rate:g}/s over {args.connections} connections to 2 API "
                f"processes; a kill every {KILL_EVERY[0]:g}-{KILL_EVERY[1]:g} s; 2 PostgreSQL restarts",
                flush=True,
            )
            result, run = under_load(args, procs, fleet, cluster, watch, load_argv)
            records = result["records"]
            load_end = max((float(r[1]) for r in records if r[1]), default=time.time())
            run.load_started = float(result["started"])
            run.load_seconds = load_end - run.load_started
            run.restarts = list(cluster.restarts)
            print(f"== load done in {run.load_seconds:.0f} s, {len(run.kills)} kills; waiting for the drain")
            drain(args, fleet, watch, url, load_end, run)
            check_store(run, url, records, expected, receiver, load_end + args.drain_seconds + POSTBACK_GRACE)
            run.deaths = watch.finish()
            run.exits = list(fleet.exits)
            run.early_reports, run.reconciled, run.problems = count_in_logs(fleet, EARLY_REPORT)
            reasons = verdict_reasons(run, args)
            print_figures(run, args)
            print(f"\nverdict: {verdict(reasons)}")
            if not args.no_record:
                append_record(command, run, args, verdict(reasons))
                print(appended())
    except KeyboardInterrupt:
        print("interrupted; stopping every process started", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"the run did not complete: {exc}", file=sys.stderr)
        return 1
    finally:
        if watch is not None and watch.is_alive():
            watch.done.set()
        if fleet is not None:
            fleet.stop()
        procs.stop_all()
        cluster.stop()
        shutil.rmtree(cluster.data, ignore_errors=True)
        if args.keep_logs:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if reasons else 0


if __name__ == "__main__":
    sys.exit(main())
