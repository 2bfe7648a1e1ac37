from __future__ import annotations

import httpx

from tests.conftest import Caller


async def test_sendmms_accepted(client: httpx.AsyncClient, caller: Caller) -> None:
    r = await client.post("/ep/v2/", json=caller.body(), headers={"x-api-key": caller.api_key})
    assert r.status_code == 200
    assert r.json()["status"] == "success", r.json()
