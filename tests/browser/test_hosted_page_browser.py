"""The hosted page of a fallback SMS in a real browser (headless Chromium), served by uvicorn for real.

It checks what only a browser can: the picture decodes, the video and audio load their metadata, the text
is visible on a phone-sized screen, the page's own policy blocks none of it, the PDF link downloads the
file. A screenshot of the page is saved to ``tests/screenshots/hosted-page.png`` (and
``hosted-page-dark.png``, in the dark colour scheme).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, Page, Response, expect

from mmsgate.app import create_app
from mmsgate.config import Settings
from mmsgate.core.model import MediaKind
from mmsgate.store import Store
from mmsgate.store.blobs import BlobStore
from tests.conftest import Caller
from tests.integration.test_hosted_page import audio_file, host_message, image_file, pdf_file, video_file
from tests.serving import served as serving

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


@pytest.fixture
async def served(store: Store, settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings, store)) as url:
        yield url


async def test_the_hosted_page_in_a_phone_browser(
    page: Page, served: str, store: Store, settings: Settings, caller: Caller
) -> None:
    blobs = BlobStore(settings.data_dir / "blobs")
    hosted = await host_message(
        store,
        blobs,
        caller,
        [
            ("Here is the view from the summit!\nBack on Sunday.", [image_file()]),
            ("A short clip of the way down", [video_file()]),
            (None, [audio_file()]),
            ("Your invoice for the trip is attached.", [pdf_file()]),
        ],
        subject="Photos from our trip",
    )
    image = hosted.part(MediaKind.IMAGE)
    pdf = hosted.part(MediaKind.PDF)
    errors: list[str] = []
    failed: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)  # a policy violation among them

    def answered(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):  # the page has no icon
            failed.append(f"{response.status} {response.url}")

    page.on("console", console)
    page.on("response", answered)

    response = await page.goto(served + hosted.url)
    assert response is not None and response.status == 200
    await expect(page).to_have_title("Photos from our trip")

    await page.wait_for_function("() => document.querySelector('img').complete")
    assert await page.evaluate("document.querySelector('img').naturalWidth") == image.width
    assert await page.evaluate("document.querySelector('img').naturalHeight") == image.height
    await page.wait_for_function("() => document.querySelector('video').readyState >= 1")
    await page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
    assert await page.evaluate("document.querySelector('video').videoWidth") == 160
    assert await page.evaluate("document.querySelector('audio').duration") > 1.0

    await expect(page.get_by_text("Here is the view from the summit!")).to_be_visible()
    await expect(page.get_by_text("Back on Sunday.")).to_be_visible()
    await expect(page.get_by_text("A short clip of the way down")).to_be_visible()
    await expect(page.get_by_role("heading", name="Photos from our trip")).to_be_visible()
    # the inline style sheet is allowed by the page's policy (its hash is right) and nothing was refused
    assert await page.evaluate("getComputedStyle(document.querySelector('.slide')).borderTopLeftRadius") == "14px"
    assert errors == [] and failed == []
    # readable on a 360 px wide phone: nothing wider than the screen
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert await page.evaluate("document.querySelector('img').getBoundingClientRect().width") <= 360

    async with page.expect_download() as started:
        await page.get_by_role("link", name="PDF document").click()
    download = await started.value
    assert download.suggested_filename == "document.pdf"
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == hosted.data[pdf.position]

    # the video plays to its end (every frame decodes); played, its loading spinner is gone for the screenshot
    await page.evaluate("const v = document.querySelector('video'); v.muted = true; v.play()")
    await page.wait_for_function("() => document.querySelector('video').ended", timeout=30_000)
    await page.evaluate("const v = document.querySelector('video'); v.currentTime = 0; v.muted = false")
    await page.wait_for_function(
        "() => { const v = document.querySelector('video'); return !v.seeking && v.currentTime === 0 }"
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / "hosted-page.png", full_page=True)
    await page.emulate_media(color_scheme="dark")
    await page.screenshot(path=SCREENSHOTS / "hosted-page-dark.png", full_page=True)

    # a picture opened on its own still shows (the files' policy sandboxes them but allows the viewer)
    alone = await page.goto(f"{served}{hosted.url}/{image.position}")
    assert alone is not None and alone.status == 200
    await page.wait_for_function("() => document.images.length === 1 && document.images[0].complete")
    assert await page.evaluate("document.images[0].naturalWidth") == image.width


async def test_an_expired_page_says_so_in_the_browser(
    page: Page, served: str, store: Store, settings: Settings, caller: Caller
) -> None:
    blobs = BlobStore(settings.data_dir / "blobs")
    gone = await host_message(store, blobs, caller, [("Too late", [image_file()])], expires_in=timedelta(seconds=-1))
    response = await page.goto(served + gone.url)
    assert response is not None and response.status == 410
    await expect(page.locator("body")).to_have_text("This content has expired.")
    response = await page.goto(f"{served}{gone.url}/1")
    assert response is not None and response.status == 410
