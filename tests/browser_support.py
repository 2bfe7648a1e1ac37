"""Headless Chromium driven by Playwright, for tests of what the gateway serves to browsers: the fixtures
``browser`` and ``page`` (registered for every test by ``pytest_plugins`` in tests/conftest.py).

The browser is the system's Chromium (``chromium`` on the PATH, Debian's package); none is ever
downloaded. Without it the browser tests skip and say why, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 360, "height": 780}
"""A small phone's viewport, in CSS pixels."""


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "no `chromium` on the PATH (Debian: apt-get install chromium); the browser tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + ", and CI runs them")
        pytest.skip(reason)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page in a phone-sized context (downloads accepted), closed after the test."""
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, accept_downloads=True
    )
    context.set_default_timeout(20_000)
    try:
        yield await context.new_page()
    finally:
        await context.close()
