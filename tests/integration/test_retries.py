"""Failed attempts are visible where users look: a message whose media host is down shows an event per failed
attempt (what failed, attempt n of m, next try at) in ``GET /v1/messages/{id}`` and the console's list and
page, and ends E101 saying how many attempts were made; a redirect to a non-public address fails at once.

The gateway runs in process with its real workers over SQLite and PostgreSQL, with a short retry policy
(``MMSGATE_JOB_RETRY_BASE`` and friends); media come from real loopback origins.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmsgate.core.codes import MessageState
from mmsgate.store import Store
from mmsgate.web.console.auth import set_password
from tests.integration.media_origin import Origin, redirect
from tests.integration.test_console import PASSWORD, log_in, page_of, text_of
from tests.integration.test_delivery import Gateway, gateway_settings, running_gateway
from tests.waiting import eventually

ATTEMPTS = 3


@pytest.fixture
async def gateway(store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    """A gateway that tries a message's work 3 times, 1 s then 2 s apart; its console's password is set."""
    await set_password(store.console, PASSWORD)
    settings = gateway_settings(
        tmp_path,
        backend,
        request,
        auth_cache_seconds=0.0,
        job_retry_base=1.0,
        job_retry_cap=2.0,
        job_max_attempts=ATTEMPTS,
    )
    async with running_gateway(store, settings) as the_gateway:
        yield the_gateway


async def closed_port_url(path: str) -> str:
    """A URL on a loopback port nothing listens on any more: a media host that is down."""
    gone = await Origin().start()
    url = gone.url(path)
    await gone.close()
    return url


async def view(gateway: Gateway, api_key: str, tracking_id: str) -> dict[str, Any]:
    response = await gateway.http.get(f"/v1/messages/{tracking_id}", headers={"x-api-key": api_key})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def retrying_fact(response: httpx.Response) -> str:
    """What a message's page says under "Retrying" ("" when it says nothing)."""
    found = page_of(response).xpath("//dl[@class='facts']/dt[.='Retrying']/following-sibling::dd[1]")
    return " ".join(found[0].text_content().split()) if found else ""


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_media_host_that_is_down_shows_each_failed_attempt_in_the_api_and_the_console(
    gateway: Gateway,
) -> None:
    caller, _ = await gateway.account()
    url = await closed_port_url("/down.jpg")
    tracking_id = await gateway.send(caller, slide=[{"message-text": "Hi", "image": {"url": url}}])
    assert (await log_in(gateway.http)).status_code == 303

    # while it is retried: the view's last event and its `retry` say what failed and when it runs again,
    # and the console shows the same in the message's row and on its page
    async def retrying() -> tuple[dict[str, Any], str, str] | None:
        data = await view(gateway, caller.api_key, tracking_id)
        if data["retry"] is None:
            return None
        listed = text_of(await gateway.http.get("/console/messages"))
        return data, listed, retrying_fact(await gateway.http.get(f"/console/messages/{tracking_id}"))

    data, listed, page = await eventually(retrying, within=20, what="a failed attempt to be shown")
    assert data["state"] == "accepted"
    retry = data["retry"]
    last = data["events"][-1]
    assert (last["code"], last["status"]) == (None, "Retrying")
    assert retry["attempt"] in (1, 2) and retry["max-attempts"] == ATTEMPTS
    assert retry["status-details"].startswith(f"E351: slide 1 image: {url}: ConnectError")
    assert last["status-details"] == (
        f"attempt {retry['attempt']} of {ATTEMPTS} failed: {retry['status-details']}; "
        f"next try at {retry['next-try-at']}"
    )
    assert 0 <= (when(retry["next-try-at"]) - when(last["timestamp"])).total_seconds() <= 3
    assert f"of {ATTEMPTS} failed: E351: slide 1 image: {url}" in listed  # the reason in the list row
    assert re.fullmatch(rf"attempt [12] of {ATTEMPTS} failed at .* UTC: E351: slide 1 image: {url}: .*", page)
    assert "next try at" in page

    # at the end: one event per failed attempt, then E101 saying how many attempts were made
    async def failed() -> dict[str, Any] | None:
        data = await view(gateway, caller.api_key, tracking_id)
        return data if data["state"] == MessageState.FAILED.value else None

    data = await eventually(failed, within=30, what="the message to fail")
    assert data["retry"] is None
    statuses = [(e["code"], e["status"]) for e in data["events"]]
    assert statuses == [(None, "Accepted"), *[(None, "Retrying")] * (ATTEMPTS - 1), ("E101", "Failed")]
    attempts = [re.match(r"attempt (\d+) of (\d+) failed: ", e["status-details"]) for e in data["events"][1:-1]]
    assert [(int(m[1]), int(m[2])) for m in attempts if m] == [(n, ATTEMPTS) for n in range(1, ATTEMPTS)]
    final = data["events"][-1]["status-details"]
    assert final.startswith(f"E351: slide 1 image: {url}: ConnectError")
    assert final.endswith(f"(after {ATTEMPTS} attempts)")

    # failed attempts have no code, so the account hears of the message once: its end
    (postback,) = await gateway.postbacks(tracking_id, ["E101"])
    assert postback.json["status-details"] == final

    listed_page = await gateway.http.get("/console/messages")
    (row,) = [r for r in page_of(listed_page).xpath("//table[@class='list']//tr") if tracking_id in r.text_content()]
    assert f"E101: {final}" in " ".join(row.text_content().split())
    response = await gateway.http.get(f"/console/messages/{tracking_id}")
    timeline = page_of(response).xpath("//table[@class='timeline']/tbody/tr/td[3]/text()")
    assert timeline == ["Accepted", *["Retrying"] * (ATTEMPTS - 1), "Failed"]  # every attempt is kept
    assert retrying_fact(response) == ""  # no longer retried: no next try


async def test_a_failed_attempt_that_cannot_be_recorded_is_still_retried(gateway: Gateway, backend: str) -> None:
    """The database refuses the failed attempts' events (a trigger): the worker logs it and retries anyway,
    and the message still reaches its end."""
    if backend == "sqlite":
        refuse = [
            "CREATE TRIGGER refuse_retrying BEFORE INSERT ON events WHEN NEW.status = 'Retrying' "
            "BEGIN SELECT RAISE(ABORT, 'no room for failed attempts'); END"
        ]
    else:
        refuse = [
            "CREATE FUNCTION refuse_retrying() RETURNS trigger AS $$ BEGIN IF NEW.status = 'Retrying' THEN "
            "RAISE EXCEPTION 'no room for failed attempts'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_retrying BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_retrying()",
        ]
    await gateway.store.db.write([(sql, ()) for sql in refuse])
    caller, _ = await gateway.account()
    url = await closed_port_url("/down.jpg")
    tracking_id = await gateway.send(caller, slide=[{"image": {"url": url}}])

    async def failed() -> dict[str, Any] | None:
        data = await view(gateway, caller.api_key, tracking_id)
        return data if data["state"] == MessageState.FAILED.value else None

    data = await eventually(failed, within=30, what="the message to fail although its attempts were not recorded")
    assert [e["status"] for e in data["events"]] == ["Accepted", "Failed"]
    assert data["events"][-1]["status-details"].endswith(f"(after {ATTEMPTS} attempts)")


@pytest.mark.parametrize("target", ["http://0177.0.0.1/a.jpg", "http://127.0.0.1:{port}/a.jpg"])
async def test_a_redirect_to_a_non_public_address_fails_the_message_at_once(
    store: Store, backend: str, tmp_path: Path, request: pytest.FixtureRequest, target: str
) -> None:
    """Only 127.0.0.2 may be fetched from: its redirect to loopback (in octal form, or 127.0.0.1) ends the
    message E101 on the first attempt, without a retry, as the same URL given directly does."""
    settings = gateway_settings(tmp_path, backend, request, media_allow_networks="127.0.0.2/32")
    allowed = await Origin("127.0.0.2").start()
    try:
        async with running_gateway(store, settings) as gateway:
            caller, _ = await gateway.account()
            url = allowed.route("/bounce.jpg", redirect(target.format(port=gateway.origin.port)))
            tracking_id = await gateway.send(caller, slide=[{"image": {"url": url}}])
            await gateway.postbacks(tracking_id, ["E101"], within=20)
            data = await view(gateway, caller.api_key, tracking_id)
    finally:
        await allowed.close()
    assert [e["status"] for e in data["events"]] == ["Accepted", "Failed"]
    details = data["events"][-1]["status-details"]
    assert details.startswith("E351: slide 1 image: http://127.0.0.")
    assert "not a usable URL" in details if "0177" in target else "non-public" in details
    assert details.endswith("(after 1 attempt)")
    assert allowed.count("/bounce.jpg") == 1
    assert gateway.origin.requests == []
