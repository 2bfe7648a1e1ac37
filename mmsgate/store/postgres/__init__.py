"""The PostgreSQL backend, for several API and worker processes on several machines sharing one database."""

from __future__ import annotations

from mmsgate.store.backend import Store
from mmsgate.store.postgres.database import PostgresDatabase
from mmsgate.store.postgres.reads import PgJobQueue, PgMessages, PgSandbox


class PostgresStore(Store):
    """The store on one PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 12, group_commit_max: int = 512) -> None:
        self.db: PostgresDatabase = PostgresDatabase(url, pool_size=pool_size, group_commit_max=group_commit_max)
        super().__init__(self.db, messages=PgMessages(self.db), jobs=PgJobQueue(self.db), sandbox=PgSandbox(self.db))


__all__ = ["PostgresStore"]
