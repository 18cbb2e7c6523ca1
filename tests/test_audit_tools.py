"""The auditors' tools on a real log: query, summary, export, replay, rules in force, many directories."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask import Flask

from service.audit import summary as s
from service.audit.files import log_files
from service.audit.query import Filter, query
from service.audit.reader import find_decision, records
from service.cli import main
from service.config import Settings
from service.web import create_app
from service.web.runtime import runtime
from tests.audit_support import Clock, lines, rewrite

READERS: list[dict[str, Any]] = [
    {"ip": "77.88.8.8", "languages": ["ru"]},
    {"ip": "5.59.104.1", "languages": ["uk"]},
    {"ip": "8.8.8.8"},
    {"country": "UA", "subdivision": "UA-30"},
    {"country": "RU", "subdivision": "UA-43"},
    {"ip": "185.220.101.7"},
    {"ip": "10.0.0.1", "languages": ["en-GB"]},
]
ARTICLES: list[dict[str, Any]] = [
    {"publisher": "rferl", "id": "1", "url": "https://www.rferl.org/a/1.html", "tags": ["russia"]},
    {"publisher": "rferl", "id": "2", "section": "news", "language": "ru", "type": "video"},
    {"publisher": "example-news", "id": "3"},
]
DAY = datetime(2025, 6, 1, tzinfo=UTC)


def _serve_a_day(settings: Settings, node: str) -> list[dict[str, Any]]:
    """A whole day of varied page views (every reader x article, every 3 hours), through the HTTP API."""
    clock = Clock(DAY)
    app = create_app(settings.model_copy(update={"audit_node": node}), clock=clock)
    client = app.test_client()
    answers = []
    for hour in range(0, 24, 3):
        clock.now = DAY + timedelta(hours=hour)
        for reader in READERS:
            for article in ARTICLES:
                response = client.post("/v1/decisions", json={"article": article, "reader": reader})
                assert response.status_code == 200
                answers.append(response.get_json())
    runtime(app).audit.stopped()
    return answers


@pytest.fixture
def day_log(settings: Settings) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    yield settings.audit_dir, _serve_a_day(settings, "n1")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_replay_gives_same_for_a_whole_day(day_log: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, answers = day_log
    code, output = run("audit", "replay", "--all", "-d", str(directory))
    assert code == 0, output
    assert output.strip().splitlines()[-1] == f"{len(answers)} same, 0 different, 0 unavailable"
    code, output = run("audit", "replay", answers[0]["decision_id"], "-d", str(directory))
    assert (code, output.split()) == (0, [answers[0]["decision_id"], "same"])


def test_replay_finds_a_doctored_record(day_log: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, answers = day_log
    shown = next(a for a in answers if a["notices"])
    (path,) = log_files([directory])
    doctored = [
        line.replace(b'"notices":[{"id":"rferl-undesirable"', b'"notices":[{"id":"something-else"')
        if shown["decision_id"].encode() in line
        else line
        for line in lines(path)
    ]
    rewrite(path, doctored)
    code, output = run("audit", "replay", shown["decision_id"], "-d", str(directory))
    assert code == 1 and f"{shown['decision_id']}  different" in output and "notices: logged" in output
    code, output = run("audit", "verify", str(directory))
    assert code == 1 and "modified" in output


def test_query_filters(day_log: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, answers = day_log
    russia = list(query([directory], Filter(country="ru", publisher="rferl")))
    assert len(russia) == 8 * 2 * 2  # two readers located in RU, two rferl articles, eight times
    assert all(r["reader"]["country"] == "RU" for r in russia)
    crimea = list(query([directory], Filter(subdivision="UA-43", notice="rferl-undesirable")))
    assert {r["reader"]["source"] for r in crimea} == {"geoip", "explicit"}
    by_url = list(query([directory], Filter(article="https://www.rferl.org/a/1.html", source="explicit")))
    assert len(by_url) == 8 * 2
    ruleset = answers[0]["ruleset"].removeprefix("sha256:")[:12]
    assert len(list(query([directory], Filter(ruleset=ruleset)))) == len(answers)
    assert list(query([directory], Filter(rule="no-such-rule"))) == []
    code, output = run(
        "audit", "query", str(directory), "--kind", "all", "--country", "US", "--format", "table"
    )
    assert code == 0 and output.splitlines()[0].startswith("TS") and len(output.splitlines()) == 1 + 8 * 3


def test_summary_counts_by_day_and_country(day_log: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, answers = day_log
    rows = s.summarize(
        [directory],
    )
    assert sum(r.decisions for r in rows.values()) == len(answers)
    shown = sum(len(a["notices"]) for a in answers)
    assert sum(r.notices["rferl-undesirable"] for r in rows.values()) == shown
    day = answers[0]["decision_id"] and next(iter(rows))[0]
    assert rows[(day, "RU", None)].decisions == 8 * 2 * 3
    detailed = s.summarize(
        [directory],
        by_subdivision=True,
    )
    assert detailed[(day, "UA", "UA-30")].notices == {}
    assert detailed[(day, "UA", "UA-43")].notices["rferl-undesirable"] == 8 * 2
    code, output = run("audit", "summary", str(directory), "--format", "csv")
    table = list(csv.DictReader(io.StringIO(output)))
    assert {r["country"] for r in table} == {"RU", "UA", "US", ""} and code == 0
    code, output = run(
        "audit", "summary", str(directory), "--from", "2000-01-01", "--to", "2000-01-02", "--format", "json"
    )
    assert (code, orjson.loads(output)) == (0, [])


def test_summary_reads_records_in_any_json_layout(day_log: tuple[Path, list[dict[str, Any]]]) -> None:
    """Summary parses JSON: a reformatted log still counts the same (verify is what objects to it)."""
    directory, _ = day_log
    before = s.summarize(
        [directory],
    )
    (path,) = log_files([directory])
    rewrite(
        path,
        [
            orjson.dumps(orjson.loads(line), option=orjson.OPT_INDENT_2).replace(b"\n", b"") + b"\n"
            for line in lines(path)
        ],
    )
    assert (
        s.summarize(
            [directory],
        )
        == before
    )


def test_export_csv_and_jsonl(day_log: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    directory, answers = day_log
    out = tmp_path / "out.csv"
    code, _ = run("audit", "export", str(directory), "-o", str(out))
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert code == 0 and [r["decision_id"] for r in rows] == [a["decision_id"] for a in answers]
    assert rows[0]["notices"] == "rferl-undesirable" and rows[0]["network"] == "77.88.8.0/24"
    code, output = run("audit", "export", str(directory), "--format", "jsonl", "--to", "2000-01-01")
    assert (code, output) == (0, "")


def test_several_directories_are_read_together_by_time(settings: Settings, tmp_path: Path) -> None:
    first = _serve_a_day(settings, "node-a")
    second = _serve_a_day(settings.model_copy(update={"audit_dir": tmp_path / "b"}), "node-b")
    directories = [settings.audit_dir, tmp_path / "b"]
    merged = [r for r in records(directories) if r["kind"] == "decision"]
    assert len(merged) == len(first) + len(second)
    assert [r["ts"] for r in merged] == sorted(r["ts"] for r in merged)
    assert {r["node"] for r in merged} == {"node-a", "node-b"}
    assert find_decision(directories, second[-1]["decision_id"]) is not None
    code, output = run("audit", "verify", *map(str, directories))
    assert code == 0 and output.strip().splitlines()[-1].startswith("intact: 2 files")
    code, output = run("audit", "replay", "--all", "-d", str(directories[0]), "-d", str(directories[1]))
    assert code == 0 and f"{len(merged)} same" in output


def test_rules_in_force_at_an_instant(day_log: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, answers = day_log
    now = datetime.now(UTC).isoformat()
    code, output = run("audit", "rules", now, "-d", str(directory))
    assert code == 1 and "no ruleset was in force" in output  # the writer has stopped
    loaded = next(r for r in records([directory]) if r["kind"] == "ruleset_loaded")
    code, output = run("audit", "rules", loaded["ts"], "-d", str(directory))
    assert code == 1  # `to` is excluded: not yet
    after = (
        datetime.fromisoformat(loaded["ts"].replace("Z", "+00:00")) + timedelta(microseconds=1)
    ).isoformat()
    code, output = run("audit", "rules", after, "-d", str(directory))
    assert (
        code == 0 and output.startswith(answers[0]["ruleset"]) and "rule rferl-undesirable-russia" in output
    )


def test_audit_http_is_off_unless_asked_for(settings: Settings) -> None:
    app = create_app(settings)
    assert app.test_client().get("/v1/audit/summary").status_code == 404
    runtime(app).audit.stopped()


def _audit_app(settings: Settings) -> Flask:
    return create_app(settings.model_copy(update={"audit_http": True}))


def test_http_decision_record_with_its_explanation(settings: Settings) -> None:
    app = _audit_app(settings)
    client = app.test_client()
    answer = client.post(
        "/v1/decisions", json={"article": {"publisher": "rferl"}, "reader": {"ip": "5.59.104.1"}}
    ).get_json()
    body = client.get(f"/v1/audit/decisions/{answer['decision_id']}").get_json()
    assert body["record"]["decision_id"] == answer["decision_id"]
    explanation = body["explanation"]
    assert explanation["replay"] == {"verdict": "same", "differences": []}
    assert explanation["matches"] == [
        {
            "rule": "rferl-undesirable-russia",
            "reason": "region",
            "region": "russia-controlled-ukraine",
            "code": "UA-43",
        }
    ]
    (rule,) = explanation["rules"]
    assert rule["rule"] == "rferl-undesirable-russia" and rule["applies"] is True
    reader_check = next(c for c in rule["checks"] if c["condition"] == "reader")
    assert "in region russia-controlled-ukraine > subdivision UA-43" in reader_check["detail"]
    missing = client.get("/v1/audit/decisions/0190d5d0-0000-7000-8000-000000000000")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    runtime(app).audit.stopped()


def test_http_summary(settings: Settings) -> None:
    app = _audit_app(settings)
    client = app.test_client()
    for reader in READERS:
        client.post("/v1/decisions", json={"article": {"publisher": "rferl"}, "reader": reader})
    body = client.get("/v1/audit/summary").get_json()
    assert sum(r["decisions"] for r in body["rows"]) == len(READERS)
    assert client.get("/v1/audit/summary?from=yesterday").status_code == 400
    runtime(app).audit.stopped()
