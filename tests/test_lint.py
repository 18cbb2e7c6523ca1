"""Warnings from `rules check`: each kind at its file:line:column."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.lint import lint
from service.loader import load_ruleset

NOW = datetime(2026, 6, 1, tzinfo=UTC)
REGIONS = "regions:\n  - {id: russia, countries: [RU]}\n"
NOTICES = "notices:\n  - {id: n, severity: legal, default_language: en, texts: {en: {title: T, body: B}}}\n"
BASE = REGIONS + NOTICES


def warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, every_publisher: bool = False
) -> list[str]:
    """Warnings for one file: `text`, after BASE unless it starts with its own regions. The rules of
    these tables name no publisher, to stay short: `every-publisher` is left out unless asked for."""
    (tmp_path / "rules").mkdir()
    whole = text if text.startswith("regions:") else BASE + text
    (tmp_path / "rules" / "r.yaml").write_text(textwrap.dedent(whole))
    monkeypatch.chdir(tmp_path)
    found = [str(p) for p in lint(load_ruleset(Path("rules")), NOW)]
    return [w for w in found if every_publisher or not w.endswith("[every-publisher]")]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            "rules:\n  - {id: a, notice: n, reader: {regions: [russia]}}\n",
            [],
        ),
        (
            "rules:\n  - {id: a, notice: n, reader: {regions: [russia], languages: [ru, en-gb]}}\n",
            [
                "rules/r.yaml:6:24: warning: rule 'a' shows notice 'n' to readers who prefer ['ru'], "
                "but the notice has no text in that language [missing-text]"
            ],
        ),
        (
            "rules:\n  - {id: a, notice: n, reader: {regions: [russia]}, effective: {until: 2026-01-01}}\n",
            [
                "rules/r.yaml:6:53: warning: rule 'a' ended on 2026-01-01T00:00:00+00:00; "
                "remove it or extend it [ended]"
            ],
        ),
        (
            REGIONS
            + "  - {id: none, countries: [RU], exclude: {countries: [RU]}}\n"
            + NOTICES
            + "rules:\n  - {id: a, notice: n, reader: {regions: [russia]}}\n"
            "  - {id: b, notice: n, reader: {regions: [none]}}\n",
            [
                "rules/r.yaml:8:24: warning: rule 'b' can never match: its regions ['none'] are empty "
                "after exclusions [never-matches]"
            ],
        ),
        (
            "rules:\n  - {id: a, notice: n, reader: {regions: [russia]}}\n"
            "  - {id: b, notice: n, reader: {regions: [russia]}, effective: {from: 2025-01-01}}\n",
            [
                "rules/r.yaml:7:6: warning: rules 'a' and 'b' give notice 'n' to the same readers "
                "in overlapping periods [duplicate-rule]"
            ],
        ),
        (
            "rules:\n  - {id: a, notice: n, reader: {regions: [russia]}, effective: {until: 2027-01-01}}\n"
            "  - {id: b, notice: n, reader: {regions: [russia]}, effective: {from: 2027-01-01}}\n",
            [],
        ),
        (
            REGIONS
            + "  - {id: spare, countries: [BY]}\n"
            + NOTICES
            + "  - {id: m, severity: info, default_language: en, texts: {en: {title: T, body: B}}}\n"
            "rules:\n  - {id: a, notice: n, reader: {unknown_location: show}}\n",
            [
                "rules/r.yaml:2:6: warning: region 'russia' is not used by any rule [unused-region]",
                "rules/r.yaml:3:6: warning: region 'spare' is not used by any rule [unused-region]",
                "rules/r.yaml:6:6: warning: notice 'm' is not used by any rule [unused-notice]",
            ],
        ),
    ],
    ids=[
        "clean",
        "missing text",
        "ended",
        "empty region",
        "duplicate",
        "consecutive",
        "unused",
    ],
)
def test_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: str, expected: list[str]) -> None:
    assert warnings(tmp_path, monkeypatch, rules) == expected


def test_regions_used_through_another_region_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = REGIONS + "  - {id: wider, include: [russia]}\n" + NOTICES
    extra += "rules:\n  - {id: a, notice: n, reader: {regions: [wider]}}\n"
    assert warnings(tmp_path, monkeypatch, extra) == []


def test_the_bundled_rules_have_no_warnings() -> None:
    assert lint(load_ruleset(Path(__file__).parent.parent / "rules"), NOW) == []


@pytest.mark.parametrize(
    ("article", "expected"),
    [
        (
            "",
            ["rules/r.yaml:6:5: warning: rule 'a' names no article.publisher: it applies to every publisher"],
        ),
        (
            "    article: {section: news}\n",
            ["rules/r.yaml:8:5: warning: rule 'a' names no article.publisher: it applies to every publisher"],
        ),
        ("    article: {publisher: rferl}\n", []),
    ],
    ids=["no article condition", "a section but no publisher", "a publisher"],
)
def test_a_rule_for_every_publisher_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, article: str, expected: list[str]
) -> None:
    rule = "rules:\n  - id: a\n    notice: n\n" + article + "    reader: {regions: [russia]}\n"
    found = warnings(tmp_path, monkeypatch, rule, every_publisher=True)
    assert found == [f"{line} [every-publisher]" for line in expected]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (
            "",
            [
                "rules/r.yaml:8:5: warning: case 'c' has no `at`: its result changes with the calendar; "
                "give the instant it is about, e.g. `at: 2025-01-01` (midnight UTC) [case-without-at]"
            ],
        ),
        ("    at: 2025-01-01\n", []),
    ],
    ids=["without at", "with at"],
)
def test_a_case_without_at_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str, expected: list[str]
) -> None:
    text = (
        "rules:\n  - {id: a, notice: n, article: {publisher: p}, reader: {regions: [russia]}}\n"
        "cases:\n  - name: c\n    article: {publisher: p}\n    reader: {country: RU}\n"
        + at
        + "    expect: {notices: [n]}\n"
    )
    assert warnings(tmp_path, monkeypatch, text) == expected
