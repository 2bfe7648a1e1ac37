"""MM7 across real processes: `mmsgate api` and two `mmsgate worker`s on one PostgreSQL, an MM7 connection
added with `mmsgate mm7 add`, and the MMSC peer (tests/peers/mmsc-sim.js) taking the submits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import Processes, cli_json
from tests.acceptance.test_delivery_processes import pg_env, provision, send_many, text_mms
from tests.mmsc import Mmsc


@pytest.fixture
async def mmsc() -> AsyncIterator[Mmsc]:
    peer = await Mmsc({"MMSC_USERNAME": "acme", "MMSC_PASSWORD": "pw"}).start()
    yield peer
    await peer.stop()


@pytest.mark.postgres
async def test_an_mm7_connections_limit_holds_across_two_workers(
    tmp_path: Path, pg_url: str, processes: Processes, mmsc: Mmsc
) -> None:
    limit, count = 10, 60
    env = pg_env(tmp_path, pg_url, MMSGATE_CONNECTION_REFRESH_SECONDS="0.5")
    added = await cli_json(
        "mm7", "add", "carrier", "--url", f"{mmsc.url}/mm7", "--vasp-id", "acme", "--vas-id", "28444mms",
        "--username", "acme", "--password", "pw", "--tps", str(limit), "--inbound-username", "mmsc",
        "--inbound-password", "in-pw", cwd=tmp_path, env=env,
    )  # fmt: skip
    shown = added["connection"]
    assert (shown["tps"], shown["inbound_username"]) == (limit, "mmsc")
    assert "password" not in shown and "inbound_password_hash" not in shown
    listed = await cli_json("mm7", "list", cwd=tmp_path, env=env)
    assert [c["name"] for c in listed["connections"]] == ["carrier"]
    api = await processes.api(env)
    workers = [await processes.worker(env), await processes.worker(env)]
    key, sid, sender, _ = await provision(tmp_path, env, None)

    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        accepted = await send_many(http, key, [text_mms(sid, sender) for _ in range(count)])
    assert len(set(accepted)) == count

    submits = await mmsc.gather("submit", count, within=60, status=1000)
    assert all(s["ok"] for s in submits), [s["problems"] for s in submits if not s["ok"]]
    assert sorted(s["transactionId"] for s in submits) == sorted(accepted)  # each once, none twice
    times = sorted(s["t"] / 1000 for s in submits)
    busiest = max(sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times))
    assert busiest <= limit, f"{busiest} submits within one second; the connection's limit is {limit}"
    took = times[-1] - times[0]
    assert took >= count / limit - 1, f"{count} submits took only {took:.2f} s: the limit did not shape them"
    assert all(w.proc is not None and w.proc.returncode is None for w in workers), "a worker died"
