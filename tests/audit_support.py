"""Helpers for the audit tests: a writer on a temporary directory, files as lists of lines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.audit.chain import Chain
from service.audit.files import log_files
from service.audit.writer import AuditWriter


def ticking(
    start: datetime = datetime(2025, 6, 1, tzinfo=UTC), step: timedelta = timedelta(seconds=1)
) -> Callable[[], datetime]:
    """A clock that moves `step` on every call."""
    now = [start - step]

    def clock() -> datetime:
        now[0] += step
        return now[0]

    return clock


def write_log(
    directory: Path, count: int = 8, *, key: bytes | None = None, max_bytes: int = 1 << 20, **kwargs: object
) -> list[Path]:
    """A closed log: `started`, `count` decision-like records, `stopped`; returns its files."""
    options: dict[str, Any] = {"clock": ticking(), **kwargs}
    writer = AuditWriter(directory, node="n1", chain=Chain(key), max_bytes=max_bytes, **options)
    writer.open()
    writer.write("started", {"pid": writer.pid})
    for i in range(count):
        writer.write("decision", {"decision_id": f"d{i}", "i": i})
    writer.write("stopped", {"pid": writer.pid, "reason": "exit"})
    writer.close()
    return log_files([directory])


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, new_lines: list[bytes]) -> None:
    path.write_bytes(b"".join(new_lines))


class Clock:
    """A clock the test moves by setting `now`: an app decides and logs at `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
