"""Recovery: postbacks in flight keep their short lease by a heartbeat, and a dead sender's postbacks are sent
again a lease after its death, whatever the POST timeout; while the database is away the app answers 503
with ``Retry-After`` (the API's failure shape, a plain page for the console) and works again once it is
back. The database goes away through a proxy (tests/dbproxy.py), never by stopping the shared server."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mmsgate.app import create_app
from mmsgate.common.guard import AddressGuard, parse_networks
from mmsgate.core.codes import MessageState
from mmsgate.core.model import Outgoing, Step
from mmsgate.postbacks.outbox import PostbackSender
from mmsgate.store import Store
from mmsgate.store.postgres import PostgresStore
from mmsgate.web.console.auth import SESSION_COOKIE
from tests.conftest import Caller, _settings, provision
from tests.dbproxy import DatabaseProxy
from tests.integration.test_store import make_message
from tests.receiver import HANG, Receiver, running_receiver
from tests.waiting import eventually

LEASE = 1.0
RENEW = 0.2


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as the_receiver:
        yield the_receiver


async def queued_postback(store: Store, caller: Caller, url: str) -> str:
    """A message failed with its E101 postback to ``url`` (the account's postback URL) in the outbox; the
    postback's event id."""
    await store.accounts.update_account(caller.account_id, postback_url=url)
    message = make_message(caller)
    await store.accepting.accept_message(message)
    postback = Outgoing(
        event_id=f"evt-{secrets.token_hex(6)}",
        account_id=caller.account_id,
        subject_id=message.tracking_id,
        code="E101",
        url=url,
        body='{"code": "E101"}',
    )
    step = Step(message.tracking_id, MessageState.FAILED, "E101", "Failed", "test", postback=postback)
    assert await store.lifecycle.advance(step)
    return message.tracking_id


def sender(store: Store, owner: str, *, timeout: float) -> PostbackSender:
    return PostbackSender(
        store.outbox,
        owner,
        guard=AddressGuard(parse_networks("127.0.0.0/8")),
        timeout=timeout,
        retry_interval=60,
        idle_wait=0.05,
        lease_seconds=LEASE,
        renew_seconds=RENEW,
    )


async def test_a_postback_in_flight_keeps_its_lease_however_long_the_receiver_holds_it(
    store: Store, caller: Caller, receiver: Receiver
) -> None:
    receiver.answers["/hold"] = [HANG]
    subject = await queued_postback(store, caller, receiver.url("/hold"))
    first = sender(store, "first", timeout=2.5)  # the POST outlasts two leases
    running = asyncio.create_task(first.run())
    try:
        await receiver.wait_for(lambda got: len(got) == 1, within=10)
        deadline = time.monotonic() + 2 * LEASE
        while time.monotonic() < deadline:  # no other worker may take it while it is sent
            assert await store.outbox.claim_postbacks("other", limit=10, lease_seconds=30) == []

        async def attempt_recorded() -> list[tuple[str, str, str, int]] | None:
            rows = await store.messages.list_postbacks(subject)
            return rows if rows[0][3] == 1 and rows[0][2] == "queued" else None

        await eventually(attempt_recorded, within=10, what="the timed-out attempt to be recorded by its sender")
    finally:
        await first.stop(grace=0)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert len(receiver.on("/hold")) == 1


async def test_a_dead_senders_postback_is_sent_again_a_lease_after_its_death(
    store: Store, caller: Caller, receiver: Receiver
) -> None:
    receiver.answers["/pb"] = [HANG, 200]
    subject = await queued_postback(store, caller, receiver.url("/pb"))
    first = sender(store, "dies", timeout=60.0)  # a POST timeout far longer than the lease
    running = asyncio.create_task(first.run())
    await receiver.wait_for(lambda got: len(got) == 1, within=10)
    # the sender dies with the postback in flight: nothing of it runs any more, nothing is released
    mine = [t for t in asyncio.all_tasks() if t.get_name().startswith("postback") or t is running]
    for task in mine:
        task.cancel()
    await asyncio.gather(*mine, return_exceptions=True)
    died = time.monotonic()

    second = sender(store, "second", timeout=5.0)
    again = asyncio.create_task(second.run())
    try:
        await receiver.wait_for(lambda got: len(got) == 2, within=LEASE + 4)
        assert time.monotonic() - died < LEASE + 4

        async def delivered() -> list[tuple[str, str, str, int]] | None:
            rows = await store.messages.list_postbacks(subject)
            return rows if rows[0][2] == "delivered" else None

        [(_, code, _, attempts)] = await eventually(delivered, within=10, what="the postback to be delivered")
        assert (code, attempts) == ("E101", 2)
    finally:
        await second.stop()
        again.cancel()
        await asyncio.gather(again, return_exceptions=True)


# ------------------------------------------------------------------------------------------------------
# the database away: 503 with Retry-After, then answers again


@pytest.fixture
async def proxied(pg_url: str) -> AsyncIterator[tuple[DatabaseProxy, Store]]:
    proxy = await DatabaseProxy(pg_url).start()
    proxy.open()
    store = PostgresStore(proxy.url())
    await store.open()
    try:
        yield proxy, store
    finally:
        await store.close()
        await proxy.close()


@pytest.mark.postgres
async def test_while_the_database_is_away_the_app_answers_503_with_retry_after(
    tmp_path: Path, proxied: tuple[DatabaseProxy, Store]
) -> None:
    proxy, store = proxied
    caller = await provision(store)
    message = make_message(caller)
    await store.accepting.accept_message(message)
    app = create_app(_settings(tmp_path), store)  # no auth cache: every call asks the store
    status_path = f"/v1/messages/{message.tracking_id}"
    headers = {"x-api-key": caller.api_key}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http:
        assert (await http.get(status_path, headers=headers)).status_code == 200

        proxy.cut()
        answer = await http.get(status_path, headers=headers)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert (body["status"], body["error-code"]) == ("failure", "E503")
        assert "database is unavailable" in body["error-info"]

        sent = await http.post("/ep/v2/", json=caller.body(), headers=headers)
        assert sent.status_code == 503 and sent.headers["retry-after"] == "5"
        assert (sent.json()["status"], sent.json()["error-code"]) == ("failure", "E503")
        assert "not accepted" in sent.json()["error-info"]

        http.cookies.set(SESSION_COOKIE, "a-session", path="/console")
        page = await http.get("/console/messages")
        assert page.status_code == 503 and page.headers["retry-after"] == "5"
        assert page.headers["content-type"].startswith("text/plain")
        assert "database is unavailable" in page.text

        proxy.open()

        async def answered() -> httpx.Response | None:
            got = await http.get(status_path, headers=headers)
            return got if got.status_code == 200 else None

        back = await eventually(answered, within=20, what="the status view to answer once the database is back")
        assert back.json()["tracking-id"] == message.tracking_id
        accepted = await http.post("/ep/v2/", json=caller.body(), headers=headers)
        assert accepted.status_code == 200 and accepted.json()["status"] == "success", accepted.text
