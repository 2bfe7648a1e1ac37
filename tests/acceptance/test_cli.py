"""Admin commands, run as a user would, while `mmsgate serve` runs on the same data directory."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import lxml.html

from tests.acceptance.conftest import cli_json, mmsgate_env, run_cli


async def _until_code(http: httpx.AsyncClient, key: str, body: dict[str, Any], code: str) -> dict[str, Any]:
    """Send until the answer carries `code` (keys and accounts are cached for up to a second)."""
    deadline = time.monotonic() + 15
    while True:
        answer: dict[str, Any] = (await http.post("/ep/v2/", json=body, headers={"x-api-key": key})).json()
        if answer.get("error-code") == code or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.1)


async def test_admin_commands_while_serving(tmp_path: Path, gateways: Callable[..., Any]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    gateway = await gateways(*data, cwd=tmp_path)

    created = await cli_json("account", "create", "acme", *data, cwd=tmp_path)
    assert set(created) == {"account_id", "api_key"}
    account = created["account_id"]
    campaign = await cli_json("campaign", "create", account, *data, cwd=tmp_path)
    assert set(campaign) == {"service_id"}
    sid = campaign["service_id"]
    added = await cli_json("number", "add", account, "+18885550123", "--campaign", sid, *data, cwd=tmp_path)
    assert added["number"]["kind"] == "toll-free" and added["number"]["number"] == "18885550123"
    assert (await cli_json("number", "list", account, *data, cwd=tmp_path))["numbers"][0]["service_id"] == sid
    await cli_json("block", "add", account, "15550100077", *data, cwd=tmp_path)
    assert (await cli_json("block", "list", account, *data, cwd=tmp_path)) == {"blocked": ["15550100077"]}
    key2 = await cli_json("key", "create", account, *data, cwd=tmp_path)
    assert set(key2) == {"key_id", "api_key"}
    listed = await cli_json("key", "list", account, *data, cwd=tmp_path)
    assert len(listed["keys"]) == 2 and all("hash" not in k for k in listed["keys"])
    settings = await cli_json(
        "account",
        "set",
        account,
        "--postback-url",
        "https://hooks.example/pb",
        "--postback-secret",
        "s3",
        "--transcoding",
        "off",
        *data,
        cwd=tmp_path,
    )
    assert settings["postback_url"] == "https://hooks.example/pb" and settings["transcoding"] is False
    assert settings["postback_secret"] != "s3"

    body = {
        "action": "sendmms",
        "service-id": sid,
        "to": "15550100001",
        "from": "18885550123",
        "fallback-sms-text": "fb",
        "slide": [{"message-text": "hi"}],
    }
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        ok = (await http.post("/ep/v2/", json=body, headers={"x-api-key": created["api_key"]})).json()
        assert ok["status"] == "success", ok
        blocked = await _until_code(http, created["api_key"], {**body, "to": "15550100077"}, "E114")
        assert blocked["error-code"] == "E114"

        await cli_json("key", "revoke", key2["key_id"], *data, cwd=tmp_path)
        assert (await _until_code(http, key2["api_key"], body, "E104"))["error-code"] == "E104"
        still = (await http.post("/ep/v2/", json=body, headers={"x-api-key": created["api_key"]})).json()
        assert still["status"] == "success"

        await cli_json("account", "set", account, "--disabled", "true", *data, cwd=tmp_path)
        assert (await _until_code(http, created["api_key"], body, "E103"))["error-code"] == "E103"
        await cli_json("account", "set", account, "--disabled", "false", *data, cwd=tmp_path)
        assert (await _until_code(http, created["api_key"], body, "NONE")).get("status") == "success"

    await cli_json("key", "remove", key2["key_id"], *data, cwd=tmp_path)
    assert len((await cli_json("key", "list", account, *data, cwd=tmp_path))["keys"]) == 1
    await cli_json("block", "remove", account, "15550100077", *data, cwd=tmp_path)
    await cli_json("number", "remove", "18885550123", *data, cwd=tmp_path)
    await cli_json("campaign", "remove", sid, *data, cwd=tmp_path)
    assert (await cli_json("campaign", "list", account, *data, cwd=tmp_path)) == {"campaigns": []}
    await cli_json("account", "delete", account, *data, cwd=tmp_path)
    accounts = await cli_json("account", "list", *data, cwd=tmp_path)
    assert account not in [a["id"] for a in accounts["accounts"]]


async def test_errors_are_explained(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    code, _, err = await run_cli("key", "create", "acc_nope", *data, cwd=tmp_path)
    assert code == 1 and "no account acc_nope" in err
    code, _, err = await run_cli("number", "add", "acc_nope", "12ab", *data, cwd=tmp_path)
    assert code == 2 and "not a number" in err


async def test_settings_from_environment(tmp_path: Path) -> None:
    env = mmsgate_env(MMSGATE_DATA_DIR=str(tmp_path / "envdata"))
    created = await cli_json("account", "create", "from-env", cwd=tmp_path, env=env)
    assert (tmp_path / "envdata" / "mmsgate.sqlite3").exists()
    listed = await cli_json("account", "list", cwd=tmp_path, env=env)
    assert [a["id"] for a in listed["accounts"]] == [created["account_id"]]


async def test_smpp_connections_are_added_listed_and_removed(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    added = await cli_json(
        "smpp", "add", "uk", "--host", "smsc.example.net", "--system-id", "acme", "--password", "s3cret",
        "--bind", "pair", "--tps", "50", "--route-prefix", "+44", "--route-prefix", "353", *data, cwd=tmp_path,
    )  # fmt: skip
    shown = added["connection"]
    assert shown == {
        "name": "uk",
        "host": "smsc.example.net",
        "port": 2775,
        "system_id": "acme",
        "system_type": "",
        "bind": "pair",
        "tps": 50,
        "window": 10,
        "route_prefixes": ["44", "353"],
    }
    assert (await cli_json("smpp", "list", *data, cwd=tmp_path))["connections"] == [shown]
    code, _, err = await run_cli(
        "smpp", "add", "uk", "--host", "h", "--system-id", "a", "--password", "p", *data, cwd=tmp_path
    )
    assert code == 1 and "exists already" in err
    code, _, err = await run_cli(
        "smpp", "add", "bad", "--host", "h", "--system-id", "a", "--password", "much-too-long", *data, cwd=tmp_path
    )
    assert code == 1 and "at most 8 characters" in err
    assert (await cli_json("smpp", "remove", "uk", *data, cwd=tmp_path)) == {"removed": "uk"}
    assert (await cli_json("smpp", "list", *data, cwd=tmp_path))["connections"] == []
    code, _, err = await run_cli("smpp", "remove", "uk", *data, cwd=tmp_path)
    assert code == 1 and "no smpp connection named 'uk'" in err


async def test_serve_prints_a_console_password_once_and_it_logs_in(
    tmp_path: Path, gateways: Callable[..., Any]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    gateway = await gateways(*data, cwd=tmp_path)
    printed = [line for line in gateway.output if "Console password" in line]
    assert len(printed) == 1
    password = printed[0].rsplit(": ", 1)[1].strip()
    assert len(password) >= 16
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        assert (await http.get("/console/messages")).status_code == 303
        form = await http.get("/console/login")
        token = lxml.html.fromstring(form.text).xpath("//input[@name='token']/@value")[0]
        wrong = await http.post("/console/login", data={"token": token, "password": password + "x"})
        assert wrong.status_code != 303
        form = await http.get("/console/login")
        token = lxml.html.fromstring(form.text).xpath("//input[@name='token']/@value")[0]
        answer = await http.post("/console/login", data={"token": token, "password": password})
        assert answer.status_code == 303
        page = await http.get("/console/messages")
        assert page.status_code == 200 and "Messages" in page.text
    await gateway.stop()
    again = await gateways(*data, cwd=tmp_path)  # a second start prints no password
    assert not [line for line in again.output if "Console password" in line]
    code, out, _ = await run_cli("console", "password", "--json", *data, cwd=tmp_path)
    assert code == 0 and len(json.loads(out)["password"]) >= 16
