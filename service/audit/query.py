"""Filters over records, and the shapes they are printed in: JSON Lines, a table, CSV."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from service.audit.files import log_files
from service.audit.reader import Record, files_between, in_range, merged
from service.audit.records import iso

By = Literal["logged", "decided"]  # which time the range is about: `ts` (written) or `at` (decided for)
WhatIf = Literal["exclude", "include", "only"]  # what-if decisions (asked with `at`), apart or not
TIME_FIELD: dict[str, str] = {"logged": "ts", "decided": "at"}


def bound(text: str) -> str:
    """A date (YYYY-MM-DD) or an ISO 8601 instant (UTC unless it says), as text that compares with the
    records' `ts` and `at`; ValueError otherwise."""
    value = text.strip()
    if "T" not in value.upper() and " " not in value:  # a day: 2025-06-01 (or 20250601)
        return date.fromisoformat(value).isoformat()
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    try:
        return iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
    except OverflowError:  # an offset that takes it out of the calendar (year 1 or 9999)
        raise ValueError(f"{text!r} is outside the calendar in UTC") from None


def end_after(to: str) -> str:
    """The exclusive end of a range whose `to` (a `bound`) is included: a date's next day, an instant's
    next microsecond (records keep microseconds). Every `to` is inclusive, in the CLI, the HTTP API and
    the dashboard alike: `--to 2025-06-30` means up to the end of that day."""
    try:
        if len(to) == 10:
            return (date.fromisoformat(to) + timedelta(days=1)).isoformat()
        return iso(datetime.fromisoformat(to.replace("Z", "+00:00")) + timedelta(microseconds=1))
    except OverflowError:  # the calendar's last day or instant: nothing comes after it
        return END_OF_TIME


END_OF_TIME = "~"  # sorts after every ISO text


@dataclass(frozen=True, slots=True)
class Filter:
    """Which records: every condition given must hold. Times are ISO text, `start <= time < end`, the
    time being `ts` (`by="logged"`) or `at` (`by="decided"`)."""

    start: str | None = None
    end: str | None = None
    kind: str | None = "decision"
    publisher: str | None = None
    article: str | None = None  # id or url
    notice: str | None = None
    rule: str | None = None
    country: str | None = None
    subdivision: str | None = None
    source: str | None = None
    ruleset: str | None = None
    by: By = "logged"
    what_if: WhatIf = "include"

    def holds(self, record: Record) -> bool:
        article = record.get("article") or {}
        reader = record.get("reader") or {}
        return (
            (self.kind is None or record.get("kind") == self.kind)
            and in_range(record, self.start, self.end, TIME_FIELD[self.by])
            and (self.what_if == "include" or (record.get("what_if") is True) == (self.what_if == "only"))
            and (self.publisher is None or article.get("publisher") == self.publisher)
            and (self.article is None or self.article in (article.get("id"), article.get("url")))
            and (self.notice is None or any(n.get("id") == self.notice for n in record.get("notices") or ()))
            and (self.rule is None or self.rule in (record.get("rules") or ()))
            and (self.country is None or reader.get("country") == self.country.upper())
            and (self.subdivision is None or reader.get("subdivision") == self.subdivision.upper())
            and (self.source is None or reader.get("source") == self.source)
            and (self.ruleset is None or _same_ruleset(record.get("ruleset"), self.ruleset))
        )


def _same_ruleset(recorded: Any, wanted: str) -> bool:
    """A ruleset hash may be given whole or by a prefix of its hex, as git shows commits."""
    return isinstance(recorded, str) and recorded.removeprefix("sha256:").startswith(
        wanted.removeprefix("sha256:")
    )


def candidate_files(directories: Sequence[Path], where: Filter) -> list[Path]:
    """The files that can hold records that hold. A file holds the records written on one UTC day (its
    name says which). A page view is decided just before it is written, so by decision time the files
    of the day after the range's end may hold some too; a what-if may be about any instant, so by
    decision time with what-ifs every file is read."""
    if where.by == "logged":
        return files_between(directories, where.start, where.end)
    if where.what_if == "exclude":
        end = end_after(where.end[:10]) if where.end else None
        return files_between(directories, where.start, end)
    return log_files(directories)


def query(directories: Sequence[Path], where: Filter) -> Iterator[Record]:
    """The records that hold, merged by write time across files and directories."""
    return (r for r in merged(candidate_files(directories, where)) if where.holds(r))


COLUMNS = (
    "ts",
    "decision_id",
    "node",
    "ruleset",
    "at",
    "article_id",
    "article_url",
    "publisher",
    "section",
    "tags",
    "article_language",
    "article_type",
    "country",
    "subdivision",
    "source",
    "anonymized",
    "reader_languages",
    "network",
    "notices",
    "notice_languages",
    "rules",
    "effects",
    "what_if",
)


def flat(record: Record) -> dict[str, Any]:
    """One decision as a flat row (lists joined with `;`), for spreadsheets."""
    article = record.get("article") or {}
    reader = record.get("reader") or {}
    notices = record.get("notices") or []
    return {
        "ts": record.get("ts"),
        "decision_id": record.get("decision_id"),
        "node": record.get("node"),
        "ruleset": record.get("ruleset"),
        "at": record.get("at"),
        "article_id": article.get("id"),
        "article_url": article.get("url"),
        "publisher": article.get("publisher"),
        "section": article.get("section"),
        "tags": ";".join(article.get("tags") or ()),
        "article_language": article.get("language"),
        "article_type": article.get("type"),
        "country": reader.get("country"),
        "subdivision": reader.get("subdivision"),
        "source": reader.get("source"),
        "anonymized": reader.get("anonymized"),
        "reader_languages": ";".join(reader.get("languages") or ()),
        "network": reader.get("network"),
        "notices": ";".join(n["id"] for n in notices),
        "notice_languages": ";".join(n["language"] for n in notices),
        "rules": ";".join(record.get("rules") or ()),
        "effects": ";".join(record.get("effects") or ()),
        "what_if": record.get("what_if") is True,
    }


def jsonl(rows: Iterable[Record]) -> Iterator[str]:
    for row in rows:
        yield orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


# C0 and C1 controls and DEL (escape sequences, line breaks, tabs), and the bidirectional overrides
# and isolates that make a text read otherwise than it is stored.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORMULA = ("=", "+", "-", "@")


def cell(value: Any) -> str:
    """A value as a spreadsheet or terminal cell: control characters stripped, and a `'` before a text
    that a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first; OWASP's CSV injection advice).
    Article ids, urls and tags are the caller's text: an export must not run it on an auditor's desk."""
    text = _UNPRINTABLE.sub("", "" if value is None else str(value))
    return "'" + text if text.startswith(_FORMULA) else text


def csv_lines(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    """CSV text, one row at a time (header first), so long exports stream; every cell as `cell` makes it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for values in itertools.chain([columns], ([row.get(c) for c in columns] for row in rows)):
        writer.writerow([cell(v) for v in values])
        yield buffer.getvalue().rstrip("\n")
        buffer.seek(0)
        buffer.truncate()


TABLE = (
    "ts",
    "decision_id",
    "what_if",
    "country",
    "subdivision",
    "source",
    "publisher",
    "article_id",
    "notices",
)


def table(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], widths: Sequence[int] | None = None
) -> Iterator[str]:
    """A plain text table; each cell as `cell` makes it, cut to its column's width."""
    widths = widths or [max(len(c), 12) for c in columns]
    yield "  ".join(cell(c.upper()).ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()
    for row in rows:
        cells = ("-" if row.get(c) in (None, "") else cell(row[c]) for c in columns)
        yield "  ".join(text[:w].ljust(w) for text, w in zip(cells, widths, strict=True)).rstrip()
