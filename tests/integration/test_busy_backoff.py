"""A throttled message is tried again at least every 10 minutes while it lives, however long it is throttled.

The sandbox's throttling handset makes the carrier busy for real; the deliver job is claimed from the store
as a worker claims it and run through the engine at the attempt counts a message reaches when throttled
for hours and days (and past what a float can raise 2 to). Without the cap a message then waits for its
expiry, 3 days later, and is never sent even when the carrier frees up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mmsgate.carriers.base import Carrier
from mmsgate.carriers.routing import Router
from mmsgate.carriers.sandbox.carrier import SandboxCarrier
from mmsgate.common.cache import AccountSettings
from mmsgate.common.guard import AddressGuard
from mmsgate.core.codes import JobKind, MessageState
from mmsgate.core.model import Job, utcnow
from mmsgate.core.records import Behaviour, Handset
from mmsgate.core.retry import RetryPolicy
from mmsgate.delivery.engine import Delivery
from mmsgate.media.adapt import CarrierProfile
from mmsgate.media.fetch import Fetcher
from mmsgate.media.stage import MediaStage
from mmsgate.postbacks.events import PostbackBuilder
from mmsgate.store import Store
from mmsgate.store.blobs import BlobStore
from tests.conftest import Caller

CAP = RetryPolicy().cap
ATTEMPTS = [1, 2, 5, 8, 9, 10, 16, 40, 200, 432, 1025, 5000]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1, thread_name_prefix="media") as executor:
        yield executor


async def throttled_job(store: Store, caller: Caller, client: httpx.AsyncClient) -> tuple[Job, datetime]:
    """A text message accepted by the API for a handset whose network throttles, its deliver job claimed."""
    await store.sandbox.set_handset(Handset(caller.to, Behaviour.THROTTLES))
    response = await client.post(
        "/ep/v2/", json=caller.body(slide=[{"message-text": "hello"}]), headers={"x-api-key": caller.api_key}
    )
    assert response.json()["status"] == "success", response.json()
    (job,) = await store.jobs.claim_jobs("test", limit=1, lease_seconds=60.0, kinds=[JobKind.DELIVER])
    message = await store.messages.find_message(job.ref)
    assert message.expires_at - utcnow() > timedelta(days=2)  # the default expiry: 3 days
    return job, message.expires_at


async def test_a_busy_carrier_is_tried_again_within_the_cap_at_any_attempt(
    store: Store, caller: Caller, client: httpx.AsyncClient, pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    job, expires_at = await throttled_job(store, caller, client)
    accounts = AccountSettings(store.accounts)
    fetcher = Fetcher(AddressGuard())
    stage = MediaStage(fetcher, pool, BlobStore(tmp_path / "blobs"), CarrierProfile(), tmp_path / "spool")
    carriers: Router[Carrier] = Router(store.connections, {}, default=SandboxCarrier(store.sandbox))
    delivery = Delivery(
        store.messages, store.lifecycle, stage, carriers, PostbackBuilder(accounts), accounts, kept=store.reports
    )
    waits: dict[int, float] = {}
    try:
        for attempts in ATTEMPTS:
            before = utcnow()
            again = await delivery.run(dataclasses.replace(job, attempts=attempts, message=None))
            assert isinstance(again, datetime), (attempts, again)
            assert again < expires_at
            waits[attempts] = (again - before).total_seconds()
    finally:
        await fetcher.aclose()
    assert (await store.messages.find_message(job.ref)).state is not MessageState.FAILED
    assert all(wait <= CAP + 1.0 for wait in waits.values()), waits
    assert 4.0 <= waits[1] <= 6.0 and 9.0 <= waits[2] <= 11.0  # 5 s doubling...
    assert all(waits[a] >= CAP - 1.0 for a in ATTEMPTS if a >= 9), waits  # ...to the cap, and no further


def test_a_busy_carriers_own_hint_is_kept_under_the_cap() -> None:
    policy = RetryPolicy()
    assert policy.busy(3, 0.1) == 0.1
    assert policy.busy(3, 42.0) == 42.0
    assert policy.busy(3, 86_400.0) == CAP
    assert policy.busy(3, None) == policy.backoff(3) == 20.0
    assert policy.busy(10_000, None) == CAP
