"""The store: every role of :mod:`mmsgate.core.roles` over one SQL database, built by composition.

Each role is an object of its own SQL module (``mmsgate.store.sql.*``), written once for both databases and
given the database's primitives; a backend differs only in its database (``SqliteDatabase``,
``PostgresDatabase``) and in the few reads it does its own way. Only the wiring (the ``mmsgate`` command, the
app, the worker runtime) and the tests hold a whole ``Store``; every other part takes the roles it needs.
"""

from __future__ import annotations

from mmsgate.core.roles import (
    Accepting,
    Accounts,
    Connections,
    ConsoleState,
    Incoming,
    JobQueue,
    KeptReports,
    Lifecycle,
    Messages,
    Numbers,
    Outbox,
    PostbackBacklog,
    Retention,
    SandboxState,
    SendWindows,
    Values,
)
from mmsgate.store.sql.accounts import SqlAccounts, SqlNumbers
from mmsgate.store.sql.console import SqlConsole
from mmsgate.store.sql.database import SqlDatabase
from mmsgate.store.sql.gateway import SqlConnections, SqlRetention, SqlSendWindows, SqlValues
from mmsgate.store.sql.incoming import SqlIncoming
from mmsgate.store.sql.jobs import SqlJobQueue
from mmsgate.store.sql.lifecycle import SqlLifecycle
from mmsgate.store.sql.messages import SqlAccepting, SqlMessages
from mmsgate.store.sql.outbox import SqlOutbox, SqlPostbackBacklog
from mmsgate.store.sql.reports import SqlKeptReports
from mmsgate.store.sql.sandbox import SqlSandbox


class Store:
    """Durable state of the gateway: one attribute per role, and the database's life (open, migrate,
    close)."""

    def __init__(
        self,
        db: SqlDatabase,
        *,
        messages: SqlMessages | None = None,
        jobs: SqlJobQueue | None = None,
        sandbox: SqlSandbox | None = None,
    ) -> None:
        self.db = db
        self.accounts: Accounts = SqlAccounts(db)
        self.numbers: Numbers = SqlNumbers(db)
        self.accepting: Accepting = SqlAccepting(db)
        self.messages: Messages = messages or SqlMessages(db)
        self.lifecycle: Lifecycle = SqlLifecycle(db)
        self.reports: KeptReports = SqlKeptReports(db)
        self.jobs: JobQueue = jobs or SqlJobQueue(db)
        self.outbox: Outbox = SqlOutbox(db)
        self.backlog: PostbackBacklog = SqlPostbackBacklog(db)
        self.incoming: Incoming = SqlIncoming(db)
        self.connections: Connections = SqlConnections(db)
        self.sandbox: SandboxState = sandbox or SqlSandbox(db)
        self.console: ConsoleState = SqlConsole(db)
        self.values: Values = SqlValues(db)
        self.windows: SendWindows = SqlSendWindows(db)
        self.retention: Retention = SqlRetention(db)

    @property
    def url(self) -> str:
        return self.db.url

    async def open(self) -> None:
        """Connect and start the batching writers. Does not migrate."""
        await self.db.open()

    async def close(self) -> None:
        """Flush pending group commits and disconnect."""
        await self.db.close()

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; return the ids applied."""
        return await self.db.migrate()
