"""SMS fallback end to end: a real `mmsgate serve`, the SMSC peer (npm `smpp`) behind an SMPP connection
added with `mmsgate smpp add`, a sandbox handset that cannot take MMS, a postback receiver, and the link
of the fallback SMS opened in headless Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from mmsgate.core.model import iso, utcnow
from tests import media_samples as samples
from tests.acceptance.conftest import Processes, cli_json
from tests.acceptance.test_delivery_processes import HANDSET, delivery_env, postbacks, send
from tests.integration.media_origin import Origin, file_reply
from tests.receiver import Receiver
from tests.smsc import Event, Smsc
from tests.waiting import eventually

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


@pytest.fixture
async def smsc() -> AsyncIterator[Smsc]:
    peer = await Smsc({"SMSC_SYSTEM_ID": "mmsgate", "SMSC_PASSWORD": "pw12345"}).start()
    yield peer
    await peer.stop()


def fallback_mms(demo: dict[str, str], image_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "action": "sendmms",
        "service-id": demo["service_id"],
        "to": HANDSET,
        "from": demo["from"],
        "client-reference": "order-77",
        "message-subject": "Your order",
        "fallback-sms-text": "Your order is on its way:",
        "slide": [
            {"message-text": "Thanks for your order ☕", "image": {"url": image_url}},
            {"message-text": "Track it any time"},
        ],
        **extra,
    }


async def sms_to_peer(smsc: Smsc, starting: str) -> Event:
    return await smsc.wait_for(
        lambda e: e.get("event") == "submit" and e.get("status") == 0 and str(e.get("text", "")).startswith(starting),
        within=30,
        what=f"an SMS starting {starting!r} at the SMSC",
    )


async def test_fallback_sms_goes_over_smpp_and_links_a_page_with_every_slide(
    tmp_path: Path, processes: Processes, receiver: Receiver, origin: Origin, smsc: Smsc, page: Page
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    env = delivery_env(MMSGATE_CONNECTION_REFRESH_SECONDS="0.5")
    added = await cli_json(
        "smpp", "add", "peer", "--host", "127.0.0.1", "--port", str(smsc.port), "--system-id", "mmsgate",
        "--password", "pw12345", *data, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert added["connection"]["route_prefixes"] == [] and "password" not in added["connection"]
    gateway = await processes.serve(*data, env=env)
    demo = json.loads((tmp_path / "data" / "demo.json").read_text())
    await cli_json(
        "account", "set", demo["account_id"], "--postback-url", receiver.url("/hooks"), *data, cwd=tmp_path, env=env
    )
    listed = await cli_json("account", "list", *data, cwd=tmp_path, env=env)
    secret = next(a["postback_secret"] for a in listed["accounts"] if a["id"] == demo["account_id"])
    shown = await cli_json("sandbox", "handset", HANDSET, "--behaviour", "no-mms", *data, cwd=tmp_path, env=env)
    assert shown["behaviour"] == "no-mms"
    await smsc.wait_for(lambda e: e.get("event") == "bind" and e.get("ok") is True, within=30, what="the bind")

    photo = samples.jpeg(320, 240)
    image_url = origin.route("/order.jpg", file_reply(photo, "image/jpeg"))
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        # the SMS carries the fallback text and a link; the SMSC's receipt makes it N202, sent as SMS
        tracking_id = (await send(http, demo["api_key"], fallback_mms(demo, image_url)))["tracking-id"]
        sms = await sms_to_peer(smsc, "Your order is on its way:")
        assert sms["data_coding"] == 0
        text, _, link = sms["text"].rpartition(" ")
        assert text == "Your order is on its way:"
        assert link.startswith(f"{gateway.url}/m/") and len(link.rsplit("/", 1)[1]) >= 12
        (delivered,) = await postbacks(receiver, tracking_id, ["N202"])
        assert delivered.signed_by(secret)
        body = delivered.json
        assert (body["status"], body["sent-as"], body["client-reference"]) == ("Delivered as SMS", "SMS", "order-77")
        assert (body["to"], body["from"]) == (HANDSET, demo["from"])
        status = (await http.get(f"/v1/messages/{tracking_id}", headers={"x-api-key": demo["api_key"]})).json()
        assert status["state"] == "sms-delivered"

        # the link, in a phone-sized browser: the image is rendered at its size, every text is there
        answer = await page.goto(link)
        assert answer is not None and answer.status == 200
        await page.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        sizes = await page.evaluate("() => Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight])")
        assert sizes == [[320, 240]]
        for words in ("Your order", "Thanks for your order ☕", "Track it any time"):
            assert await page.get_by_text(words, exact=True).first.is_visible(), words
        SCREENSHOTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "fallback-page.png"), full_page=True)

        # without the link, the SMS is the text alone
        bare = fallback_mms(
            demo, image_url, **{"fallback-sms-text": "Text only please", "disable-fallback-sms-link": True}
        )
        bare_id = (await send(http, demo["api_key"], bare))["tracking-id"]
        assert (await sms_to_peer(smsc, "Text only please"))["text"] == "Text only please"
        await postbacks(receiver, bare_id, ["N202"])

        # with the fallback disabled, the message ends E102 and no SMS goes out
        off = fallback_mms(demo, image_url, **{"fallback-sms-text": "Never sent", "disable-fallback-sms": True})
        off_id = (await send(http, demo["api_key"], off))["tracking-id"]
        (rejected,) = await postbacks(receiver, off_id, ["E102"])
        assert rejected.json["sent-as"] == "MMS"
        assert not [e for e in smsc.of("submit") if "Never sent" in str(e.get("text", ""))]

        # a link that expires: the page answers 410 once its time has passed, in the browser too
        expires = (utcnow() + timedelta(seconds=3)).replace(microsecond=0) + timedelta(seconds=1)
        short = fallback_mms(
            demo, image_url, **{"fallback-sms-text": "Short-lived", "fallback-sms-link-expiration": iso(expires)}
        )
        short_id = (await send(http, demo["api_key"], short))["tracking-id"]
        short_link = (await sms_to_peer(smsc, "Short-lived"))["text"].rpartition(" ")[2]
        await postbacks(receiver, short_id, ["N202"])
        assert (await http.get(short_link)).status_code == 200

        async def gone() -> bool | None:
            return True if (await http.get(short_link)).status_code == 410 else None

        await eventually(gone, within=20, what="the short-lived link to answer 410")
        assert utcnow() >= expires
        expired = await page.goto(short_link)
        assert expired is not None and expired.status == 410
        assert "expired" in (await page.content()).lower()
