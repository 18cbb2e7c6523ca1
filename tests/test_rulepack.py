"""The bundled rule pack: it loads, its editor cases pass, and it says what issue 2 asks for."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.cases import run_case
from service.engine import Engine
from service.inputs import Article, Location, Reader
from service.loader import load_ruleset
from service.ruleset import SourcedCase

RULES = Path(__file__).parent.parent / "rules"
RULESET = load_ruleset(RULES)
ENGINE = Engine(RULESET)
# A fixed "now" for cases without `at`, so the suite does not change with the calendar.
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def test_case_names_are_unique() -> None:
    names = [c.case.name for c in RULESET.cases]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("sourced", RULESET.cases, ids=[c.case.name for c in RULESET.cases])
def test_editor_case(sourced: SourcedCase) -> None:
    result = run_case(ENGINE, sourced, now=NOW)
    assert result.passed, f"{sourced.file}:{sourced.line}: " + "; ".join(result.failures)


COVERED = {
    "Moscow": lambda c: (c.reader.country, c.reader.subdivision) == ("RU", "RU-MOW"),
    "Crimea as UA": lambda c: (c.reader.country, c.reader.subdivision) == ("UA", "UA-43"),
    "Crimea as RU": lambda c: (c.reader.country, c.reader.subdivision) == ("RU", "UA-43"),
    "Kyiv": lambda c: c.reader.subdivision == "UA-30" and c.expect.notices == (),
    "United States": lambda c: c.reader.country == "US" and c.expect.notices == (),
    "before 2024-02-20": lambda c: c.at is not None and c.at < datetime(2024, 2, 20, tzinfo=UTC),
    "another publisher": lambda c: c.article.publisher != "rferl",
    "Russian text": lambda c: c.expect.languages.get("rferl-undesirable") == "ru",
    "uk-UA gets Ukrainian": lambda c: "uk-ua" in c.reader.languages and c.expect.languages,
}


@pytest.mark.parametrize("what", COVERED)
def test_cases_cover_the_founding_case(what: str) -> None:
    assert any(COVERED[what](sourced.case) for sourced in RULESET.cases), f"no editor case for {what}"


def test_regions() -> None:
    assert RULESET.regions["russia"].countries == ("RU",)
    occupied = RULESET.regions["russia-controlled-ukraine"]
    assert set(occupied.subdivisions) == {"UA-43", "UA-40", "UA-14", "UA-09", "UA-23", "UA-65"}
    assert not occupied.countries  # matched by subdivision, whatever the country code


def test_rferl_rule() -> None:
    rule = RULESET.rules["rferl-undesirable-russia"]
    assert rule.notice == "rferl-undesirable"
    assert rule.article.publisher == ("rferl",)
    assert set(rule.reader.regions) == {"russia", "russia-controlled-ukraine"}
    assert (rule.reader.unknown_location, rule.reader.anonymized) == ("show", "show")
    assert rule.effective.start == datetime(2024, 2, 20, tzinfo=UTC)
    assert rule.effective.until is None
    assert rule.effects == ("discourage_sharing",)


def test_rferl_notice() -> None:
    notice = RULESET.notices["rferl-undesirable"]
    assert notice.severity == "legal"
    assert set(notice.texts) == {"en", "ru", "uk"}
    assert notice.default_language == "en"
    assert "undesirable organization" in notice.texts["en"].body
    assert "нежелательной" in notice.texts["ru"].body
    assert "небажаною" in notice.texts["uk"].body
    assert all(text.link and text.link.startswith("https://") for text in notice.texts.values())


@pytest.mark.parametrize(
    ("country", "subdivision", "languages", "shown", "language"),
    [
        ("RU", "RU-MOW", (), True, "en"),
        ("UA", "UA-43", ("uk-ua",), True, "uk"),
        ("RU", "UA-43", ("ru-ru", "en"), True, "ru"),
        ("UA", "UA-65", (), True, "en"),
        ("UA", "UA-30", ("ru",), False, None),
        ("US", None, ("ru",), False, None),
    ],
)
def test_founding_case(
    country: str, subdivision: str | None, languages: tuple[str, ...], shown: bool, language: str | None
) -> None:
    reader = Reader(Location(country, subdivision, "explicit"), languages)
    decision = ENGINE.decide(Article("rferl"), reader, NOW)
    assert [(n.id, n.language) for n in decision.notices] == (
        [("rferl-undesirable", language)] if shown else []
    )
    assert decision.effects == (("discourage_sharing",) if shown else ())
