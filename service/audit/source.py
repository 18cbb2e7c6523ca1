"""Where the auditors' tools read: the log directories, or the PostgreSQL store when one is given
(`--db`, HERALD_AUDIT_DB). The one place that switch is made; both give the same answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from service.audit import db, reader, summary
from service.audit.replay import Engines
from service.audit.summary import Key, Row
from service.audit.verify import Report
from service.audit.verify import verify as verify_files
from service.config import Settings


class Source(Protocol):
    def records(self, start: str | None, end: str | None, kind: str | None = "decision") -> Iterator[Any]: ...
    def find_decision(self, decision_id: str) -> dict[str, Any] | None: ...
    def summarize(
        self,
        start: str | None,
        end: str | None,
        *,
        by_subdivision: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> dict[Key, Row]: ...
    def size(self, start: str | None, end: str | None) -> int: ...
    def engines(self) -> Engines: ...
    def verify(self, key: bytes | None) -> Report: ...
    def close(self) -> None: ...
    def __enter__(self) -> Source: ...
    def __exit__(self, *exc: object) -> None: ...


class FileSource:
    """The hash-chained files of one or many log directories (one per node)."""

    def __init__(self, directories: Sequence[Path], threads: int | None = None) -> None:
        self.directories = list(directories)
        self.threads = threads

    def records(self, start: str | None, end: str | None, kind: str | None = "decision") -> Iterator[Any]:
        found = reader.records(self.directories, start, end)
        return found if kind is None else (r for r in found if r.get("kind") == kind)

    def find_decision(self, decision_id: str) -> dict[str, Any] | None:
        return reader.find_decision(self.directories, decision_id)

    def summarize(
        self,
        start: str | None,
        end: str | None,
        *,
        by_subdivision: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> dict[Key, Row]:
        return summary.summarize(
            self.directories,
            start,
            end,
            by_subdivision=by_subdivision,
            threads=self.threads,
            progress=progress,
        )

    def size(self, start: str | None, end: str | None) -> int:
        return sum(p.stat().st_size for p in reader.files_between(self.directories, start, end))

    def engines(self) -> Engines:
        return Engines(self.directories)

    def verify(self, key: bytes | None) -> Report:
        return verify_files(self.directories, key)

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

    def records(self, start: str | None, end: str | None, kind: str | None = "decision") -> Iterator[Any]:
        return db.records(self.conn, start, end, kind)

    def find_decision(self, decision_id: str) -> dict[str, Any] | None:
        return db.find_decision(self.conn, decision_id)

    def summarize(
        self,
        start: str | None,
        end: str | None,
        *,
        by_subdivision: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> dict[Key, Row]:
        return db.summarize(self.conn, start, end, by_subdivision=by_subdivision)

    def size(self, start: str | None, end: str | None) -> int:
        return 0  # the database aggregates on its side: no progress to show

    def engines(self) -> Engines:
        return Engines([], [db.DbArchive(self.conn)])

    def verify(self, key: bytes | None) -> Report:
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
