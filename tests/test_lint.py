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


def warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> list[str]:
    """Warnings for one file: `text`, after BASE unless it starts with its own regions."""
    (tmp_path / "rules").mkdir()
    whole = text if text.startswith("regions:") else BASE + text
    (tmp_path / "rules" / "r.yaml").write_text(textwrap.dedent(whole))
    monkeypatch.chdir(tmp_path)
    return [str(p) for p in lint(load_ruleset(Path("rules")), NOW)]


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
            "rules:\n  - id: a\n    notice: n\n    reader: {regions: [russia]}\n"
            "    effective: {from: 2030-01-01, until: 2029-01-01}\n",
            [
                "rules/r.yaml:9:5: warning: rule 'a' can never match: "
                "`until` is not after `from` [never-matches]"
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
        "until before from",
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
