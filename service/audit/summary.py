"""Counts of decisions and of each notice shown, by day x country (x subdivision), fast over big logs."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from service.audit.reader import files_between

# One decision record, from its notices to the day of its `ts`. Records are canonical JSON (sorted keys,
# no spaces; `verify` insists on it), so these fields always come in this order; and `"name":` cannot
# match inside a string value, where every quote is escaped. A chunk where the count of matches differs
# from the count of decision records is read record by record instead (see `_count_chunk`).
_DECISION = re.compile(
    rb'"notices":\[((?:\{[^}]*\},?)*)\],"prev":"[0-9a-f]*","reader":\{"anonymized":(?:true|false),'
    rb'"country":(null|"[^"]*"),"languages":\[[^\]]*\],"network":(?:null|"[^"]*"),"source":"[a-z]*",'
    rb'"subdivision":(null|"[^"]*")\},"rules":\[[^\]]*\],"ruleset":"[^"]*","seq":\d+,"ts":"(\d{4}-\d\d-\d\d)'
)
_KIND = b'"kind":"decision"'
BLOCK = 1 << 22  # bytes read at a time
PART = 1 << 26  # bytes of a file given to one process
RawKey = tuple[bytes, bytes, bytes, bytes]  # notices, country, subdivision, day: as in the file


@dataclass
class Row:
    decisions: int = 0
    notices: Counter[str] = field(default_factory=Counter)


Key = tuple[str, str | None, str | None]  # day, country, subdivision (None unless asked for)


@dataclass(frozen=True, slots=True)
class Part:
    path: Path
    start: int
    end: int


def summarize(
    directories: Sequence[Path],
    start: str | None = None,
    end: str | None = None,
    *,
    by_subdivision: bool = False,
    processes: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[Key, Row]:
    """Decisions with `start <= day < end` (dates, YYYY-MM-DD), counted per key, sorted by key."""
    parts = _parts(files_between(directories, start, end))
    workers = processes or len(os.sched_getaffinity(0))
    raw: Counter[RawKey] = Counter()
    pool = ProcessPoolExecutor(min(workers, len(parts))) if workers > 1 and len(parts) > 1 else None
    results: Any = pool.map(_count_part, parts) if pool else map(_count_part, parts)
    for part, counted in zip(parts, results, strict=True):
        raw.update(counted)
        if progress is not None:
            progress(part.end - part.start)
    if pool is not None:
        pool.shutdown()
    return _rows(raw, start, end, by_subdivision)


def _parts(paths: list[Path]) -> list[Part]:
    parts = []
    for path in paths:
        size = path.stat().st_size
        parts += [Part(path, offset, min(size, offset + PART)) for offset in range(0, size, PART)]
    return parts


def _count_part(part: Part) -> Counter[RawKey]:
    """The lines that start within [start, end) of one file, counted by raw key."""
    counted: Counter[RawKey] = Counter()
    with part.path.open("rb") as f:
        if part.start:
            f.seek(part.start - 1)
            f.readline()  # skip to the first line that starts at or after `start`
        position = f.tell()
        while position < part.end:
            chunk = f.read(min(BLOCK, part.end - position))
            if not chunk:
                break
            if not chunk.endswith(b"\n"):
                chunk += f.readline()
                chunk = chunk[: chunk.rfind(b"\n") + 1]  # a torn last line was never answered
            position = f.tell()
            _count_chunk(chunk, counted)
    return counted


def _count_chunk(chunk: bytes, counted: Counter[RawKey]) -> None:
    found = _DECISION.findall(chunk)
    # Canonical lines: each has `"kind":"` once, and each decision matches the pattern once.
    if chunk.count(b'"kind":"') == chunk.count(b"\n") and len(found) == chunk.count(_KIND):
        counted.update(found)
        return
    for line in chunk.splitlines():  # not canonical somewhere: read each record in full
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") == "decision":
            counted[_raw_key(record)] += 1


def _raw_key(record: dict[str, Any]) -> RawKey:
    reader = record.get("reader") or {}
    notices = orjson.dumps(record.get("notices") or [])[1:-1]
    return (
        notices,
        orjson.dumps(reader.get("country")),
        orjson.dumps(reader.get("subdivision")),
        str(record.get("ts", ""))[:10].encode(),
    )


def _rows(raw: Counter[RawKey], start: str | None, end: str | None, by_subdivision: bool) -> dict[Key, Row]:
    rows: dict[Key, Row] = {}
    for (notices, country, subdivision, day_bytes), count in raw.items():
        day = day_bytes.decode()
        if (start and day < start[:10]) or (end and day >= end[:10]):
            continue
        key = (day, orjson.loads(country), orjson.loads(subdivision) if by_subdivision else None)
        row = rows.setdefault(key, Row())
        row.decisions += count
        for notice in orjson.loads(b"[" + notices + b"]"):
            row.notices[notice["id"]] += count
    return dict(sorted(rows.items(), key=lambda item: tuple(x or "" for x in item[0])))


def notice_ids(rows: dict[Key, Row]) -> list[str]:
    return sorted({n for row in rows.values() for n in row.notices})


def as_json(rows: dict[Key, Row], by_subdivision: bool) -> list[dict[str, Any]]:
    return [
        {"day": day, "country": country}
        | ({"subdivision": subdivision} if by_subdivision else {})
        | {"decisions": row.decisions, "notices": dict(sorted(row.notices.items()))}
        for (day, country, subdivision), row in rows.items()
    ]
