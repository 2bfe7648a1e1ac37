"""The browser tests (fixtures ``browser`` and ``page`` come from tests/browser_support.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def backend() -> str:
    """What a browser sees does not depend on the store: these tests run on SQLite only."""
    return "sqlite"
