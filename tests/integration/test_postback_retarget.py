"""Postbacks re-targeted and retried, end to end: the gateway runs in process over a real store (SQLite and
PostgreSQL) with its real workers, postbacks go to real loopback receivers; the account's URL is changed
between attempts, the `mmsgate postbacks` command and the console's postbacks page retry them now."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mmsgate.cli import main
from mmsgate.core.model import utcnow
from mmsgate.core.records import Behaviour, Handset
from mmsgate.postbacks.outbox import NO_URL
from mmsgate.store import Store
from mmsgate.web.console.auth import set_password
from tests.conftest import Caller
from tests.integration.test_console import PASSWORD, csrf_of, log_in, page_of, text_of
from tests.integration.test_delivery import Gateway, gateway_settings, running_gateway
from tests.receiver import Received, running_receiver
from tests.waiting import eventually

GatewayOf = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def gateway_of(store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> GatewayOf:
    """A gateway over ``store`` with the given settings changed (its console's password is PASSWORD)."""

    @contextlib.asynccontextmanager
    async def start(**extra: object) -> AsyncIterator[Gateway]:
        await set_password(store.console, PASSWORD)
        async with running_gateway(store, gateway_settings(tmp_path, backend, request, **extra)) as gateway:
            yield gateway

    return start


async def first_postback_fails(gateway: Gateway, handset: Behaviour) -> tuple[Caller, str]:
    """An account whose receiver answers 500 once then 200; a message to a handset that ``handset``s,
    sent once its first postback has failed. Returns the caller and the message's tracking id."""
    caller, _ = await gateway.account("/flaky")
    gateway.receiver.answers["/flaky"] = [500, 200]
    await gateway.store.sandbox.set_handset(Handset(caller.to, handset))
    tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}])
    await gateway.receiver.wait_for(lambda received: len(received) >= 1)
    return caller, tracking_id


async def states(store: Store, tracking_id: str) -> list[tuple[str, str]]:
    return [(code, state) for _, code, state, _ in await store.messages.list_postbacks(tracking_id)]


async def settled(store: Store, tracking_id: str, wanted: list[tuple[str, str]]) -> list[tuple[str, str]]:
    async def probe() -> list[tuple[str, str]] | None:
        found = await states(store, tracking_id)
        return found if found == wanted else None

    return await eventually(probe, within=15, what=f"the postbacks of {tracking_id} to be {wanted}")


def codes(received: list[Received], tracking_id: str) -> list[str]:
    return [r.json["code"] for r in received if r.json.get("tracking-id") == tracking_id]


async def run_cli(*args: str) -> Result:
    """The `mmsgate` command, run in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


async def test_a_postback_retargeted_after_a_failure_goes_to_the_new_url_on_its_next_attempt(
    gateway_of: GatewayOf,
) -> None:
    async with gateway_of(postback_retries=1000) as gateway:
        caller, _ = await gateway.account("/dead")
        gateway.receiver.answers["/dead"] = [500]
        await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.UNREACHABLE))
        tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}])
        await gateway.receiver.wait_for(lambda received: len(received) >= 2)  # failed, and failed again
        async with running_receiver() as fixed:
            account = await gateway.store.accounts.update_account(
                caller.account_id, postback_url=fixed.url("/fixed"), postback_secret="pbs_after_the_fix"
            )
            [arrived] = await fixed.wait_for(lambda received: len(received) >= 1, within=10)
            assert codes([arrived], tracking_id) == ["N101"]
            assert arrived.signed_by("pbs_after_the_fix")  # signed with the secret configured now too
            old = gateway.receiver.on("/dead")
            assert len({r.json["event-id"] for r in [*old, arrived]}) == 1  # the same postback
            assert all(r.at <= arrived.at for r in old)  # nothing went to the old URL after it
            assert await settled(gateway.store, tracking_id, [("N101", "delivered")])
            [record] = await gateway.store.console.console_postbacks(tracking_id)
            assert record.url == account.postback_url  # the row shows where it was delivered


async def test_a_postback_without_a_url_any_more_is_dropped_and_retried_once_one_is_set(
    gateway_of: GatewayOf,
) -> None:
    async with gateway_of(postback_retries=1000) as gateway:
        caller, _ = await gateway.account("/dead")
        gateway.receiver.answers["/dead"] = [500]
        await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.UNREACHABLE))
        tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}])
        await gateway.receiver.wait_for(lambda received: len(received) >= 1)
        await gateway.store.accounts.update_account(caller.account_id, postback_url="")
        assert await settled(gateway.store, tracking_id, [("N101", "failed")])
        [record] = await gateway.store.console.console_postbacks(tracking_id)
        assert record.last_error == NO_URL
        backlog = await gateway.store.backlog.postback_backlog(caller.account_id)
        assert (backlog.waiting, backlog.failed) == (0, 1)

        await gateway.store.accounts.update_account(caller.account_id, postback_url=gateway.receiver.url("/back"))
        assert await gateway.store.backlog.retry_postbacks(caller.account_id) == (1, 0)
        await gateway.receiver.wait_for(lambda received: any(r.path == "/back" for r in received))
        assert await settled(gateway.store, tracking_id, [("N101", "delivered")])


async def test_the_command_retries_a_waiting_postback_now(gateway_of: GatewayOf, store: Store) -> None:
    async with gateway_of(postback_retry_interval=3600.0) as gateway:
        caller, tracking_id = await first_postback_fails(gateway, Behaviour.UNREACHABLE)
        assert await settled(store, tracking_id, [("N101", "queued")])  # waiting an hour for its retry
        shown = await run_cli("postbacks", "show", caller.account_id, "--database", store.url, "--json")
        assert shown.exit_code == 0, shown.output
        assert '"retrying": 1' in shown.output and '"last_error": "HTTP 500"' in shown.output

        retried = await run_cli("postbacks", "retry", caller.account_id, "--database", store.url)
        assert retried.exit_code == 0, retried.output
        assert "1 postback(s) of" in retried.output and "(0 failed, 1 waiting for a retry)" in retried.output
        await gateway.receiver.wait_for(lambda received: len(received) >= 2, within=10)
        assert codes(gateway.receiver.received, tracking_id) == ["N101", "N101"]
        assert await settled(store, tracking_id, [("N101", "delivered")])

        unknown = await run_cli("postbacks", "retry", "acc_nobody", "--database", store.url)
        assert unknown.exit_code == 1 and "no account acc_nobody" in unknown.output


async def test_the_console_shows_held_postbacks_and_retries_them(gateway_of: GatewayOf, store: Store) -> None:
    async with gateway_of(postback_retry_interval=3600.0) as gateway:
        caller, tracking_id = await first_postback_fails(gateway, Behaviour.DELIVERS)
        # the message was delivered, but its N102 waits behind the N101 that failed
        assert await settled(store, tracking_id, [("N101", "queued"), ("N102", "queued")])
        assert (await log_in(gateway.http)).status_code == 303
        page = await gateway.http.get("/console/postbacks")
        section = page_of(page).xpath(f"//section[@data-account='{caller.account_id}']")[0]
        field = {e.get("data-field"): " ".join(e.text_content().split()) for e in section.xpath(".//*[@data-field]")}
        assert field["held"] == "1" and field["retrying"] == "1" and field["waiting"].startswith("2 ")
        assert (field["last-error"], field["holds"]) == ("HTTP 500", "1")
        next_try = datetime.strptime(field["next-try"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert next_try > utcnow() + timedelta(minutes=50)  # its retry, an hour after it failed
        assert "Held behind a failing one" in text_of(page)

        refused = await gateway.http.post(f"/console/postbacks/{caller.account_id}/retry", data={"csrf": "wrong"})
        assert refused.status_code == 403
        assert await states(store, tracking_id) == [("N101", "queued"), ("N102", "queued")]

        done = await gateway.http.post(f"/console/postbacks/{caller.account_id}/retry", data={"csrf": csrf_of(page)})
        assert done.status_code == 303
        assert "Postbacks of" in text_of(await gateway.http.get(done.headers["location"]))
        await gateway.receiver.wait_for(lambda received: len(received) >= 3, within=10)
        assert codes(gateway.receiver.received, tracking_id) == ["N101", "N101", "N102"]  # in order
        assert await settled(store, tracking_id, [("N101", "delivered"), ("N102", "delivered")])


async def test_the_postbacks_page_and_its_forms_need_a_session(gateway_of: GatewayOf) -> None:
    async with gateway_of() as gateway:
        caller, _ = await gateway.account()
        page = await gateway.http.get("/console/postbacks")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/login?next=")
        for form in ("retry", "url"):
            posted = await gateway.http.post(f"/console/postbacks/{caller.account_id}/{form}", data={"url": ""})
            assert posted.status_code == 303 and posted.headers["location"].startswith("/console/login")
        assert (await gateway.store.accounts.get_account(caller.account_id)).postback_url  # unchanged


async def test_the_console_changes_the_postback_url(gateway_of: GatewayOf, store: Store) -> None:
    async with gateway_of(postback_retries=1000) as gateway, running_receiver() as fixed:
        caller, _ = await gateway.account("/dead")
        assert (await log_in(gateway.http)).status_code == 303
        csrf = csrf_of(await gateway.http.get("/console/postbacks"))
        url = f"/console/postbacks/{caller.account_id}/url"
        for bad in ("ftp://example.com/x", "not a url", "http://"):
            refused = await gateway.http.post(url, data={"csrf": csrf, "url": bad})
            assert refused.status_code == 400 and "not an http(s) URL" in refused.text, bad
        assert (await store.accounts.get_account(caller.account_id)).postback_url == gateway.receiver.url("/dead")

        gateway.receiver.answers["/dead"] = [500]
        await gateway.store.sandbox.set_handset(Handset(caller.to, Behaviour.UNREACHABLE))
        tracking_id = await gateway.send(caller, slide=[{"message-text": "hello"}])
        await gateway.receiver.wait_for(lambda received: len(received) >= 1)
        changed = await gateway.http.post(url, data={"csrf": csrf, "url": fixed.url("/fixed")})
        assert changed.status_code == 303
        await fixed.wait_for(lambda received: len(received) >= 1, within=10)
        assert codes(fixed.received, tracking_id) == ["N101"]
