"""Reads records from one or many audit directories: per file, or merged by time across nodes."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from service.audit.files import log_files, parse_name

Record = dict[str, Any]


def file_records(path: Path) -> Iterator[Record]:
    """The readable records of one file, in order; a torn or unreadable line is skipped (verify names it)."""
    with path.open("rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def files_between(directories: Sequence[Path], start: str | None, end: str | None) -> list[Path]:
    """Files that can hold records with `start <= ts < end` (ISO text). A file holds one UTC day only,
    as writers rotate daily, so its name tells which day."""
    chosen = []
    for path in log_files(directories):
        parts = parse_name(path.name)
        day = parts.opened.strftime("%Y-%m-%d") if parts else None
        if day is not None and ((start and day < start[:10]) or (end and day > end[:10])):
            continue
        chosen.append(path)
    return chosen


def in_range(record: Record, start: str | None, end: str | None, field: str = "ts") -> bool:
    """`start <= record[field] < end` (ISO text; `ts` when written, `at` when decided for)."""
    ts = str(record.get(field, ""))
    return (start is None or ts >= start) and (end is None or ts < end)


def merged(paths: Iterable[Path]) -> Iterator[Record]:
    """Records of many files in time order (each file is already in order)."""
    return heapq.merge(*(file_records(p) for p in paths), key=lambda r: str(r.get("ts", "")))


def records(
    directories: Sequence[Path], start: str | None = None, end: str | None = None
) -> Iterator[Record]:
    """Every record of `directories` with `start <= ts < end`, merged by time."""
    for record in merged(files_between(directories, start, end)):
        if in_range(record, start, end):
            yield record


def find_decision(directories: Sequence[Path], decision_id: str) -> Record | None:
    """The record of one decision. Decision ids are UUIDv7, so files opened after it are skipped."""
    day = _uuid7_day(decision_id)
    for path in reversed(files_between(directories, None, day + "T99" if day else None)):
        needle = f'"decision_id":"{decision_id}"'.encode()
        with path.open("rb") as f:
            for line in f:
                if needle in line and line.endswith(b"\n"):
                    record: Record = orjson.loads(line)
                    return record
    return None


def _uuid7_day(decision_id: str) -> str | None:
    """The UTC day of a UUIDv7's time, a minute late (its record is written just after it is made)."""
    hex_digits = decision_id.replace("-", "")
    if len(hex_digits) != 32 or hex_digits[12] != "7":
        return None
    try:
        return datetime.fromtimestamp(int(hex_digits[:12], 16) / 1000 + 60, UTC).strftime("%Y-%m-%d")
    except (ValueError, OverflowError, OSError):  # not hex, or a time no calendar holds
        return None
