"""The store's PostgreSQL sessions: one caller at a time each, opened on demand, dropped when their state
is not known."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from mmsgate.store.postgres.sessions import Sessions

pytestmark = pytest.mark.postgres


@pytest.fixture
async def one(pg_url: str) -> AsyncIterator[Sessions]:
    """A set of one session."""
    sessions = Sessions(pg_url, 1, wait_timeout=0.2)
    yield sessions
    await sessions.close()


async def test_callers_beyond_the_size_wait_for_a_session_given_back(pg_url: str) -> None:
    sessions = Sessions(pg_url, 2, wait_timeout=10)
    release = asyncio.Event()
    both_taken = asyncio.Event()
    pids: list[int] = []

    async def use() -> None:
        async with sessions.session() as conn:
            pids.append(int(await conn.fetchval("SELECT pg_backend_pid()")))
            if len(pids) == 2:
                both_taken.set()
            await release.wait()

    try:
        first = [asyncio.create_task(use()) for _ in range(2)]
        await asyncio.wait_for(both_taken.wait(), timeout=10)
        third = asyncio.create_task(use())
        done, _ = await asyncio.wait([third], timeout=0.2)
        assert not done, "a third caller got a session while both were taken"
        release.set()
        await asyncio.wait_for(asyncio.gather(*first, third), timeout=10)
        assert len(set(pids)) == 2 and pids[2] in pids[:2]  # never more than two sessions
    finally:
        await sessions.close()


async def test_a_wait_for_a_session_ends_after_its_timeout(one: Sessions) -> None:
    async with one.session():
        with pytest.raises(TimeoutError):
            async with one.session():
                pass
    async with one.session() as conn:  # the timed-out wait left nothing behind
        assert await conn.fetchval("SELECT 1") == 1


async def backend(sessions: Sessions) -> int:
    async with sessions.session() as conn:
        return int(await conn.fetchval("SELECT pg_backend_pid()"))


async def test_a_session_whose_server_end_died_is_replaced(one: Sessions, pg_url: str) -> None:
    pid = await backend(one)
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    # a use may fail if the session's end was not read yet (the store says "unavailable"); a session is
    # never given back in that state, so the next use has a new one
    pids: list[int | None] = []
    for _ in range(2):
        try:
            pids.append(await backend(one))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError):
            pids.append(None)
    assert pids[-1] is not None and pids[-1] != pid, pids


async def test_a_session_whose_use_was_cancelled_is_not_reused(one: Sessions, pg_url: str) -> None:
    running = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"

    async def slow() -> None:
        async with one.session() as conn:
            await conn.execute("SELECT pg_sleep(30)")

    observer = await asyncpg.connect(pg_url)
    try:
        task = asyncio.create_task(slow())
        async with asyncio.timeout(10):  # cancelled once the server runs it (a cancel sent earlier is lost)
            while not await observer.fetchval(running):  # noqa: ASYNC110 - the server's state, polled
                await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with one.session() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        async with asyncio.timeout(10):  # the statement of the dropped session was cancelled on the server
            while await observer.fetchval(running):  # noqa: ASYNC110 - the server's state, polled
                await asyncio.sleep(0.02)
    finally:
        await observer.close()


async def test_a_statement_the_server_refuses_keeps_the_session(one: Sessions) -> None:
    pid = await backend(one)
    with pytest.raises(asyncpg.PostgresError):
        async with one.session() as conn, conn.transaction():
            await conn.execute("SELECT 1/0")
    async with one.session() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid
        assert not conn.is_in_transaction()
