"""`mmsgate serve` as a user runs it: the README's example, and SIGKILL in the middle of a load."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmsgate.store import Store
from mmsgate.store.postgres import PostgresStore
from mmsgate.store.sqlite import SqliteStore
from tests.acceptance.conftest import MMSGATE, mmsgate_env
from tests.store_support import message_ids
from tests.waiting import eventually

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The first shell block under "## Try it"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Try it", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README has no shell example under 'Try it'"
    return match.group(1)


def test_readme_starts_with_the_two_commands() -> None:
    lines = [line for line in README.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0] == "```sh"
    assert lines[1].startswith("make run ") and lines[2].startswith("make test ")
    assert lines[3] == "```"
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


async def test_readme_curl_example_succeeds(tmp_path: Path, gateways: Callable[..., Any]) -> None:
    gateway = await gateways("--data-dir", "mmsgate-data", cwd=tmp_path)
    assert "api_key" in "".join(gateway.output), "the first start prints the demo credentials"
    demo = json.loads((tmp_path / "mmsgate-data" / "demo.json").read_text())
    assert set(demo) == {"account_id", "api_key", "service_id", "from", "to"}
    # the README runs from the repository root, where make created .venv/bin/mmsgate
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "mmsgate").symlink_to(MMSGATE)
    script = readme_example().replace("http://127.0.0.1:8080", gateway.url)
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=tmp_path,
        env=mmsgate_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    answer = json.loads(out)
    assert answer["status"] == "success", answer
    assert answer["to"] == demo["to"]
    async with httpx.AsyncClient(base_url=gateway.url) as http:

        async def delivered() -> dict[str, Any] | None:
            status = await http.get(f"/v1/messages/{answer['tracking-id']}", headers={"x-api-key": demo["api_key"]})
            view: dict[str, Any] = status.json()
            return view if view["state"] == "delivered" else None

        # the demo recipient is a sandbox handset: the README's message travels all the way
        view = await eventually(delivered, what="the README's message to be delivered")
    assert [e["code"] for e in view["events"] if e["code"]] == ["N101", "N102"]


async def _load(
    url: str, demo: dict[str, str], accepted: list[str], enough: asyncio.Event, stop: asyncio.Event
) -> None:
    body = {
        "action": "sendmms",
        "service-id": demo["service_id"],
        "to": demo["to"],
        "from": demo["from"],
        "fallback-sms-text": "fallback",
        "slide": [{"message-text": "load", "image": {"url": "https://media.example.com/a.jpg"}}],
    }
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while not stop.is_set():
            try:
                r = await http.post("/ep/v2/", json=body, headers={"x-api-key": demo["api_key"]})
            except httpx.HTTPError:
                return  # the server died under us: whatever was not answered was not promised
            if r.json().get("status") == "success":
                accepted.append(r.json()["tracking-id"])
                if len(accepted) >= 500:
                    enough.set()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_sigkill_mid_load_loses_nothing_answered(
    tmp_path: Path, gateways: Callable[..., Any], backend: str, request: pytest.FixtureRequest
) -> None:
    args = ["--data-dir", str(tmp_path / "data")]
    if backend == "postgresql":
        args += ["--database", request.getfixturevalue("pg_url")]
    gateway = await gateways(*args, cwd=tmp_path)
    demo = json.loads((tmp_path / "data" / "demo.json").read_text())
    accepted: list[str] = []
    enough, stop = asyncio.Event(), asyncio.Event()
    clients = [asyncio.create_task(_load(gateway.url, demo, accepted, enough, stop)) for _ in range(32)]
    await asyncio.wait_for(enough.wait(), 60)
    await gateway.kill()  # mid-load: 32 clients have requests in flight
    stop.set()
    await asyncio.gather(*clients)

    restarted = await gateways(*args, cwd=tmp_path)
    assert restarted.url
    store: Store = (
        PostgresStore(request.getfixturevalue("pg_url"))
        if backend == "postgresql"
        else SqliteStore(tmp_path / "data" / "mmsgate.sqlite3")
    )
    await store.open()
    try:
        counts = await message_ids(store, accepted)
    finally:
        await store.close()
    missing = [t for t in accepted if t not in counts]
    assert not missing, f"{len(missing)} of {len(accepted)} answered messages were lost"
    assert set(counts.values()) == {1}
