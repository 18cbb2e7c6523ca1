"""Where the auditors' tools read: the log directories, or the PostgreSQL store when one is given
(`--db`, HERALD_AUDIT_DB). The one place that switch is made; both give the same answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from service.audit import db, query, reader, summary
from service.audit.checkpoint import CHECKPOINTS
from service.audit.query import By, Filter, WhatIf
from service.audit.reader import Record
from service.audit.replay import Engines
from service.audit.summary import Key, Row
from service.audit.verify import Report
from service.audit.verify import verify as verify_files
from service.config import Settings


class Source(Protocol):
    def select(self, where: Filter) -> Iterator[Record]: ...
    def find_decision(self, decision_id: str) -> dict[str, Any] | None: ...
    def summarize(
        self,
        start: str | None,
        end: str | None,
        *,
        by_subdivision: bool = False,
        by: By = "logged",
        what_if: WhatIf = "exclude",
        progress: Callable[[int], None] | None = None,
    ) -> dict[Key, Row]: ...
    def size(self, where: Filter) -> int: ...
    def engines(self) -> Engines: ...
    def verify(
        self,
        key: bytes | None,
        checkpoint_dirs: Sequence[Path] | None = None,
        witnesses: Sequence[Path] = (),
        now: datetime | None = None,
    ) -> Report: ...
    def close(self) -> None: ...
    def __enter__(self) -> Source: ...
    def __exit__(self, *exc: object) -> None: ...


class FileSource:
    """The hash-chained files of one or many log directories (one per node)."""

    def __init__(self, directories: Sequence[Path], threads: int | None = None) -> None:
        self.directories = list(directories)
        self.threads = threads

    def select(self, where: Filter) -> Iterator[Record]:
        return query.query(self.directories, where)

    def find_decision(self, decision_id: str) -> dict[str, Any] | None:
        return reader.find_decision(self.directories, decision_id)

    def summarize(
        self,
        start: str | None,
        end: str | None,
        *,
        by_subdivision: bool = False,
        by: By = "logged",
        what_if: WhatIf = "exclude",
        progress: Callable[[int], None] | None = None,
    ) -> dict[Key, Row]:
        return summary.summarize(
            self.directories,
            start,
            end,
            by_subdivision=by_subdivision,
            by=by,
            what_if=what_if,
            threads=self.threads,
            progress=progress,
        )

    def size(self, where: Filter) -> int:
        return sum(p.stat().st_size for p in query.candidate_files(self.directories, where))

    def engines(self) -> Engines:
        return Engines(self.directories)

    def verify(
        self,
        key: bytes | None,
        checkpoint_dirs: Sequence[Path] | None = None,
        witnesses: Sequence[Path] = (),
        now: datetime | None = None,
    ) -> Report:
        """Against `checkpoint_dirs` (default: each directory's own checkpoints/)."""
        own = [d / CHECKPOINTS for d in self.directories] if checkpoint_dirs is None else checkpoint_dirs
        return verify_files(self.directories, key, own, witnesses, now)

    def close(self) -> None:
        return None

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DbSource:
    """The PostgreSQL store that `herald audit ship` fills from every node."""

    def __init__(self, url: str) -> None:
        from service.audit.store import StoreError, connect, require_current

        self.conn = connect(url)
        try:
            require_current(self.conn)
        except StoreError:
            self.conn.close()
            raise

    def select(self, where: Filter) -> Iterator[Record]:
        return db.records(self.conn, where)

    def find_decision(self, decision_id: str) -> dict[str, Any] | None:
        return db.find_decision(self.conn, decision_id)

    def summarize(
        self,
        start: str | None,
        end: str | None,
        *,
        by_subdivision: bool = False,
        by: By = "logged",
        what_if: WhatIf = "exclude",
        progress: Callable[[int], None] | None = None,
    ) -> dict[Key, Row]:
        return db.summarize(self.conn, start, end, by_subdivision=by_subdivision, by=by, what_if=what_if)

    def size(self, where: Filter) -> int:
        return 0  # the database aggregates on its side: no progress to show

    def engines(self) -> Engines:
        return Engines([], [db.DbArchive(self.conn)])

    def verify(
        self,
        key: bytes | None,
        checkpoint_dirs: Sequence[Path] | None = None,
        witnesses: Sequence[Path] = (),
        now: datetime | None = None,
    ) -> Report:
        """The chains in the database alone (checkpoint directories are the files' business)."""
        return db.verify(self.conn, key)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> DbSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(
    settings: Settings,
    db_url: str | None = None,
    directories: Sequence[Path] = (),
    threads: int | None = None,
) -> Source:
    """The database when a URL is given or set (HERALD_AUDIT_DB), else the directories (default:
    HERALD_AUDIT_DIR; DuckDB on `threads`). Raises `store.StoreError` when the database cannot be used."""
    url = db_url or (None if directories else settings.audit_db_url)  # directories given win
    if url:
        return DbSource(url)
    return FileSource(list(directories) or [settings.audit_dir], threads)
