"""Editors' test cases: run_case passes or says precisely what differed."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.cases import run_case, run_cases
from service.engine import Engine
from service.loader import load_ruleset
from service.model import Case
from service.ruleset import SourcedCase

RULES = """
regions:
  - {id: russia, countries: [RU]}
  - {id: ukraine, countries: [UA]}
notices:
  - id: a
    severity: legal
    default_language: en
    texts: {en: {title: A, body: A}, ru: {title: А, body: А}}
  - id: b
    severity: info
    default_language: en
    texts: {en: {title: B, body: B}}
rules:
  - {id: ra, notice: a, reader: {regions: [russia]}, effective: {from: 2024-02-20},
     effects: [discourage_sharing, hide_comments]}
  - {id: rb, notice: b, reader: {regions: [russia, ukraine]}}
"""

CASES = """
cases:
  - name: passes
    article: {publisher: p}
    reader: {country: RU}
    at: 2025-01-01
    expect: {notices: [a, b]}
  - name: fails
    article: {publisher: p}
    reader: {country: UA}
    at: 2025-01-01
    expect: {includes: [a]}
  - name: uses now
    article: {publisher: p}
    reader: {country: RU}
    expect: {includes: [a]}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    root = tmp_path_factory.mktemp("rules")
    (root / "rules.yaml").write_text(textwrap.dedent(RULES))
    (root / "cases.yaml").write_text(textwrap.dedent(CASES))
    return Engine(load_ruleset(root))


def case(reader: dict[str, Any], expect: dict[str, Any], at: str | None = "2025-01-01") -> SourcedCase:
    fields = {"name": "c", "article": {"publisher": "p"}, "reader": reader, "at": at, "expect": expect}
    return SourcedCase(Case.model_validate(fields), "tests/c.yaml", 2)


RU, RU_RU, UA = {"country": "RU"}, {"country": "RU", "languages": ["ru-RU"]}, {"country": "UA"}

TABLE: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("exact list", RU, {"notices": ["a", "b"]}, []),
    ("exact list, wrong order", RU, {"notices": ["b", "a"]}, ["expected notices ['b', 'a'], got ['a', 'b']"]),
    ("exact list, missing one", RU, {"notices": ["a"]}, ["expected notices ['a'], got ['a', 'b']"]),
    ("exact list, nothing", UA, {"notices": []}, ["expected notices [], got ['b']"]),
    ("includes", RU, {"includes": ["a"]}, []),
    ("includes, absent", UA, {"includes": ["a", "b"]}, ["expected notice 'a' to be shown, it was not"]),
    ("excludes", UA, {"excludes": ["a"]}, []),
    ("excludes, present", UA, {"excludes": ["a", "b"]}, ["expected notice 'b' not to be shown, it was"]),
    ("effects in any order", RU, {"effects": ["hide_comments", "discourage_sharing"]}, []),
    ("no effects", UA, {"effects": []}, []),
    (
        "effects missing",
        UA,
        {"effects": ["discourage_sharing"]},
        ["expected effects ['discourage_sharing'], got []"],
    ),
    (
        "effects different",
        RU,
        {"effects": ["discourage_sharing"]},
        ["expected effects ['discourage_sharing'], got ['discourage_sharing', 'hide_comments']"],
    ),
    ("language", RU_RU, {"languages": {"a": "ru", "b": "en"}}, []),
    ("language, other text", RU, {"languages": {"a": "ru"}}, ["expected notice 'a' in 'ru', got 'en'"]),
    (
        "language, not shown",
        UA,
        {"languages": {"a": "en"}},
        ["expected notice 'a' in 'en', it was not shown"],
    ),
    (
        "every failure, in order",
        UA,
        {
            "notices": ["a"],
            "includes": ["a"],
            "excludes": ["b"],
            "effects": ["hide_comments"],
            "languages": {"a": "ru"},
        },
        [
            "expected notices ['a'], got ['b']",
            "expected notice 'a' to be shown, it was not",
            "expected notice 'b' not to be shown, it was",
            "expected effects ['hide_comments'], got []",
            "expected notice 'a' in 'ru', it was not shown",
        ],
    ),
    ("nothing expected but the case's shape", UA, {}, []),
]


@pytest.mark.parametrize(
    ("reader", "expect", "failures"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_run_case(
    engine: Engine, reader: dict[str, Any], expect: dict[str, Any], failures: list[str]
) -> None:
    result = run_case(engine, case(reader, expect))
    assert list(result.failures) == failures
    assert result.passed is (not failures)
    assert result.case.file == "tests/c.yaml" and result.case.line == 2


def test_case_instant_wins_over_now(engine: Engine) -> None:
    before = case(RU, {"notices": ["b"]}, at="2024-02-19T23:59:59Z")
    assert run_case(engine, before, now=datetime(2030, 1, 1, tzinfo=UTC)).passed
    undated = case(RU, {"notices": ["b"]}, at=None)
    assert run_case(engine, undated, now=datetime(2024, 1, 1, tzinfo=UTC)).passed
    assert not run_case(engine, undated, now=datetime(2025, 1, 1, tzinfo=UTC)).passed
    assert not run_case(engine, undated).passed  # today, after the rule started


def test_run_cases_runs_the_ruleset_cases_with_their_place(engine: Engine) -> None:
    results = run_cases(engine, now=datetime(2025, 1, 1, tzinfo=UTC))
    assert [(r.case.case.name, Path(r.case.file).name, r.case.line, r.passed) for r in results] == [
        ("passes", "cases.yaml", 3, True),
        ("fails", "cases.yaml", 8, False),
        ("uses now", "cases.yaml", 13, True),
    ]
    assert results[1].failures == ("expected notice 'a' to be shown, it was not",)
