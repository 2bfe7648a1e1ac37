"""Where PostgreSQL reads differently from the shared SQL: point reads made at the same moment go as one
query (:class:`~mmsgate.store.postgres.lookups.Lookups`), and a job claim reads each deliver job's message in
the same statement. On a database across a network each saves a round trip per job."""

from __future__ import annotations

from mmsgate.core.codes import JobKind
from mmsgate.core.model import Message
from mmsgate.core.records import Behaviour, Handset, SandboxSubmission
from mmsgate.errors import NotFound
from mmsgate.store.postgres.lookups import Lookups
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.jobs import SqlJobQueue
from mmsgate.store.sql.messages import SqlMessages
from mmsgate.store.sql.rows import JOB_COLUMNS, MESSAGE_READ_COLUMNS, Row, Statement, message_row
from mmsgate.store.sql.sandbox import SUBMISSION_COLUMNS, SqlSandbox, submission_row

_CLAIMED_MESSAGE_COLUMNS = ", ".join(f"m.{column.strip()}" for column in MESSAGE_READ_COLUMNS.split(","))


class PgMessages(SqlMessages):
    """Messages read by id in batches: the jobs a worker claimed together each read their message at once."""

    def __init__(self, db: SqlDatabase) -> None:
        super().__init__(db)
        self._messages: Lookups[str, Row] = Lookups(self._messages_by_id)

    async def find_message(self, tracking_id: str) -> Message:
        # the jobs a worker claimed together each read their message at once: one query for all
        row = await self._messages.get(tracking_id)
        if row is None:
            raise NotFound(f"no message {tracking_id}")
        return message_row(row)

    async def _messages_by_id(self, tracking_ids: list[str]) -> dict[str, Row]:
        rows = await self._db.read(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE tracking_id = ANY(?)", (tracking_ids,)
        )
        return {row[0]: row for row in rows}


class PgSandbox(SqlSandbox):
    """Handsets and submissions read in batches: the sandbox submits and reports of jobs that go on
    together each read theirs at once."""

    def __init__(self, db: SqlDatabase) -> None:
        super().__init__(db)
        self._handsets: Lookups[str, Row] = Lookups(self._handsets_by_number)
        self._submissions: Lookups[str, Row] = Lookups(self._submissions_by_key)

    async def get_handset(self, number: str) -> Handset:
        # the sandbox submits of jobs that go on together each read their handset: one query for all
        row = await self._handsets.get(number)
        return Handset(number) if row is None else Handset(number, Behaviour(row[1]), float(row[2]))

    async def _handsets_by_number(self, numbers: list[str]) -> dict[str, Row]:
        rows = await self._db.read(
            "SELECT number, behaviour, delay FROM sandbox_handsets WHERE number = ANY(?)", (numbers,)
        )
        return {row[0]: row for row in rows}

    async def sandbox_submission(self, key: str) -> SandboxSubmission | None:
        # ... and so do the sandbox reports that start together
        row = await self._submissions.get(key)
        return None if row is None else submission_row(row)

    async def _submissions_by_key(self, keys: list[str]) -> dict[str, Row]:
        rows = await self._db.read(
            f"SELECT {SUBMISSION_COLUMNS} FROM sandbox_submissions "
            "WHERE submission_id = ANY(?) OR carrier_message_id = ANY(?)",
            (keys, keys),
        )
        found: dict[str, Row] = {}
        for row in rows:
            found[row[0]] = found[row[1]] = row
        return found


class PgJobQueue(SqlJobQueue):
    """Claims that read each deliver job's message in the same statement."""

    async def _claim_jobs(self, statement: Statement) -> list[tuple[Row, Row | None]]:
        # a deliver job's handler reads its message first: the claim reads it too, in the same round trip
        sql, params = statement
        width = len(JOB_COLUMNS.split(","))
        rows = await self._db.claim(
            (
                f"WITH claimed AS ({sql}) SELECT claimed.*, {_CLAIMED_MESSAGE_COLUMNS} FROM claimed "
                f"LEFT JOIN messages m ON claimed.kind = '{JobKind.DELIVER.value}' AND m.tracking_id = claimed.ref",
                params,
            )
        )
        return [(row[:width], row[width:] if row[width] is not None else None) for row in rows]
