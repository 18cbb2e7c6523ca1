"""Counts of decisions and of each notice shown, by day x country (x subdivision), fast over big logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.audit.query import TIME_FIELD, By, Filter, WhatIf, candidate_files, query

# DuckDB reads the JSON Lines in C++ on every core, only the fields asked for (measured: about twice
# the fastest pure-Python reader; see docs/audit.md). Lines that are not JSON (a torn tail) are skipped,
# as they were never answered; events have no reader and are filtered out by `kind`. `{time}` and
# `{what_if}` are filled from the fixed tables below, never from a caller's text.
_QUERY = """
SELECT substr("{time}", 1, 10) AS day, reader.country, reader.subdivision,
       list_transform(notices, lambda n: n.id) AS ids, count(*) AS decisions
FROM read_json(
    ?, format = 'newline_delimited', ignore_errors = true, maximum_object_size = 16777216,
    columns = {{kind: 'VARCHAR', ts: 'VARCHAR', "at": 'VARCHAR', what_if: 'BOOLEAN',
               reader: 'STRUCT(country VARCHAR, subdivision VARCHAR)', notices: 'STRUCT(id VARCHAR)[]'}})
WHERE kind = 'decision' AND "{time}" >= ? AND "{time}" < ? AND {what_if}
GROUP BY ALL
"""
_WHAT_IF = {"exclude": "what_if IS NOT TRUE", "include": "TRUE", "only": "what_if IS TRUE"}
BATCH = 1 << 30  # bytes of files read by one query (progress is reported between queries)


@dataclass
class Row:
    decisions: int = 0
    notices: Counter[str] = field(default_factory=Counter)


Key = tuple[str, str | None, str | None]  # day, country, subdivision (None unless asked for)


def summarize(
    directories: Sequence[Path],
    start: str | None = None,
    end: str | None = None,
    *,
    by_subdivision: bool = False,
    by: By = "logged",
    what_if: WhatIf = "exclude",
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[Key, Row]:
    """Decisions with `start <= time < end` (ISO text; the time `ts` or `at` as `by` says), counted per
    key (the day of that time), sorted by key. What-if decisions are left out unless `what_if` says.
    DuckDB when it is installed, else the same in Python (`summarize_python`)."""
    try:
        import duckdb  # 30 MB: loaded by the tools that summarize, not by every service worker
    except ImportError:
        fallback = summarize_python
        return fallback(directories, start, end, by_subdivision=by_subdivision, by=by, what_if=what_if)
    rows: dict[Key, Row] = {}
    sql = _QUERY.format(time=TIME_FIELD[by], what_if=_WHAT_IF[what_if])
    where = Filter(start, end, by=by, what_if=what_if)
    with duckdb.connect(config={"threads": threads} if threads else {}) as db:
        for batch in _batches(candidate_files(directories, where)):
            found = db.execute(sql, [[str(p) for p in batch], start or "", end or "~"])
            for day, country, subdivision, ids, count in found.fetchall():
                _add(rows, (day, country, subdivision if by_subdivision else None), ids or (), count)
            if progress is not None:
                progress(sum(p.stat().st_size for p in batch))
    return _sorted(rows)


def summarize_python(
    directories: Sequence[Path],
    start: str | None = None,
    end: str | None = None,
    *,
    by_subdivision: bool = False,
    by: By = "logged",
    what_if: WhatIf = "exclude",
) -> dict[Key, Row]:
    """`summarize` in plain Python, record by record: the fallback, and the reference it is tested against."""
    rows: dict[Key, Row] = {}
    for record in query(directories, Filter(start, end, by=by, what_if=what_if)):
        reader = record.get("reader") or {}
        ids = [n.get("id") for n in record.get("notices") or ()]
        subdivision = reader.get("subdivision") if by_subdivision else None
        _add(rows, (str(record.get(TIME_FIELD[by]))[:10], reader.get("country"), subdivision), ids, 1)
    return _sorted(rows)


def _add(rows: dict[Key, Row], key: Key, ids: Sequence[str], count: int) -> None:
    row = rows.setdefault(key, Row())
    row.decisions += count
    for notice in ids:
        row.notices[notice] += count


def _sorted(rows: dict[Key, Row]) -> dict[Key, Row]:
    return dict(sorted(rows.items(), key=lambda item: tuple(x or "" for x in item[0])))


def _batches(paths: list[Path]) -> list[list[Path]]:
    batches: list[list[Path]] = []
    size = BATCH
    for path in paths:
        if size >= BATCH:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += path.stat().st_size
    return batches


def notice_ids(rows: dict[Key, Row]) -> list[str]:
    return sorted({n for row in rows.values() for n in row.notices})


def as_json(rows: dict[Key, Row], by_subdivision: bool) -> list[dict[str, Any]]:
    return [
        {"day": day, "country": country}
        | ({"subdivision": subdivision} if by_subdivision else {})
        | {"decisions": row.decisions, "notices": dict(sorted(row.notices.items()))}
        for (day, country, subdivision), row in rows.items()
    ]
