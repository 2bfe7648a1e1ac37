"""The SQLite backend, the embedded default: one file in WAL mode, one writer (:mod:`.writer`)."""

from __future__ import annotations

from pathlib import Path

from mmsgate.store.backend import Store
from mmsgate.store.sqlite.database import SqliteDatabase


class SqliteStore(Store):
    """The store on one SQLite file."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", group_commit_max: int = 512) -> None:
        self.db: SqliteDatabase = SqliteDatabase(path, synchronous=synchronous, group_commit_max=group_commit_max)
        super().__init__(self.db)

    @property
    def path(self) -> Path:
        return self.db.path


__all__ = ["SqliteStore"]
