"""Delivery end to end across real processes: `mmsgate serve`, and `mmsgate api` with `mmsgate worker`s.

The same flows as ``tests/integration/test_delivery.py``, but every part of the gateway is a process started
the way an operator starts it: the admin and sandbox commands run beside the servers on the same data
directory (or PostgreSQL database), media come from a loopback origin and postbacks go to a loopback
receiver, both real HTTP servers on ports the kernel picks. The state a test cannot see from outside (how
often the sandbox carrier was called, what the outbox holds) is read from the store the processes share.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmsgate.config import load_settings
from mmsgate.core.codes import MessageState
from mmsgate.core.model import iso, utcnow
from mmsgate.core.records import SandboxSubmission
from mmsgate.store import Store, create_store
from tests import media_samples as samples
from tests.acceptance.conftest import Processes, cli_json, mmsgate_env
from tests.integration.media_origin import Origin, file_reply
from tests.receiver import Received, Receiver
from tests.store_support import message_ids
from tests.waiting import eventually

API = "/ep/v2/"
LOOPBACK = "127.0.0.0/8"
HANDSET = "15550100001"


def delivery_env(**extra: str) -> dict[str, str]:
    """Media and postbacks may use loopback (the origin and the receiver); failed postbacks retry quickly."""
    return mmsgate_env(
        MMSGATE_MEDIA_ALLOW_NETWORKS=LOOPBACK,
        MMSGATE_POSTBACK_ALLOW_NETWORKS=LOOPBACK,
        MMSGATE_POSTBACK_RETRY_INTERVAL="0.5",
        MMSGATE_MEDIA_PROCESSES="1",
        **extra,
    )


@contextlib.asynccontextmanager
async def shared_store(data_dir: Path, database: str | None = None) -> AsyncIterator[Store]:
    """The store the gateway's processes use, opened from the test (already migrated by them)."""
    store = create_store(load_settings(data_dir=data_dir, database=database))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def send(http: httpx.AsyncClient, api_key: str, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = (await http.post(API, json=body, headers={"x-api-key": api_key})).json()
    assert answer.get("status") == "success", answer
    return answer


def text_mms(service_id: str, sender: str, to: str = HANDSET, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid text-only sendmms body, with ``extra`` fields added or replaced."""
    return {
        "action": "sendmms",
        "service-id": service_id,
        "to": to,
        "from": sender,
        "fallback-sms-text": "fallback",
        "slide": [{"message-text": "hello"}],
        **(extra or {}),
    }


def about(tracking_id: str, received: Iterable[Received]) -> list[Received]:
    return [r for r in received if r.json.get("tracking-id") == tracking_id]


async def postbacks(receiver: Receiver, tracking_id: str, codes: list[str], within: float = 30.0) -> list[Received]:
    """Wait until the postbacks of ``tracking_id`` carry exactly ``codes`` (in order)."""
    await receiver.wait_for(lambda received: len(about(tracking_id, received)) >= len(codes), within)
    found = about(tracking_id, receiver.received)
    assert [r.json["code"] for r in found] == codes, [r.json for r in found]
    return found


async def outbox_delivered(store: Store, subject_id: str) -> list[tuple[str, str, str, int]]:
    """The subject's postbacks once the outbox records every one of them delivered."""

    async def probe() -> list[tuple[str, str, str, int]] | None:
        rows = await store.messages.list_postbacks(subject_id)
        return rows if rows and all(state == "delivered" for _, _, state, _ in rows) else None

    return await eventually(probe, within=20, what=f"the postbacks of {subject_id} to be recorded delivered")


# ------------------------------------------------------------------------------------------------------
# one `mmsgate serve` (SQLite)


async def test_serve_end_to_end(tmp_path: Path, processes: Processes, receiver: Receiver, origin: Origin) -> None:
    data_dir = tmp_path / "data"
    data = ["--data-dir", str(data_dir)]
    env = delivery_env()
    gateway = await processes.serve(*data, env=env)
    demo = json.loads((data_dir / "demo.json").read_text())
    account, key, sid, short_code = demo["account_id"], demo["api_key"], demo["service_id"], demo["from"]
    assert demo["to"] == HANDSET

    # the admin commands work beside the running gateway; `set` hides the secret, `list` tells it
    hook = receiver.url("/hooks/mms")
    updated = await cli_json("account", "set", account, "--postback-url", hook, *data, cwd=tmp_path, env=env)
    assert (updated["id"], updated["postback_url"], updated["postback_secret"]) == (account, hook, "********")
    listed = await cli_json("account", "list", *data, cwd=tmp_path, env=env)
    assert set(listed) == {"accounts"}
    (mine,) = [a for a in listed["accounts"] if a["id"] == account]
    assert {"id", "name", "disabled", "postback_url", "postback_secret"} <= set(mine)
    assert mine["postback_url"] == hook and mine["disabled"] is False
    secret = mine["postback_secret"]
    assert isinstance(secret, str) and len(secret) >= 16 and secret != "********"

    rejecting, unreachable = "15550100002", "15550100003"
    shown = await cli_json("sandbox", "handset", rejecting, "--behaviour", "rejects", *data, cwd=tmp_path, env=env)
    assert shown == {"number": rejecting, "behaviour": "rejects", "delay": 0.0}
    shown = await cli_json(
        "sandbox", "handset", unreachable, "--behaviour", "unreachable", *data, cwd=tmp_path, env=env
    )
    assert shown["behaviour"] == "unreachable"

    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        # (c) first, since it waits for its expiry: an unreachable handset ends N103 on time
        expiry = (utcnow() + timedelta(seconds=4)).replace(microsecond=0) + timedelta(seconds=1)
        expiring = (
            await send(http, key, text_mms(sid, short_code, unreachable, {"mms-expiry-timestamp": iso(expiry)}))
        )["tracking-id"]

        # (a) text and an image from the origin: N101 then N102, signed, and the handset has it all
        photo = samples.jpeg(320, 240)
        image_url = origin.route("/photo.jpg", file_reply(photo, "image/jpeg"))
        answer = await send(
            http,
            key,
            text_mms(
                sid,
                short_code,
                extra={
                    "client-reference": "order-1",
                    "slide": [{"message-text": "Thanks ☕", "image": {"url": image_url}}],
                },
            ),
        )
        delivered_id = answer["tracking-id"]
        assert answer["to"] == HANDSET
        sent, delivered = await postbacks(receiver, delivered_id, ["N101", "N102"])
        for postback in (sent, delivered):
            assert postback.path == "/hooks/mms"
            assert postback.signed_by(secret)
            assert not postback.signed_by(secret + "x")
            body = postback.json
            assert (body["origin"], body["client-reference"]) == ("MMS_MT", "order-1")
            assert (body["to"], body["from"], body["sent-as"]) == (HANDSET, short_code, "MMS")
            assert body["event-id"].startswith("evt_")
        assert (sent.json["status"], delivered.json["status"]) == ("Sent", "Delivered")
        assert sent.json["event-id"] != delivered.json["event-id"]
        assert origin.count("/photo.jpg") >= 1

        inbox = await cli_json("sandbox", "inbox", HANDSET, *data, cwd=tmp_path, env=env)
        assert inbox["number"] == HANDSET
        (entry,) = [m for m in inbox["messages"] if m["tracking-id"] == delivered_id]
        assert (entry["from"], entry["to"]) == (short_code, HANDSET)
        parts = entry["parts"]
        assert [(p["slide"], p["content-type"]) for p in parts] == [(1, "image/jpeg"), (1, "text/plain; charset=utf-8")]
        assert parts[0]["sha256"] == hashlib.sha256(photo).hexdigest()  # small enough to pass unchanged
        assert parts[0]["size"] == len(photo)
        assert parts[1]["text"] == "Thanks ☕"

        # (b) a handset that rejects: N101 then E102, and nothing in its inbox
        rejected_id = (await send(http, key, text_mms(sid, short_code, rejecting)))["tracking-id"]
        _, refusal = await postbacks(receiver, rejected_id, ["N101", "E102"])
        assert refusal.json["status"] == "Rejected" and refusal.signed_by(secret)
        assert (await cli_json("sandbox", "inbox", rejecting, *data, cwd=tmp_path, env=env))["messages"] == []

        # (d) a saved MMS: N003 when it is ready, then sent by its mms-id: N101 then N102
        template_url = origin.route(
            "/template.jpg", file_reply(samples.jpeg(320, 240, source="chelsea.png"), "image/jpeg")
        )
        saved = await send(
            http,
            key,
            {"action": "savemms", "name": "promo", "slide": [{"message-text": "Sale", "image": {"url": template_url}}]},
        )
        mms_id = saved["mms-id"]
        ready = await receiver.wait_for(lambda r: any(p.json.get("mms-id") == mms_id for p in r))
        (n003,) = [p for p in ready if p.json.get("mms-id") == mms_id]
        assert (n003.json["code"], n003.json["status"]) == ("N003", "Transcoding successful")
        assert n003.signed_by(secret)
        from_template = await send(
            http,
            key,
            {
                "action": "sendsavedmms",
                "mms-id": mms_id,
                "service-id": sid,
                "to": HANDSET,
                "from": short_code,
                "fallback-sms-text": "see it",
            },
        )
        template_postbacks = await postbacks(receiver, from_template["tracking-id"], ["N101", "N102"])
        assert {p.json["mms-id"] for p in template_postbacks} == {mms_id}

        # (c) again: the unreachable handset's message expired, reported within 3 s of its expiry
        _, expired = await postbacks(receiver, expiring, ["N101", "N103"], within=expiry.timestamp() - time.time() + 10)
        assert expired.json["status"] == "Expired" and expired.signed_by(secret)
        late = expired.at - expiry.timestamp()
        assert 0 <= late < 3.0, f"N103 came {late:.2f} s after the expiry"

    # (e) a handset sends to the account's short code: one N401 whose content URLs the gateway serves
    picture = samples.jpeg(200, 150)
    (tmp_path / "me.jpg").write_bytes(picture)
    mo = await cli_json(
        "sandbox",
        "send",
        "--from",
        HANDSET,
        "--to",
        short_code,
        "--subject",
        "INFO order",
        "--text",
        "hello",
        "--file",
        str(tmp_path / "me.jpg"),
        *data,
        cwd=tmp_path,
        env=env,
    )
    inbound_id = mo["tracking-id"]
    (n401,) = await postbacks(receiver, inbound_id, ["N401"])
    body = n401.json
    assert n401.signed_by(secret)
    assert (body["origin"], body["from"], body["to"]) == ("MMS_MO", HANDSET, short_code)
    assert (body["keyword"], body["message-subject"]) == ("INFO", "INFO order")
    files = [c["file"] for c in body["content"]]
    expected = [(b"hello", "text/plain"), (picture, "image/jpeg")]
    assert len(files) == len(expected), body["content"]
    async with httpx.AsyncClient(timeout=10) as http:  # over real HTTP, from wherever the URL points
        for url, (data_bytes, content_type) in zip(files, expected, strict=True):
            assert url.startswith(gateway.url + "/"), url
            response = await http.get(url)
            assert response.status_code == 200, response.text
            assert response.content == data_bytes
            assert response.headers["content-type"].split(";")[0].strip() == content_type
            assert response.headers["content-length"] == str(len(data_bytes))

    async with shared_store(data_dir) as store:
        assert (await store.messages.find_message(delivered_id)).state is MessageState.DELIVERED
        assert (await store.messages.find_message(rejected_id)).state is MessageState.REJECTED
        assert (await store.messages.find_message(expiring)).state is MessageState.EXPIRED
        # the receiver always answers 200: each postback was delivered at its first attempt
        for subject in (delivered_id, rejected_id, expiring, inbound_id):
            rows = await outbox_delivered(store, subject)
            assert [attempts for *_, attempts in rows] == [1] * len(rows), rows
        ((event_id, code, _, _),) = await outbox_delivered(store, inbound_id)
        assert (event_id, code) == (body["event-id"], "N401")
    assert len(about(inbound_id, receiver.received)) == 1, "the N401 came more than once"

    assert await gateway.stop() == 0, "".join(gateway.output)


# ------------------------------------------------------------------------------------------------------
# `mmsgate api` with `mmsgate worker` processes (PostgreSQL)


async def provision(tmp_path: Path, env: dict[str, str], postback_url: str | None) -> tuple[str, str, str, str]:
    """An account made with the admin commands: (api key, service-id, sender, postback secret)."""
    created = await cli_json("account", "create", "acme", cwd=tmp_path, env=env)
    account = created["account_id"]
    key = await cli_json("key", "create", account, cwd=tmp_path, env=env)
    assert set(key) == {"key_id", "api_key"}
    sid = (await cli_json("campaign", "create", account, cwd=tmp_path, env=env))["service_id"]
    added = await cli_json("number", "add", account, "28444", "--campaign", sid, cwd=tmp_path, env=env)
    assert added["number"]["kind"] == "short-code" and added["number"]["number"] == "28444"
    secret = ""
    if postback_url is not None:
        await cli_json("account", "set", account, "--postback-url", postback_url, cwd=tmp_path, env=env)
        (listed,) = (await cli_json("account", "list", cwd=tmp_path, env=env))["accounts"]
        assert listed["postback_url"] == postback_url
        secret = listed["postback_secret"]
    return key["api_key"], sid, "28444", secret


async def send_many(
    http: httpx.AsyncClient, api_key: str, bodies: list[dict[str, Any]], at_once: int = 20
) -> list[str]:
    """Send every body, ``at_once`` in flight; each must be accepted. Returns the tracking ids."""
    pending = list(enumerate(bodies))
    accepted: dict[int, str] = {}

    async def client() -> None:
        while pending:
            index, body = pending.pop()
            accepted[index] = (await send(http, api_key, body))["tracking-id"]

    await asyncio.gather(*(client() for _ in range(at_once)))
    return [accepted[i] for i in range(len(bodies))]


def pg_env(tmp_path: Path, pg_url: str, **extra: str) -> dict[str, str]:
    return delivery_env(MMSGATE_DATABASE=pg_url, MMSGATE_DATA_DIR=str(tmp_path / "data"), **extra)


@pytest.mark.postgres
async def test_worker_killed_mid_load_loses_and_repeats_nothing(
    tmp_path: Path, pg_url: str, processes: Processes, receiver: Receiver
) -> None:
    env = pg_env(tmp_path, pg_url, MMSGATE_JOB_LEASE_SECONDS="3", MMSGATE_POSTBACK_TIMEOUT="2")
    api = await processes.api(env)
    first = await processes.worker(env)
    key, sid, sender, secret = await provision(tmp_path, env, receiver.url("/pb"))
    bodies = [text_mms(sid, sender, extra={"client-reference": f"load-{i}"}) for i in range(300)]

    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        accepted = await send_many(http, key, bodies[:100])
        at_kill = await receiver.wait_for(lambda received: len(received) >= 50, within=60)
        await first.kill()  # mid-load: jobs and postbacks are leased to it, some half done
        finished = {r.json["tracking-id"] for r in at_kill if r.json["code"] == "N102"}
        assert len(finished) < len(accepted), "the first worker had finished its load before it was killed"
        assert first.proc is not None and first.proc.returncode == -9
        accepted += await send_many(http, key, bodies[100:])  # the API does not need a worker to accept
        second = await processes.worker(env)

    assert len(set(accepted)) == 300
    wanted = set(accepted)

    def every_one_delivered(received: list[Received]) -> bool:
        return wanted <= {r.json.get("tracking-id") for r in received if r.json.get("code") == "N102"}

    await receiver.wait_for(every_one_delivered, within=60)

    got = receiver.received
    assert all(r.signed_by(secret) for r in got)
    reference = {tracking_id: body["client-reference"] for tracking_id, body in zip(accepted, bodies, strict=True)}
    assert all(r.json["client-reference"] == reference[r.json["tracking-id"]] for r in got)
    codes: dict[str, set[str]] = {}
    for r in got:
        codes.setdefault(r.json["tracking-id"], set()).add(r.json["code"])
    assert set(codes) == wanted, "postbacks about messages nobody sent"
    assert all(c == {"N101", "N102"} for c in codes.values()), {t: c for t, c in codes.items() if c != {"N101", "N102"}}
    received_events = {r.json["event-id"] for r in got}

    async with shared_store(tmp_path / "data", pg_url) as store:
        assert set((await message_ids(store, accepted)).values()) == {1}
        outbox_events: set[str] = set()
        for tracking_id in accepted:
            message = await store.messages.find_message(tracking_id)
            assert message.state is MessageState.DELIVERED, (tracking_id, message.state)
            submission = await store.sandbox.sandbox_submission(tracking_id)
            assert submission is not None, tracking_id
            assert submission.calls == 1, f"{tracking_id} was submitted {submission.calls} times"
            rows = await outbox_delivered(store, tracking_id)
            assert [code for _, code, _, _ in rows] == ["N101", "N102"], rows
            outbox_events.update(event_id for event_id, *_ in rows)
    assert outbox_events <= received_events, f"{len(outbox_events - received_events)} postbacks never arrived"
    assert received_events <= outbox_events, "the receiver got events the outbox does not know"
    assert await second.stop() == 0, "".join(second.output)  # a worker stops gracefully on SIGTERM


@pytest.mark.postgres
async def test_carrier_limit_holds_across_two_workers(tmp_path: Path, pg_url: str, processes: Processes) -> None:
    limit, count = 20, 120
    env = pg_env(tmp_path, pg_url, MMSGATE_CARRIER_MAX_PER_SECOND=str(limit))
    api = await processes.api(env)
    workers = [await processes.worker(env), await processes.worker(env)]
    assert workers[0].owner != workers[1].owner
    key, sid, sender, _ = await provision(tmp_path, env, None)

    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        accepted = await send_many(http, key, [text_mms(sid, sender) for _ in range(count)])
    assert len(set(accepted)) == count

    async with shared_store(tmp_path / "data", pg_url) as store:
        found: dict[str, SandboxSubmission] = {}

        async def all_submitted() -> list[SandboxSubmission] | None:
            for tracking_id in accepted:
                if tracking_id not in found:
                    submission = await store.sandbox.sandbox_submission(tracking_id)
                    if submission is None:
                        return None
                    found[tracking_id] = submission
            return list(found.values())

        submissions = await eventually(all_submitted, within=45, what=f"all {count} messages to reach the carrier")

    assert all(s.calls == 1 for s in submissions)
    times = sorted(s.received_at for s in submissions)
    busiest = max(sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times))
    assert busiest <= limit, f"{busiest} submits within one second; the limit is {limit}"
    took = times[-1] - times[0]
    assert took >= count / limit - 1, f"{count} submits took only {took:.2f} s: the limit did not shape them"
    assert all(w.proc is not None and w.proc.returncode is None for w in workers), "a worker died"
    # Which worker submitted a message is recorded nowhere (leases are cleared when jobs end), so
    # that both took a share is not asserted here.
