"""The console in a real browser (headless Chromium), the gateway served by uvicorn with its workers.

The whole first-use flow: log in; send a test MMS from the console (a photo, a voice note and a contact
card, uploaded from the browser) to a virtual phone; see it arrive on the phone with its picture decoded
at its natural size and its audio loaded; answer from the phone with an uploaded picture and see the N401
postback reach the account's receiver; see the message's timeline show N101 and N102. The console's own
policy must refuse nothing it serves. Screenshots of the main pages go to ``tests/screenshots/console-*.png``,
and the phone with its received MMS (with MMSGATE_UPDATE_README_PICTURE=1 also to
``docs/images/virtual-phone.png``, the README's picture).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Response, expect

from mmsgate.app import create_app
from mmsgate.config import Settings
from mmsgate.core.model import NumberKind
from mmsgate.runtime import running_worker
from mmsgate.store import Store
from mmsgate.web.console.auth import set_password
from mmsgate.wiring import PUBLIC_URL
from tests import media_samples as samples
from tests.conftest import Caller
from tests.integration.test_delivery import gateway_settings
from tests.receiver import Receiver, running_receiver
from tests.serving import served

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "screenshots"
README_PICTURE = ROOT / "docs" / "images" / "virtual-phone.png"
PASSWORD = "a console password for the browser test"
PHOTO_SIZE = (480, 320)


@dataclass
class Served:
    url: str
    store: Store
    caller: Caller
    receiver: Receiver


@pytest.fixture
async def gateway(store: Store, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    # media may not come from loopback: the uploads reach the media stage without HTTP (mmsgate.media.uploads)
    settings: Settings = gateway_settings(tmp_path, "sqlite", request, media_allow_networks="")
    await set_password(store.console, PASSWORD)
    account = await store.accounts.create_account("Coffee shop")  # a fixed name: the README's picture shows it
    _, api_key = await store.accounts.create_key(account.id)
    campaign = await store.numbers.create_campaign(account.id)
    await store.numbers.add_number(account.id, "28444", NumberKind.SHORT_CODE, campaign.service_id)
    caller = Caller(account.id, api_key, campaign.service_id, "28444")
    async with contextlib.AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(running_receiver())
        await store.accounts.update_account(caller.account_id, postback_url=receiver.url("/postbacks"))
        app = create_app(settings, store)
        running = await stack.enter_async_context(running_worker(settings, store))
        app.state.endpoint.after_accept = running.wake
        url = await stack.enter_async_context(served(app))
        await store.values.set_value(PUBLIC_URL, url)  # as `mmsgate serve` announces where it listens
        yield Served(url, store, caller, receiver)


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"console-{name}.png", full_page=True)


async def test_send_an_mms_see_it_on_the_phone_and_answer(browser: Browser, gateway: Served) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=2)
    context.set_default_timeout(30_000)
    page = await context.new_page()
    errors: list[str] = []
    failed: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)  # a policy violation among them

    def answered(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            failed.append(f"{response.status} {response.url}")

    page.on("console", console)
    page.on("response", answered)
    caller, url = gateway.caller, gateway.url

    # without the password, the console is the login page
    await page.goto(f"{url}/console/messages")
    await expect(page).to_have_url(f"{url}/console/login?next=%2Fconsole%2Fmessages")
    await screenshot(page, "login")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{url}/console/messages")
    await expect(page.get_by_role("heading", name="Messages")).to_be_visible()

    # a test MMS from the console: a photo, a voice note and a contact card, uploaded from the browser
    await page.get_by_role("link", name="Send", exact=True).click()
    await page.locator("select[name=account]").select_option(caller.account_id)
    await page.locator("select[name='service-id']").select_option(caller.service_id)
    await page.locator("select[name=from]").select_option(caller.sender)
    await page.locator("input[name=to]").fill(caller.to)
    await page.locator("input[name='message-subject']").fill("Photos from our trip")
    await page.locator("textarea[name='slide1-text']").fill("Here is the view from the summit!")
    photo = samples.jpeg(*PHOTO_SIZE)
    await page.locator("input[name='slide1-file']").set_input_files(
        {"name": "summit.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    await page.locator("textarea[name='slide2-text']").fill("A voice note from the top")
    await page.locator("input[name='slide2-file']").set_input_files(
        {"name": "note.mp3", "mimeType": "audio/mpeg", "buffer": samples.mp3(1.5)}
    )
    await page.locator("textarea[name='slide3-text']").fill("My new number")
    await page.locator("input[name='slide3-file']").set_input_files(
        {"name": "jane.vcf", "mimeType": "text/vcard", "buffer": samples.vcard()}
    )
    await screenshot(page, "send")
    await page.get_by_role("button", name="Send", exact=True).click()

    # the message page: its timeline follows the delivery (N101, then N102) without a reload
    await expect(page).to_have_url(re.compile(re.escape(f"{url}/console/messages/") + "[0-9a-f-]{36}$"))
    tracking_id = page.url.rsplit("/", 1)[1]
    timeline = page.locator("table.timeline")
    await expect(timeline).to_contain_text("N101")
    await expect(timeline).to_contain_text("N102")
    await expect(page.locator("h1 .state")).to_have_text("delivered")
    await expect(page.locator("figure.preview img").first).to_be_visible()
    await screenshot(page, "message")

    # the phone: the MMS as a handset shows it, the picture decoded at its natural size
    await page.locator("dl.facts").get_by_role("link", name=caller.to).click()
    await expect(page).to_have_url(f"{url}/console/phones/{caller.to}")
    bubble = page.locator(f"article.bubble.in[data-tracking-id='{tracking_id}']")
    await expect(bubble.get_by_role("heading", name="Photos from our trip")).to_be_visible()
    image = bubble.locator("img")
    await image.evaluate("img => img.decode()")
    assert await image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == list(PHOTO_SIZE)
    assert await image.evaluate("img => img.getBoundingClientRect().width") > 100
    await expect(bubble.get_by_text("Here is the view from the summit!")).to_be_visible()
    await expect(bubble.get_by_text("A voice note from the top")).to_be_visible()
    audio = bubble.locator("audio")
    await audio.evaluate(
        "a => a.readyState >= 1 || new Promise(ok => a.addEventListener('loadedmetadata', ok, {once: true}))"
    )
    assert await audio.evaluate("a => a.duration") > 1.0
    await expect(bubble.locator("a.attachment")).to_contain_text(".vcf")
    await screenshot(page, "phone")
    README_PICTURE.parent.mkdir(parents=True, exist_ok=True)
    phone = page.locator("section.phone")
    await phone.screenshot(path=SCREENSHOTS / "console-virtual-phone.png")
    if os.environ.get("MMSGATE_UPDATE_README_PICTURE") == "1":  # the committed picture changes only on purpose
        await phone.screenshot(path=README_PICTURE)

    # the phone answers with a picture: the account's receiver gets the N401
    compose = page.locator("form.compose")
    await expect(compose.locator("select[name=to]")).to_have_value(caller.sender)  # who wrote last
    await compose.locator("input[name=subject]").fill("Re: Photos")
    await compose.locator("textarea[name=text]").fill("Wonderful, thanks!")
    reply = samples.png(160, 120)
    await compose.locator("input[name=files]").set_input_files(
        {"name": "smile.png", "mimeType": "image/png", "buffer": reply}
    )
    await compose.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("status")).to_contain_text("N401")

    received = await gateway.receiver.wait_for(lambda got: any(r.json.get("code") == "N401" for r in got))
    (mo,) = [r for r in received if r.json.get("code") == "N401"]
    assert (mo.json["from"], mo.json["to"], mo.json["message-subject"]) == (caller.to, caller.sender, "Re: Photos")
    files = [c["file"] for c in mo.json["content"]]
    assert [f.rsplit("/", 1)[1] for f in files] == ["1.txt", "2.png"]
    async with httpx.AsyncClient() as http:
        assert (await http.get(files[1])).content == reply
    sent = page.locator("article.bubble.out")
    await expect(sent).to_contain_text("Wonderful, thanks!")
    await sent.locator("img").evaluate("img => img.decode()")
    assert await sent.locator("img").evaluate("img => img.naturalWidth") == 160

    # the other pages
    await page.get_by_role("link", name="Messages", exact=True).click()
    row = page.locator("#rows tbody tr").first
    await expect(row).to_contain_text(tracking_id)
    await expect(row.locator(".state")).to_have_text("delivered")
    await screenshot(page, "messages")
    await page.get_by_role("link", name="Phones", exact=True).click()
    await expect(page.locator("#rows")).to_contain_text(caller.to)
    await screenshot(page, "phones")
    async with httpx.AsyncClient(base_url=url) as http:
        saved = await http.post(
            "/ep/v2/",
            json={"action": "savemms", "name": "Weekly offer", "slide": [{"message-text": "20% off this week"}]},
            headers={"x-api-key": caller.api_key},
        )
    mms_id = saved.json()["mms-id"]
    await page.get_by_role("link", name="Templates", exact=True).click()
    await expect(page.locator("#rows tbody tr")).to_contain_text("ready")
    await screenshot(page, "templates")
    await page.get_by_role("link", name="Weekly offer").click()
    await expect(page).to_have_url(f"{url}/console/templates/{mms_id}")
    await expect(page.locator("table.timeline")).to_contain_text("N003")

    assert errors == [] and failed == []
    await context.close()
