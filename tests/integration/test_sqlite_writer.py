"""SQLite's one writer: writes that wait go out together, each in its own savepoint, settled only after
the COMMIT that holds them; a write that fails fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mmsgate.errors import Conflict, StoreError
from mmsgate.store.sqlite.writer import SqliteWriter


class Counted:
    """A writer over a real SQLite file whose transactions are counted (each COMMIT of the connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread = ThreadPoolExecutor(1)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=0")
        self.conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        self.commits = 0
        self.conn.set_trace_callback(self._trace)
        self.writer = SqliteWriter(self.conn, self.thread, lambda exc: Conflict(str(exc)))

    def _trace(self, sql: str) -> None:
        if sql == "COMMIT":
            self.commits += 1

    def rows(self) -> list[tuple[int, str]]:
        other = sqlite3.connect(self.path)
        try:
            return other.execute("SELECT k, v FROM t ORDER BY k").fetchall()
        finally:
            other.close()

    async def insert(self, key: int, value: str) -> int:
        def body(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))
            return key

        return await self.writer.run(body)


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[Counted]:
    the_writer = Counted(tmp_path / "w.sqlite3")
    yield the_writer
    await the_writer.writer.drained()
    the_writer.thread.shutdown(wait=True)
    the_writer.conn.close()


async def test_writes_waiting_during_a_commit_go_out_together(counted: Counted) -> None:
    results = await asyncio.gather(*(counted.insert(k, f"v{k}") for k in range(50)))
    assert results == list(range(50))
    assert len(counted.rows()) == 50
    # the first write starts a transaction at once; the 49 queued meanwhile share the next one
    assert counted.commits == 2


async def test_a_failing_write_fails_alone(counted: Counted) -> None:
    await counted.insert(1, "first")
    outcomes = await asyncio.gather(
        counted.insert(2, "a"), counted.insert(1, "duplicate"), counted.insert(3, "b"), return_exceptions=True
    )
    assert outcomes[0] == 2 and outcomes[2] == 3
    assert isinstance(outcomes[1], Conflict)
    assert counted.rows() == [(1, "first"), (2, "a"), (3, "b")]


async def test_a_lane_runs_its_items_as_one_batch_and_isolates_the_one_at_fault(counted: Counted) -> None:
    batches: list[list[int]] = []

    def apply(conn: sqlite3.Connection, keys: list[int]) -> list[str]:
        batches.append(keys)
        conn.executemany("INSERT INTO t (k, v) VALUES (?, 'lane')", [(k,) for k in keys])
        return [f"ok {k}" for k in keys]

    lane = counted.writer.lane(apply, max_batch=100)
    await lane.submit(7)  # committed: 7 exists now
    busy = counted.insert(50, "keeps the writer busy")  # starts a transaction: the lane's items queue
    outcomes = await asyncio.gather(busy, *(lane.submit(k) for k in (5, 6, 7, 8)), return_exceptions=True)
    assert outcomes[1:3] == ["ok 5", "ok 6"] and outcomes[4] == "ok 8"
    assert isinstance(outcomes[3], StoreError)
    assert batches[1:] == [[5, 6, 7, 8], [5], [6], [7], [8]]  # together first, then one by one
    assert [k for k, _ in counted.rows()] == [5, 6, 7, 8, 50]


async def test_a_lane_never_puts_more_than_its_batch_in_one_transaction(counted: Counted) -> None:
    sizes: list[int] = []

    def apply(conn: sqlite3.Connection, keys: list[int]) -> list[None]:
        sizes.append(len(keys))
        conn.executemany("INSERT INTO t (k, v) VALUES (?, 'lane')", [(k,) for k in keys])
        return [None] * len(keys)

    lane = counted.writer.lane(apply, max_batch=10)
    await asyncio.gather(*(lane.submit(k) for k in range(35)))
    assert sizes == [1, 10, 10, 10, 4]
    assert len(counted.rows()) == 35


async def test_a_result_is_given_only_after_its_commit(counted: Counted) -> None:
    seen: list[int] = []

    async def insert_then_look(key: int) -> None:
        await counted.insert(key, "x")
        seen.append(len([k for k, _ in counted.rows() if k == key]))  # another connection sees it

    await asyncio.gather(*(insert_then_look(k) for k in range(20)))
    assert seen == [1] * 20


async def test_when_another_process_holds_the_lock_the_writer_waits_for_it_off_the_loop(counted: Counted) -> None:
    holder = sqlite3.connect(counted.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t (k, v) VALUES (100, 'other process')")
    pending = asyncio.ensure_future(counted.insert(1, "mine"))
    # the loop stays free while the write waits for the lock (in the writer thread): the timeout fires
    done, _ = await asyncio.wait([pending], timeout=0.2)
    assert not done

    def release() -> None:
        holder.execute("COMMIT")
        holder.close()

    threading.Thread(target=release).start()
    assert await asyncio.wait_for(pending, timeout=10) == 1
    assert counted.rows() == [(1, "mine"), (100, "other process")]
