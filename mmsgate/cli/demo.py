"""The demo account that `mmsgate serve` creates on first start, so the README's curl works at once."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mmsgate.core.model import NumberKind
from mmsgate.errors import Conflict
from mmsgate.store import Store

DEMO_FILE = "demo.json"
DEMO_TO = "15550100001"
"""A sandbox handset number: the sandbox carrier delivers to it."""
DEMO_SHORT_CODES = ("28444", "28445", "28446", "28447", "28448")


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    account_id: str
    api_key: str
    service_id: str
    sender: str
    to: str

    def to_json(self) -> dict[str, str]:
        data = asdict(self)
        data["from"] = data.pop("sender")
        return data

    @classmethod
    def from_json(cls, data: dict[str, str]) -> DemoCredentials:
        return cls(data["account_id"], data["api_key"], data["service_id"], data["from"], data["to"])


def read_demo(data_dir: Path) -> DemoCredentials | None:
    path = data_dir / DEMO_FILE
    if not path.exists():
        return None
    return DemoCredentials.from_json(json.loads(path.read_text(encoding="utf-8")))


async def ensure_demo(store: Store, data_dir: Path) -> tuple[DemoCredentials, bool]:
    """The demo credentials, creating the account on first start. The bool says whether it is new."""
    existing = await asyncio.to_thread(read_demo, data_dir)
    if existing is not None:
        return existing, False
    account = await store.accounts.create_account("demo")
    _, api_key = await store.accounts.create_key(account.id)
    campaign = await store.numbers.create_campaign(account.id)
    for number in DEMO_SHORT_CODES:
        try:
            await store.numbers.add_number(account.id, number, NumberKind.SHORT_CODE, campaign.service_id)
        except Conflict:
            continue
        break
    else:
        raise Conflict("every demo short code is taken in this database")
    demo = DemoCredentials(account.id, api_key, campaign.service_id, number, DEMO_TO)
    await asyncio.to_thread(_write_demo, data_dir, demo)
    return demo, True


def _write_demo(data_dir: Path, demo: DemoCredentials) -> None:
    """Readable by the owner only: the file holds an API key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / DEMO_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(demo.to_json(), f, indent=2)
        f.write("\n")
