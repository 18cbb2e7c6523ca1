"""explain(): the per-rule reasons, and that they agree with the engine's decision."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine import Engine
from service.inputs import Article, Location, Reader
from service.ruleset import Ruleset
from service.verdicts import explain
from tests.test_engine import engine_from_yaml, requests, rulesets, utc

RULES = """
regions:
  - {id: russia, countries: [RU]}
  - {id: occupied, subdivisions: [UA-43, UA-40]}
  - {id: watched, include: [russia, occupied], exclude: {subdivisions: [RU-MOW]}}
notices:
  - {id: n, severity: legal, default_language: en, texts: {en: {title: t, body: b}}}
rules:
  - id: watched-news
    notice: n
    article: {publisher: rferl, section: news, tags: {none: [satire]}}
    reader: {regions: [watched]}
    effective: {from: 2024-02-20, until: 2026-01-01}
  - id: by-language
    notice: n
    article: {publisher: rferl}
    reader: {languages: [ru]}
  - id: occupied-or-unknown
    notice: n
    article: {publisher: rferl}
    reader: {regions: [occupied], unknown_location: show}
  - id: occupied-only
    notice: n
    article: {publisher: rferl}
    reader: {regions: [occupied]}
"""


def reader(country: str | None = None, subdivision: str | None = None, *languages: str) -> Reader:
    source = "explicit" if country or subdivision else "unknown"
    return Reader(Location(country, subdivision, source), languages)


NEWS = Article("rferl", section="news")
AT = utc("2025-01-01")


@pytest.mark.parametrize(
    ("article", "who", "at", "rule", "applies", "detail"),
    [
        (NEWS, reader("RU", "RU-SPE"), AT, "watched-news", True, "in region watched > russia > country RU"),
        (
            NEWS,
            reader("RU", "UA-43"),
            AT,
            "watched-news",
            True,
            "in region watched > occupied > subdivision UA-43",
        ),
        (
            NEWS,
            reader("RU", "RU-MOW"),
            AT,
            "watched-news",
            False,
            "reader RU/RU-MOW (explicit): not in region",
        ),
        (NEWS, reader("US"), AT, "watched-news", False, "reader US (explicit): not in region ['watched']"),
        (
            NEWS,
            reader("RU"),
            utc("2024-02-19T23:59:59"),
            "watched-news",
            False,
            "is before the rule takes effect",
        ),
        (NEWS, reader("RU"), utc("2026-01-01"), "watched-news", False, "is after the rule ended"),
        (
            Article("rferl", section="sport"),
            reader("RU"),
            AT,
            "watched-news",
            False,
            "'sport' is not one of ['news']",
        ),
        (
            Article("rferl", section="news", tags=frozenset({"satire"})),
            reader("RU"),
            AT,
            "watched-news",
            False,
            "tags ['satire'] include ['satire']",
        ),
        (NEWS, reader("US", None, "ru-RU"), AT, "by-language", True, "reader prefers 'ru-RU'"),
        (NEWS, reader("US", None, "de"), AT, "by-language", False, "prefers none of ['ru']"),
        (
            NEWS,
            reader("UA"),
            AT,
            "occupied-or-unknown",
            True,
            "possibly in region occupied (subdivision unknown in UA), and the rule shows to unknown",
        ),
        (
            NEWS,
            reader("UA"),
            AT,
            "occupied-only",
            False,
            "possibly in ['occupied'] (subdivision unknown), and the rule skips unknown locations",
        ),
        (NEWS, reader("UA", "UA-30"), AT, "occupied-or-unknown", False, "reader UA/UA-30 (explicit): not in"),
    ],
)
def test_verdicts(article: Article, who: Reader, at: datetime, rule: str, applies: bool, detail: str) -> None:
    explanation = explain(engine_from_yaml(RULES), article, who, at)
    (verdict,) = [v for v in explanation.verdicts if v.rule == rule]
    assert verdict.applies is applies
    assert detail in " | ".join(c.detail for c in verdict.checks)
    assert (rule in explanation.decision.rules) is applies


def test_rules_that_apply_come_first() -> None:
    explanation = explain(engine_from_yaml(RULES), NEWS, reader("US", None, "ru"), AT)
    assert [(v.rule, v.applies) for v in explanation.verdicts] == [
        ("by-language", True),
        ("occupied-only", False),
        ("occupied-or-unknown", False),
        ("watched-news", False),
    ]
    assert [c.condition for c in explanation.verdicts[3].failed] == ["reader"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ruleset=rulesets(), request=st.lists(requests(), min_size=1, max_size=4))
def test_explain_agrees_with_the_engine(
    ruleset: Ruleset, request: list[tuple[Article, Reader, datetime]]
) -> None:
    engine = Engine(ruleset)
    for article, who, at in request:
        explanation = explain(engine, article, who, at)
        assert sorted(v.rule for v in explanation.verdicts if v.applies) == list(explanation.decision.rules)
