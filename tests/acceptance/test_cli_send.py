"""`mmsgate send` and `mmsgate template save` against a real `mmsgate serve`, as a user types them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import MMSGATE, mmsgate_env, run_cli
from tests.integration.media_origin import Origin


async def _demo(tmp_path: Path, gateways: Callable[..., Any]) -> tuple[dict[str, str], dict[str, str]]:
    gateway = await gateways("--data-dir", "data", cwd=tmp_path)
    demo: dict[str, str] = json.loads((tmp_path / "data" / "demo.json").read_text())
    env = mmsgate_env(
        MMSGATE_API_KEY=demo["api_key"],
        MMSGATE_URL=gateway.url,
        MMSGATE_SERVICE_ID=demo["service_id"],
        MMSGATE_FROM=demo["from"],
    )
    return demo, env


def _codes(out: str) -> list[str]:
    """The event codes `--wait` printed, in order."""
    return [line.split()[1] for line in out.splitlines() if len(line.split()) > 1 and line.split()[1][:1] in "NE"]


async def test_send_wait_follows_a_delivered_message(tmp_path: Path, gateways: Callable[..., Any]) -> None:
    demo, env = await _demo(tmp_path, gateways)
    code, out, err = await run_cli(
        "send", "--to", demo["to"], "--subject", "Hello", "--text", "It works", "--wait", cwd=tmp_path, env=env
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith("accepted: tracking-id ")
    assert _codes(out) == ["N101", "N102"]


async def test_send_wait_to_a_rejecting_handset_exits_with_the_code(
    tmp_path: Path, gateways: Callable[..., Any]
) -> None:
    _, env = await _demo(tmp_path, gateways)
    handset = "15550100002"
    code, _, err = await run_cli(
        "sandbox", "handset", handset, "--behaviour", "rejects", "--data-dir", "data", cwd=tmp_path
    )
    assert code == 0, err
    code, out, err = await run_cli("send", "--to", handset, "--text", "hi", "--wait", cwd=tmp_path, env=env)
    assert code == 1
    assert _codes(out) == ["N101", "E102"]
    assert err.startswith("rejected: E102")


async def test_send_refuses_a_bad_request_with_its_code(tmp_path: Path, gateways: Callable[..., Any]) -> None:
    demo, env = await _demo(tmp_path, gateways)
    code, out, err = await run_cli("send", "--to", "12", "--text", "hi", cwd=tmp_path, env=env)
    assert (code, out) == (1, "")
    assert err.startswith("failure: E110")
    code, _, err = await run_cli(
        "send", "--to", demo["to"], "--text", "hi", cwd=tmp_path, env={**env, "MMSGATE_API_KEY": "nope"}
    )
    assert code == 1 and err.startswith("failure: E104")


async def test_template_save_then_send_it(tmp_path: Path, gateways: Callable[..., Any]) -> None:
    demo, env = await _demo(tmp_path, gateways)
    code, out, err = await run_cli(
        "template", "save", "--name", "promo", "--text", "Sale today", "--wait", "--json", cwd=tmp_path, env=env
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    mms_id = lines[0]["mms-id"]
    assert [line["event"]["code"] for line in lines[1:] if "event" in line] == [None, "N003"]  # processing, ready
    code, out, err = await run_cli(
        "send",
        "--to",
        demo["to"],
        "--template",
        mms_id,
        "--custom-text",
        "1=Sale ends tonight",
        "--wait",
        cwd=tmp_path,
        env=env,
    )
    assert code == 0, err
    assert _codes(out) == ["N101", "N102"]


async def test_send_wait_prints_each_failed_attempt_as_it_happens(tmp_path: Path, gateways: Callable[..., Any]) -> None:
    """The image's host is down: `--wait` prints each failed attempt while the gateway retries (3 attempts,
    1 s and 2 s apart here), then the E101 that says how many attempts were made, and exits 1."""
    gone = await Origin().start()
    url = gone.url("/down.jpg")
    await gone.close()
    server_env = mmsgate_env(
        MMSGATE_MEDIA_ALLOW_NETWORKS="127.0.0.0/8",
        MMSGATE_JOB_RETRY_BASE="1",
        MMSGATE_JOB_RETRY_CAP="2",
        MMSGATE_JOB_MAX_ATTEMPTS="3",
    )
    gateway = await gateways("--data-dir", "data", cwd=tmp_path, env=server_env)
    demo: dict[str, str] = json.loads((tmp_path / "data" / "demo.json").read_text())
    env = mmsgate_env(
        MMSGATE_API_KEY=demo["api_key"],
        MMSGATE_URL=gateway.url,
        MMSGATE_SERVICE_ID=demo["service_id"],
        MMSGATE_FROM=demo["from"],
    )
    proc = await asyncio.create_subprocess_exec(
        MMSGATE,
        *("send", "--to", demo["to"], "--text", "hi", "--image", url, "--wait"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        printed: list[str] = []
        while not any("Retrying: attempt 1 of 3 failed" in line for line in printed):
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, f"--wait ended without showing a failed attempt: {printed}"
            printed.append(line)
        assert proc.returncode is None  # shown while the message is still being retried
        rest, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out = "".join(printed) + rest.decode()
    retries = [line for line in out.splitlines() if "  Retrying: " in line]
    assert [line.split("Retrying: ")[1][:22] for line in retries] == [
        "attempt 1 of 3 failed:",
        "attempt 2 of 3 failed:",
    ]
    assert all(f"E351: slide 1 image: {url}: ConnectError" in line and "; next try at " in line for line in retries)
    assert _codes(out) == ["E101"]
    assert proc.returncode == 1
    assert err.decode().startswith(f"failed: E101 E351: slide 1 image: {url}: ")
    assert err.decode().rstrip().endswith("(after 3 attempts)")
