"""`mmsgate send` and `mmsgate template save` against a real `mmsgate serve`, as a user types them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import mmsgate_env, run_cli


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
