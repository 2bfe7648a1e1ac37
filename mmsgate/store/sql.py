"""The Store's domain operations, written once in SQL that SQLite and PostgreSQL both run.

Backends supply four primitives (read, write in one transaction, write many in one transaction,
and the row-locking clause) plus error translation; everything else lives here. Placeholders are
``?``; the PostgreSQL backend rewrites them.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mmsgate.core import lifecycle
from mmsgate.core.codes import EventCode, JobKind, MessageState, TemplateState
from mmsgate.core.model import (
    Account,
    AccountConfig,
    ApiKey,
    BlockedNumber,
    Campaign,
    Event,
    Job,
    Message,
    NumberKind,
    Outgoing,
    Part,
    SenderNumber,
    Step,
    Template,
    from_epoch,
)
from mmsgate.errors import Conflict, NotFound
from mmsgate.store.base import Store
from mmsgate.store.group import Batcher, GroupCommitter
from mmsgate.store.rows import (
    ACCOUNT_COLUMNS,
    JOB_COLUMNS,
    KEY_COLUMNS,
    MESSAGE_COLUMNS,
    MESSAGE_READ_COLUMNS,
    OUTBOX_INSERT,
    PART_COLUMNS,
    QUEUED,
    RUNNING,
    TEMPLATE_COLUMNS,
    Params,
    Row,
    Statement,
    Unit,
    account_row,
    event_statement,
    hash_key,
    job_row,
    job_statement,
    key_row,
    message_row,
    outbox_statements,
    part_row,
    part_statements,
    sending_params,
    template_row,
)

__all__ = ["Params", "Row", "SqlStore", "Statement", "Unit", "changes_of", "grouped_statements"]


_ALL_KINDS = frozenset(JobKind)


def claim_statement(table: str, condition: str, skip_locked: str) -> str:
    """Lease the oldest due rows of a job-like table (``state``, ``run_at``, ``lease_until``): expired
    leases first, then queued rows that are due, each branch read in index order (one OR-ed query would
    sort every due row of a backlog on each claim). Parameters: (now, the condition's, limit) for each
    branch, then owner, lease end, now, and the limit again."""
    branch = (
        "SELECT id FROM (SELECT id FROM {table} WHERE state = '{state}' AND {column} {op} ?{condition} "
        "ORDER BY {column}, id LIMIT ?{skip_locked}) AS {alias}"
    )
    expired = branch.format(
        table=table,
        state="running",
        column="lease_until",
        op="<",
        condition=condition,
        skip_locked=skip_locked,
        alias="expired",
    )
    queued = branch.format(
        table=table,
        state="queued",
        column="run_at",
        op="<=",
        condition=condition,
        skip_locked=skip_locked,
        alias="queued",
    )
    return (
        f"WITH due AS ({expired} UNION ALL {queued}) "
        f"UPDATE {table} SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, "
        f"updated_at = ? FROM (SELECT id FROM due LIMIT ?) AS picked WHERE {table}.id = picked.id"
    )


def changes_of(units: Sequence[Unit], applied: Sequence[bool]) -> dict[str, list[Params]]:
    """The statements of the units whose guard held, grouped by SQL in order of first use, to run as one
    ``executemany`` each. Safe because the units of one batch touch distinct rows (every caller awaits
    its previous change before making the next), so no unit depends on another's statements."""
    grouped: dict[str, list[Params]] = {}
    for (_, then), held in zip(units, applied, strict=True):
        if held:
            for sql, params in then:
                grouped.setdefault(sql, []).append(params)
    return grouped


def grouped_statements(items: Sequence[Sequence[Statement]]) -> list[tuple[str, list[Params]]]:
    """The statements of several writes (accepted messages, say) grouped by SQL text in order of first
    use, each with its rows: one ``executemany`` each."""
    grouped: dict[str, list[Params]] = {}
    for statements in items:
        for sql, params in statements:
            grouped.setdefault(sql, []).append(params)
    return list(grouped.items())


class SqlStore(Store):
    """Domain operations over a SQL backend's primitives."""

    #: appended to the claim query's row selection to lock rows without waiting (PostgreSQL)
    skip_locked = ""

    #: the database's clock, in seconds since the epoch, as an SQL expression
    now_sql = ""
    #: guarded changes committed at once, each batch in its own transaction (SQLite has one writer)
    write_lanes = 1
    #: group commits of accepted messages and templates in flight at once (each on its own connection)
    accept_lanes = 1
    #: with a group commit under way, the least writes that open another lane
    accept_busy_batch = 1
    #: likewise for guarded changes
    write_busy_batch = 1

    def __init__(self, *, group_commit_max: int = 512) -> None:
        self._group_commit_max = group_commit_max
        self._committer: Batcher[list[Statement], None] | None = None
        self._units: Batcher[Unit, bool] | None = None
        self._outbox_listeners: list[Callable[[frozenset[str]], None]] = []

    def unindexed(self, column: str) -> str:
        """``column`` written so that the query planner does not pick an index for a condition on it."""
        return column

    # primitives -------------------------------------------------------------------------------
    @abc.abstractmethod
    async def _read(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one query; return its rows."""

    @abc.abstractmethod
    async def _write(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """Run the statements in one transaction; return each one's rows (from RETURNING)."""

    @abc.abstractmethod
    async def _write_many(self, batches: Sequence[tuple[str, list[Params]]]) -> None:
        """Run each statement once per parameter set, all in one transaction."""

    @abc.abstractmethod
    async def _apply_units(self, units: Sequence[Unit]) -> Sequence[bool | Exception]:
        """Run the units in one transaction: every guard first, in order, then the statements of the
        units whose guard returned a row, grouped by statement (:func:`changes_of`). Raise if nothing
        was committed; a backend that commits a batch in parts returns an exception as the result of each
        unit that failed in a later part (see :class:`mmsgate.store.group.GroupCommitter`)."""

    async def _claim(self, statement: Statement) -> list[Row]:
        """Run one statement that changes only leases (a claim of jobs or postbacks, a renewal); return
        its rows."""
        return (await self._write([statement]))[0]

    async def _start_group_commit(self) -> None:
        committer = GroupCommitter(
            self._flush_group, self._group_commit_max, self.accept_lanes, busy_batch=self.accept_busy_batch
        )
        committer.start()
        units = GroupCommitter(
            self._apply_units, self._group_commit_max, self.write_lanes, busy_batch=self.write_busy_batch
        )
        units.start()
        self._committer, self._units = committer, units

    async def _stop_group_commit(self) -> None:
        if self._committer is not None:
            await self._committer.close()
            self._committer = None
        if self._units is not None:
            await self._units.close()
            self._units = None

    async def _flush_group(self, items: list[list[Statement]]) -> list[None]:
        await self._write_many(grouped_statements(items))
        return [None] * len(items)

    async def _group(self, statements: list[Statement]) -> None:
        if self._committer is None:
            raise RuntimeError("store is not open")
        await self._committer.submit(statements)

    async def _unit(self, guard: Statement | None, *then: Statement) -> bool:
        """Commit a guarded change together with concurrent ones; True if its guard held."""
        if self._units is None:
            raise RuntimeError("store is not open")
        applied = await self._units.submit(Unit(guard, then))
        if applied and self._outbox_listeners:
            accounts = frozenset(params[1] for sql, params in then if sql is OUTBOX_INSERT)
            if accounts:
                for listener in self._outbox_listeners:
                    listener(accounts)
        return applied

    def on_outbox(self, listener: Callable[[frozenset[str]], None]) -> None:
        self._outbox_listeners.append(listener)

    async def _one(self, sql: str, params: Params, what: str) -> Row:
        rows = await self._read(sql, params)
        if not rows:
            raise NotFound(what)
        return rows[0]

    # accounts ---------------------------------------------------------------------------------
    async def create_account(self, name: str) -> Account:
        # every account gets a postback secret, so its postbacks are signed from the first one
        account = Account(id=f"acc_{secrets.token_hex(8)}", name=name, postback_secret=f"pbs_{secrets.token_hex(24)}")
        await self._write(
            [
                (
                    f"INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (account.id, name, False, True, None, account.postback_secret, 0, account.created_at.timestamp()),
                )
            ]
        )
        return account

    async def get_account(self, account_id: str) -> Account:
        row = await self._one(
            f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,), f"no account {account_id}"
        )
        return account_row(row)

    async def list_accounts(self) -> list[Account]:
        return [account_row(r) for r in await self._read(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at")]

    async def update_account(
        self,
        account_id: str,
        *,
        postback_url: str | None = None,
        postback_secret: str | None = None,
        transcoding: bool | None = None,
        disabled: bool | None = None,
        rate_limit: int | None = None,
    ) -> Account:
        given: dict[str, Any] = {}
        if postback_url is not None:
            given["postback_url"] = postback_url or None
        if postback_secret is not None:
            given["postback_secret"] = postback_secret or None
        if transcoding is not None:
            given["transcoding"] = transcoding
        if disabled is not None:
            given["disabled"] = disabled
        if rate_limit is not None:
            given["rate_limit"] = rate_limit
        if given:
            assignments = ", ".join(f"{column} = ?" for column in given)
            rows = await self._write(
                [
                    (
                        f"UPDATE accounts SET {assignments} WHERE id = ? RETURNING id",
                        (*given.values(), account_id),
                    )
                ]
            )
            if not rows[0]:
                raise NotFound(f"no account {account_id}")
        return await self.get_account(account_id)

    async def delete_account(self, account_id: str) -> None:
        rows = await self._write([("DELETE FROM accounts WHERE id = ? RETURNING id", (account_id,))])
        if not rows[0]:
            raise NotFound(f"no account {account_id}")

    async def account_config(self, account_id: str) -> AccountConfig:
        account = await self.get_account(account_id)
        campaigns = await self._read("SELECT service_id FROM campaigns WHERE account_id = ?", (account_id,))
        numbers = await self.list_numbers(account_id)
        blocked = await self._read("SELECT number FROM blocked_numbers WHERE account_id = ?", (account_id,))
        return AccountConfig(
            account=account,
            service_ids=frozenset(r[0] for r in campaigns),
            numbers={n.number: n for n in numbers},
            blocked=frozenset(r[0] for r in blocked),
        )

    # keys -------------------------------------------------------------------------------------
    async def create_key(self, account_id: str) -> tuple[ApiKey, str]:
        await self.get_account(account_id)
        secret = f"mmsk_{secrets.token_urlsafe(32)}"
        key = ApiKey(id=f"key_{secrets.token_hex(8)}", account_id=account_id, prefix=secret[:10])
        try:
            await self._write(
                [
                    (
                        f"INSERT INTO api_keys ({KEY_COLUMNS}, key_hash) VALUES (?, ?, ?, ?, ?, ?)",
                        (key.id, account_id, key.prefix, False, key.created_at.timestamp(), hash_key(secret)),
                    )
                ]
            )
        except NotFound as exc:
            raise NotFound(f"no account {account_id}") from exc
        return key, secret

    async def list_keys(self, account_id: str) -> list[ApiKey]:
        await self.get_account(account_id)
        rows = await self._read(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE account_id = ? ORDER BY created_at", (account_id,)
        )
        return [key_row(r) for r in rows]

    async def revoke_key(self, key_id: str) -> None:
        rows = await self._write([("UPDATE api_keys SET revoked = ? WHERE id = ? RETURNING id", (True, key_id))])
        if not rows[0]:
            raise NotFound(f"no key {key_id}")

    async def delete_key(self, key_id: str) -> None:
        rows = await self._write([("DELETE FROM api_keys WHERE id = ? RETURNING id", (key_id,))])
        if not rows[0]:
            raise NotFound(f"no key {key_id}")

    async def authenticate(self, api_key: str) -> tuple[ApiKey, Account] | None:
        key_columns = ", ".join(f"k.{c.strip()}" for c in KEY_COLUMNS.split(","))
        account_columns = ", ".join(f"a.{c.strip()}" for c in ACCOUNT_COLUMNS.split(","))
        rows = await self._read(
            f"SELECT {key_columns}, {account_columns} FROM api_keys k JOIN accounts a ON a.id = k.account_id "
            "WHERE k.key_hash = ?",
            (hash_key(api_key),),
        )
        if not rows:
            return None
        return key_row(rows[0][:5]), account_row(rows[0][5:])

    # campaigns, numbers, blocks -----------------------------------------------------------------
    async def create_campaign(self, account_id: str, postback_url: str | None = None) -> Campaign:
        await self.get_account(account_id)
        for _ in range(5):
            campaign = Campaign(
                service_id=str(10**9 + secrets.randbelow(9 * 10**9)),
                account_id=account_id,
                postback_url=postback_url,
            )
            try:
                await self._write(
                    [
                        (
                            "INSERT INTO campaigns (service_id, account_id, postback_url, created_at) "
                            "VALUES (?, ?, ?, ?)",
                            (campaign.service_id, account_id, postback_url, campaign.created_at.timestamp()),
                        )
                    ]
                )
            except Conflict:
                continue
            return campaign
        raise Conflict("could not find a free service-id")  # pragma: no cover - 1 in 10^40

    async def list_campaigns(self, account_id: str) -> list[Campaign]:
        await self.get_account(account_id)
        rows = await self._read(
            "SELECT service_id, account_id, postback_url, created_at FROM campaigns WHERE account_id = ? "
            "ORDER BY created_at",
            (account_id,),
        )
        return [Campaign(r[0], r[1], r[2], from_epoch(r[3])) for r in rows]

    async def delete_campaign(self, service_id: str) -> None:
        rows = await self._write([("DELETE FROM campaigns WHERE service_id = ? RETURNING service_id", (service_id,))])
        if not rows[0]:
            raise NotFound(f"no campaign {service_id}")

    async def add_number(
        self, account_id: str, number: str, kind: NumberKind, service_id: str | None = None
    ) -> SenderNumber:
        await self.get_account(account_id)
        if service_id is not None:
            owner = await self._read("SELECT account_id FROM campaigns WHERE service_id = ?", (service_id,))
            if not owner or owner[0][0] != account_id:
                raise NotFound(f"account {account_id} has no campaign {service_id}")
        try:
            await self._write(
                [
                    (
                        "INSERT INTO numbers (number, account_id, kind, service_id, created_at) VALUES (?, ?, ?, ?, ?)",
                        (number, account_id, kind.value, service_id, time.time()),
                    )
                ]
            )
        except Conflict as exc:
            raise Conflict(f"number {number} is already registered") from exc
        return SenderNumber(number=number, account_id=account_id, kind=kind, service_id=service_id)

    async def list_numbers(self, account_id: str) -> list[SenderNumber]:
        rows = await self._read(
            "SELECT number, account_id, kind, service_id FROM numbers WHERE account_id = ? ORDER BY number",
            (account_id,),
        )
        return [SenderNumber(r[0], r[1], NumberKind(r[2]), r[3]) for r in rows]

    async def remove_number(self, number: str) -> None:
        rows = await self._write([("DELETE FROM numbers WHERE number = ? RETURNING number", (number,))])
        if not rows[0]:
            raise NotFound(f"no number {number}")

    async def block_number(self, account_id: str, number: str) -> BlockedNumber:
        await self.get_account(account_id)
        try:
            await self._write(
                [
                    (
                        "INSERT INTO blocked_numbers (account_id, number, created_at) VALUES (?, ?, ?)",
                        (account_id, number, time.time()),
                    )
                ]
            )
        except Conflict:
            pass  # blocking twice is blocking
        return BlockedNumber(account_id=account_id, number=number)

    async def list_blocked(self, account_id: str) -> list[BlockedNumber]:
        await self.get_account(account_id)
        rows = await self._read(
            "SELECT account_id, number FROM blocked_numbers WHERE account_id = ? ORDER BY number",
            (account_id,),
        )
        return [BlockedNumber(r[0], r[1]) for r in rows]

    async def unblock_number(self, account_id: str, number: str) -> None:
        rows = await self._write(
            [
                (
                    "DELETE FROM blocked_numbers WHERE account_id = ? AND number = ? RETURNING number",
                    (account_id, number),
                )
            ]
        )
        if not rows[0]:
            raise NotFound(f"{number} is not blocked for account {account_id}")

    # messages and templates -------------------------------------------------------------------
    async def accept_message(self, message: Message) -> None:
        now = message.created_at.timestamp()
        await self._group(
            [
                (
                    f"INSERT INTO messages ({MESSAGE_COLUMNS}, updated_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        message.tracking_id,
                        message.account_id,
                        message.service_id,
                        message.to,
                        message.sender,
                        message.from_mask,
                        message.expires_at.timestamp(),
                        message.cache_content,
                        *sending_params(message.sending),
                        message.mms_id,
                        message.state.value,
                        now,
                        now,
                    ),
                ),
                job_statement(
                    JobKind.DELIVER, message.tracking_id, message.account_id, now, message.expires_at.timestamp()
                ),
            ]
        )

    async def accept_template(self, template: Template) -> None:
        now = template.created_at.timestamp()
        await self._group(
            [
                (
                    f"INSERT INTO templates ({TEMPLATE_COLUMNS}, updated_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        template.mms_id,
                        template.tracking_id,
                        template.account_id,
                        template.name,
                        *sending_params(template.sending),
                        template.state.value,
                        now,
                        now,
                    ),
                ),
                job_statement(JobKind.PREPARE_TEMPLATE, template.mms_id, template.account_id, now),
            ]
        )

    async def get_message(self, account_id: str, tracking_id: str) -> Message:
        row = await self._one(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE tracking_id = ? AND account_id = ?",
            (tracking_id, account_id),
            f"no message {tracking_id}",
        )
        return message_row(row)

    async def get_template(self, account_id: str, mms_id: str) -> Template:
        row = await self._one(
            f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE mms_id = ? AND account_id = ?",
            (mms_id, account_id),
            f"no template {mms_id}",
        )
        return template_row(row)

    async def set_template_state(
        self, mms_id: str, state: TemplateState, *, code: str | None, details: str, postback: Outgoing | None = None
    ) -> None:
        now = time.time()
        status = EventCode(code).status if code else state.value.capitalize()
        applied = await self._unit(
            (
                "UPDATE templates SET state = ?, updated_at = ? WHERE mms_id = ? RETURNING mms_id",
                (state.value, now, mms_id),
            ),
            event_statement("templates", "mms_id", mms_id, (code, status, details), now),
            *outbox_statements(postback, now),
        )
        if not applied:
            raise NotFound(f"no template {mms_id}")

    async def list_events(self, subject_id: str) -> list[Event]:
        rows = await self._read(
            "SELECT code, status, details, created_at FROM events WHERE subject_id = ? ORDER BY id",
            (subject_id,),
        )
        return [Event(r[0], r[1], r[2], from_epoch(r[3])) for r in rows]

    async def message_ids(self, tracking_ids: Sequence[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for start in range(0, len(tracking_ids), 500):
            chunk = tracking_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self._read(
                f"SELECT tracking_id, COUNT(*) FROM messages WHERE tracking_id IN ({marks}) GROUP BY tracking_id",
                chunk,
            )
            counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    # media outcomes ---------------------------------------------------------------------------
    async def find_message(self, tracking_id: str) -> Message:
        row = await self._one(
            f"SELECT {MESSAGE_READ_COLUMNS} FROM messages WHERE tracking_id = ?",
            (tracking_id,),
            f"no message {tracking_id}",
        )
        return message_row(row)

    async def find_template(self, mms_id: str) -> Template:
        row = await self._one(
            f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE mms_id = ?", (mms_id,), f"no template {mms_id}"
        )
        return template_row(row)

    async def media_ready(
        self,
        tracking_id: str,
        parts: Sequence[Part],
        *,
        code: str | None,
        status: str,
        details: str,
        postback: Outgoing | None = None,
        submitting: str | None = None,
    ) -> bool:
        now = time.time()
        state = MessageState.SUBMITTING if submitting else MessageState.MEDIA_READY
        then = [  # an accepted message has no parts yet: nothing to delete first
            *part_statements(parts),
            event_statement("messages", "tracking_id", tracking_id, (code, status, details), now),
            *outbox_statements(postback, now),
        ]
        if submitting:
            step = (None, "Submitting", f"to carrier {submitting}")
            then.append(event_statement("messages", "tracking_id", tracking_id, step, now))
        return await self._unit(
            (
                "UPDATE messages SET state = ?, updated_at = ?, carrier = COALESCE(?, carrier) "
                "WHERE tracking_id = ? AND state = ? RETURNING tracking_id",
                (state.value, now, submitting, tracking_id, MessageState.ACCEPTED.value),
            ),
            *then,
        )

    async def template_ready(
        self, mms_id: str, parts: Sequence[Part], *, details: str, postback: Outgoing | None = None
    ) -> bool:
        now = time.time()
        code = EventCode.TEMPLATE_READY
        return await self._unit(
            (
                "UPDATE templates SET state = ?, updated_at = ? WHERE mms_id = ? AND state = ? RETURNING mms_id",
                (TemplateState.READY.value, now, mms_id, TemplateState.PROCESSING.value),
            ),
            ("DELETE FROM parts WHERE owner_id = ?", (mms_id,)),
            *part_statements(parts),
            event_statement("templates", "mms_id", mms_id, (code.value, code.status, details), now),
            *outbox_statements(postback, now),
        )

    async def advance(self, step: Step) -> bool:
        unit = self._step_unit(step, time.time())
        return False if unit is None else await self._unit(unit[0], *unit[1])

    def _step_unit(self, step: Step, now: float) -> tuple[Statement, list[Statement]] | None:
        """The guard and the statements of a transition (None when no state leads to its target)."""
        origins = lifecycle.sources(step.target)
        if not origins:
            return None  # no state leads there (accepted): nothing to change
        then: list[Statement] = [
            event_statement("messages", "tracking_id", step.tracking_id, (step.code, step.status, step.details), now),
            *outbox_statements(step.postback, now),
        ]
        if step.close_job:
            then.append(
                (
                    "UPDATE jobs SET state = 'done', updated_at = ? WHERE kind = ? AND ref = ? AND state = ?",
                    (now, JobKind.DELIVER.value, step.tracking_id, QUEUED),
                )
            )
        if step.wake_job:
            then.append(
                (
                    "UPDATE jobs SET run_at = ?, updated_at = ? WHERE kind = ? AND ref = ? AND state = ?",
                    (now, now, JobKind.DELIVER.value, step.tracking_id, QUEUED),
                )
            )
        if step.finish_job is not None:
            then.append(
                (
                    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ? "
                    "WHERE id = ? AND lease_owner = ? AND state = ?",
                    (now, *step.finish_job, RUNNING),
                )
            )
        if step.job is not None:
            job_id, owner, run_at = step.job
            then.append(
                (
                    "UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, "
                    "updated_at = ? WHERE id = ? AND lease_owner = ? AND state = ?",
                    (run_at, now, job_id, owner, RUNNING),
                )
            )
        guard: Statement = (
            "UPDATE messages SET state = ?, updated_at = ?, carrier = COALESCE(?, carrier), "
            "carrier_message_id = COALESCE(?, carrier_message_id) "
            f"WHERE tracking_id = ? AND state IN ({', '.join('?' for _ in origins)}) RETURNING tracking_id",
            (
                step.target.value,
                now,
                step.carrier,
                step.carrier_message_id,
                step.tracking_id,
                *(o.value for o in origins),
            ),
        )
        return guard, then

    async def list_parts(self, owner_id: str) -> list[Part]:
        rows = await self._read(f"SELECT {PART_COLUMNS} FROM parts WHERE owner_id = ? ORDER BY position", (owner_id,))
        return [part_row(r) for r in rows]

    # jobs -------------------------------------------------------------------------------------
    async def claim_jobs(
        self, owner: str, *, limit: int, lease_seconds: float, kinds: Sequence[JobKind] | None = None
    ) -> list[Job]:
        now = time.time()
        kind_filter = ""
        kind_values: list[Any] = []
        if kinds and set(kinds) != _ALL_KINDS:
            # the filter must not steer the planner to the (kind, ref) index: that reads and sorts every
            # job of the kind, done ones included, instead of the due ones in jobs_due order
            kind_filter = f" AND {self.unindexed('kind')} IN ({', '.join('?' for _ in kinds)})"
            kind_values = [k.value for k in kinds]
        rows = await self._claim_jobs(
            (
                claim_statement("jobs", kind_filter, self.skip_locked)
                + f" RETURNING {', '.join('jobs.' + c.strip() for c in JOB_COLUMNS.split(','))}",
                (now, *kind_values, limit, now, *kind_values, limit, owner, now + lease_seconds, now, limit),
            )
        )
        jobs = (job_row(r, message_row(m) if m is not None else None) for r, m in rows)
        return sorted(jobs, key=lambda j: (j.run_at, j.id))

    async def _claim_jobs(self, statement: Statement) -> list[tuple[Row, Row | None]]:
        """Run a job claim: the rows of the jobs (JOB_COLUMNS), each with its message's row (of a deliver
        job) when the backend reads it with the claim, else None."""
        return [(row, None) for row in await self._claim(statement)]

    async def extend_leases(self, job_ids: Sequence[int], owner: str, *, lease_seconds: float) -> set[int]:
        now = time.time()
        held: set[int] = set()
        for start in range(0, len(job_ids), 500):
            chunk = job_ids[start : start + 500]
            rows = await self._claim(
                (
                    "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE lease_owner = ? AND state = ? "
                    f"AND id IN ({', '.join('?' for _ in chunk)}) RETURNING id",
                    (now + lease_seconds, now, owner, RUNNING, *chunk),
                )
            )
            held.update(int(r[0]) for r in rows)
        return held

    async def finish_job(self, job_id: int, owner: str) -> bool:
        return await self._unit(
            (
                "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (time.time(), job_id, owner, RUNNING),
            )
        )

    async def retry_job(self, job_id: int, owner: str, *, run_at: datetime, error: str | None) -> bool:
        return await self._unit(
            (
                "UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, "
                "last_error = COALESCE(?, last_error), updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND state = ? RETURNING id",
                (run_at.timestamp(), error, time.time(), job_id, owner, RUNNING),
            )
        )
