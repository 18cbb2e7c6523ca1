"""The engine on tables of (article, reader, instant -> notices), and against a reference evaluation."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.decision import Decision, Match
from service.engine import Engine
from service.inputs import Article, Location, Reader
from service.loader import cross_check, parse_file
from service.model import Notice, Region, Rule
from service.ruleset import Ruleset

AT = datetime(2025, 1, 1, tzinfo=UTC)


def engine_from_yaml(text: str) -> Engine:
    parsed, problems = parse_file("engine.yaml", textwrap.dedent(text).encode())
    assert parsed is not None, problems
    assert cross_check([parsed]) == []
    model = parsed.model
    return Engine(Ruleset.build(list(model.regions), list(model.notices), list(model.rules)))


def article(publisher: str, **fields: Any) -> Article:
    return Article(publisher, tags=frozenset(fields.pop("tags", ())), **fields)


def reader(
    country: str | None = None,
    subdivision: str | None = None,
    *languages: str,
    anonymized: bool = False,
) -> Reader:
    known = country is not None or subdivision is not None
    source = "explicit" if known else "unknown"
    return Reader(Location(country, subdivision, source, anonymized), tuple(languages))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---- which rules match ---------------------------------------------------------------------
#
# One ruleset; each group of rules is for its own publisher, so a row only meets the rules of
# its group (which also shows that rules for another publisher are never candidates).

MATCHING = engine_from_yaml(
    """
    regions:
      - {id: russia, countries: [RU]}
      - {id: occupied, subdivisions: [UA-43, UA-40]}
      - {id: russia-and-occupied, include: [russia, occupied]}
      - {id: free-ukraine, countries: [UA], exclude: {subdivisions: [UA-43, UA-40]}}
      - {id: all-ukraine, include: [free-ukraine, occupied]}
      - {id: russia-proper, countries: [RU], exclude: {subdivisions: [UA-43]}}
      - {id: baltic-and-russia, countries: [EE, LV, LT, RU]}
      - {id: baltic, include: [baltic-and-russia], exclude: {countries: [RU]}}
      - {id: finland, countries: [FI]}
    notices:
      - id: n
        severity: info
        default_language: en
        texts: {en: {title: T, body: B}}
    rules:
      - {id: period, notice: n, article: {publisher: period}, reader: {regions: [russia]},
         effective: {from: 2024-02-20, until: 2024-03-01}}

      - {id: geo-russia, notice: n, article: {publisher: geo}, reader: {regions: [russia]}}
      - {id: geo-occupied, notice: n, article: {publisher: geo}, reader: {regions: [occupied]}}
      - {id: geo-include, notice: n, article: {publisher: geo}, reader: {regions: [russia-and-occupied]}}
      - {id: geo-free-ukraine, notice: n, article: {publisher: geo}, reader: {regions: [free-ukraine]}}
      - {id: geo-all-ukraine, notice: n, article: {publisher: geo}, reader: {regions: [all-ukraine]}}
      - {id: geo-two-regions, notice: n, article: {publisher: geo},
         reader: {regions: [free-ukraine, occupied]}}
      - {id: geo-russia-proper, notice: n, article: {publisher: geo}, reader: {regions: [russia-proper]}}
      - {id: geo-baltic, notice: n, article: {publisher: geo}, reader: {regions: [baltic]}}

      - {id: any-publisher, notice: n, reader: {regions: [finland]}}
      - {id: alpha-or-beta, notice: n, article: {publisher: [alpha, beta]}, reader: {regions: [finland]}}

      - {id: cond-section, notice: n, article: {publisher: cond, section: [politics, world]},
         reader: {regions: [russia]}}
      - {id: cond-tags-any, notice: n, article: {publisher: cond, tags: {any: [war, protest]}},
         reader: {regions: [russia]}}
      - {id: cond-tags-all, notice: n, article: {publisher: cond, tags: {all: [war, ukraine]}},
         reader: {regions: [russia]}}
      - {id: cond-tags-none, notice: n, article: {publisher: cond, tags: {none: [sport]}},
         reader: {regions: [russia]}}
      - {id: cond-language, notice: n, article: {publisher: cond, language: [en]},
         reader: {regions: [russia]}}
      - {id: cond-type, notice: n, article: {publisher: cond, type: [video, podcast]},
         reader: {regions: [russia]}}
      - {id: cond-all-of-them, notice: n,
         article: {publisher: cond, section: politics, tags: {any: [war]}, type: video},
         reader: {regions: [russia]}}

      - {id: opts-region-only, notice: n, article: {publisher: opts}, reader: {regions: [russia]}}
      - {id: opts-unknown, notice: n, article: {publisher: opts},
         reader: {regions: [russia], unknown_location: show}}
      - {id: opts-anonymized, notice: n, article: {publisher: opts},
         reader: {regions: [russia], anonymized: show}}
      - {id: opts-unknown-only, notice: n, article: {publisher: opts}, reader: {unknown_location: show}}

      - {id: part-occupied-show, notice: n, article: {publisher: part},
         reader: {regions: [occupied], unknown_location: show}}
      - {id: part-occupied-skip, notice: n, article: {publisher: part}, reader: {regions: [occupied]}}
      - {id: part-all-ukraine-show, notice: n, article: {publisher: part},
         reader: {regions: [all-ukraine], unknown_location: show}}

      - {id: lang-ru, notice: n, article: {publisher: lang}, reader: {languages: [ru]}}
      - {id: lang-pt-br, notice: n, article: {publisher: lang}, reader: {languages: [pt-br]}}
    """
)

MATCH_TABLE: list[tuple[str, Article, Reader, datetime, list[str]]] = [
    # effective period: `from` inclusive, `until` exclusive
    ("before from", article("period"), reader("RU"), utc("2024-02-19T23:59:59.999999"), []),
    ("at from", article("period"), reader("RU"), utc("2024-02-20T00:00:00"), ["period"]),
    ("inside", article("period"), reader("RU"), utc("2024-02-29T23:59:59"), ["period"]),
    ("at until", article("period"), reader("RU"), utc("2024-03-01T00:00:00"), []),
    ("after until", article("period"), reader("RU"), utc("2030-01-01T00:00:00"), []),
    (
        "non-UTC instant before from",
        article("period"),
        reader("RU"),
        datetime(2024, 2, 20, 2, 0, tzinfo=timezone(timedelta(hours=3))),
        [],
    ),
    # regions
    (
        "country",
        article("geo"),
        reader("RU", "RU-MOW"),
        AT,
        ["geo-include", "geo-russia", "geo-russia-proper"],
    ),
    (
        "country without subdivision",
        article("geo"),
        reader("RU"),
        AT,
        ["geo-include", "geo-russia", "geo-russia-proper"],
    ),
    ("not listed", article("geo"), reader("US", "US-CA"), AT, []),
    (
        "subdivision located as UA",
        article("geo"),
        reader("UA", "UA-43"),
        AT,
        ["geo-all-ukraine", "geo-include", "geo-occupied", "geo-two-regions"],
    ),
    (
        "subdivision located as RU: matched by subdivision, not excluded from russia by its code",
        article("geo"),
        reader("RU", "UA-43"),
        AT,
        ["geo-all-ukraine", "geo-include", "geo-occupied", "geo-russia", "geo-two-regions"],
    ),
    (
        "subdivision with no country",
        article("geo"),
        reader(None, "UA-40"),
        AT,
        ["geo-all-ukraine", "geo-include", "geo-occupied", "geo-two-regions"],
    ),
    (
        "excluded subdivision with its own country code",
        article("geo"),
        reader("UA", "UA-40"),
        AT,
        ["geo-all-ukraine", "geo-include", "geo-occupied", "geo-two-regions"],
    ),
    (
        "a subdivision that is not excluded matches by the country",
        article("geo"),
        reader("UA", "UA-30"),
        AT,
        ["geo-all-ukraine", "geo-free-ukraine", "geo-two-regions"],
    ),
    (
        "country with unknown subdivision",
        article("geo"),
        reader("UA"),
        AT,
        ["geo-all-ukraine", "geo-free-ukraine", "geo-two-regions"],
    ),
    ("country kept after excluding another", article("geo"), reader("LV"), AT, ["geo-baltic"]),
    (
        "excluded country",
        article("geo"),
        reader("RU", "RU-SPE"),
        AT,
        ["geo-include", "geo-russia", "geo-russia-proper"],
    ),
    ("rules for another publisher are not candidates", article("other"), reader("RU"), AT, []),
    ("rules for another publisher, subdivision", article("other"), reader("UA", "UA-43"), AT, []),
    # publisher
    ("no publisher condition", article("gamma"), reader("FI"), AT, ["any-publisher"]),
    ("publisher in set", article("beta"), reader("FI"), AT, ["alpha-or-beta", "any-publisher"]),
    # section, tags, language, type
    ("bare article: only none-of holds", article("cond"), reader("RU"), AT, ["cond-tags-none"]),
    (
        "section in set",
        article("cond", section="world"),
        reader("RU"),
        AT,
        ["cond-section", "cond-tags-none"],
    ),
    ("section not in set", article("cond", section="sport"), reader("RU"), AT, ["cond-tags-none"]),
    ("tags any-of", article("cond", tags={"protest"}), reader("RU"), AT, ["cond-tags-any", "cond-tags-none"]),
    (
        "tags all-of",
        article("cond", tags={"war", "ukraine", "kyiv"}),
        reader("RU"),
        AT,
        ["cond-tags-all", "cond-tags-any", "cond-tags-none"],
    ),
    ("tags all-of needs every tag", article("cond", tags={"ukraine"}), reader("RU"), AT, ["cond-tags-none"]),
    (
        "tags none-of",
        article("cond", tags={"war", "ukraine", "sport"}),
        reader("RU"),
        AT,
        ["cond-tags-all", "cond-tags-any"],
    ),
    ("language", article("cond", language="en"), reader("RU"), AT, ["cond-language", "cond-tags-none"]),
    (
        "language falls back",
        article("cond", language="en-gb"),
        reader("RU"),
        AT,
        ["cond-language", "cond-tags-none"],
    ),
    ("language is not a prefix match", article("cond", language="eng"), reader("RU"), AT, ["cond-tags-none"]),
    ("type", article("cond", type="podcast"), reader("RU"), AT, ["cond-tags-none", "cond-type"]),
    (
        "every condition stated holds",
        article("cond", section="politics", tags={"war"}, type="video"),
        reader("RU"),
        AT,
        ["cond-all-of-them", "cond-section", "cond-tags-any", "cond-tags-none", "cond-type"],
    ),
    (
        "one condition fails",
        article("cond", section="politics", tags={"war"}, type="live"),
        reader("RU"),
        AT,
        ["cond-section", "cond-tags-any", "cond-tags-none"],
    ),
    (
        "article conditions do not help a reader elsewhere",
        article("cond", tags={"war"}),
        reader("US"),
        AT,
        [],
    ),
    # unknown_location and anonymized: show adds readers, skip adds none
    ("unknown location", article("opts"), reader(), AT, ["opts-unknown", "opts-unknown-only"]),
    ("anonymized elsewhere", article("opts"), reader("US", anonymized=True), AT, ["opts-anonymized"]),
    (
        "anonymized in the region: skip does not remove a region match",
        article("opts"),
        reader("RU", anonymized=True),
        AT,
        ["opts-anonymized", "opts-region-only", "opts-unknown"],
    ),
    (
        "anonymized and unknown",
        article("opts"),
        reader(anonymized=True),
        AT,
        ["opts-anonymized", "opts-unknown", "opts-unknown-only"],
    ),
    ("known and elsewhere", article("opts"), reader("US"), AT, []),
    # partial locations: a known country, an unknown subdivision, against a region of subdivisions
    (
        "UA alone is possibly in the occupied subdivisions: unknown_location decides",
        article("part"),
        reader("UA"),
        AT,
        ["part-all-ukraine-show", "part-occupied-show"],
    ),
    ("UA-30 is known not to be there", article("part"), reader("UA", "UA-30"), AT, ["part-all-ukraine-show"]),
    ("RU alone is not possibly in Ukraine's subdivisions", article("part"), reader("RU"), AT, []),
    # language signal, wherever the reader is
    ("reader language falls back", article("lang"), reader("US", None, "ru-ru"), AT, ["lang-ru"]),
    ("any preferred language", article("lang"), reader("DE", None, "de", "ru"), AT, ["lang-ru"]),
    ("language with unknown location", article("lang"), reader(None, None, "ru"), AT, ["lang-ru"]),
    ("a rule's regional tag needs that region", article("lang"), reader(None, None, "pt"), AT, []),
    ("regional tag", article("lang"), reader(None, None, "pt-br"), AT, ["lang-pt-br"]),
    ("no language match", article("lang"), reader("RU", None, "uk", "en"), AT, []),
]


@pytest.mark.parametrize(
    ("art", "who", "at", "expected"),
    [row[1:] for row in MATCH_TABLE],
    ids=[row[0] for row in MATCH_TABLE],
)
def test_rules_that_match(art: Article, who: Reader, at: datetime, expected: list[str]) -> None:
    decision = MATCHING.decide(art, who, at)
    assert list(decision.rules) == expected
    assert [(n.id, n.rules) for n in decision.notices] == ([("n", tuple(expected))] if expected else [])


@pytest.mark.parametrize(
    ("art", "who", "expected"),
    [
        (
            article("geo"),
            reader("RU", "UA-43"),
            Match("geo-include", "region", "russia-and-occupied", "UA-43"),
        ),
        (article("geo"), reader("RU", "RU-MOW"), Match("geo-include", "region", "russia-and-occupied", "RU")),
        (article("geo"), reader("UA", "UA-43"), Match("geo-two-regions", "region", "occupied", "UA-43")),
        (article("geo"), reader("UA", "UA-30"), Match("geo-two-regions", "region", "free-ukraine", "UA")),
        (article("opts"), reader(), Match("opts-unknown", "unknown_location")),
        (article("part"), reader("UA"), Match("part-occupied-show", "possibly_in_region", "occupied", "UA")),
        (article("part"), reader("UA"), Match("part-all-ukraine-show", "region", "all-ukraine", "UA")),
        (article("opts"), reader("US", anonymized=True), Match("opts-anonymized", "anonymized")),
        (article("lang"), reader("US", None, "ru-ru"), Match("lang-ru", "language", code="ru")),
    ],
)
def test_match_records_the_reason(art: Article, who: Reader, expected: Match) -> None:
    matches = {m.rule: m for m in MATCHING.decide(art, who, AT).matches}
    assert matches[expected.rule] == expected


@pytest.mark.parametrize(
    ("art", "who", "candidates"),
    [
        (article("geo"), reader("US", "US-CA"), set()),
        (article("other"), reader("RU", "UA-43"), set()),
        (article("gamma"), reader("FI"), {"any-publisher"}),
        (article("geo"), reader("UA", "UA-30"), {"geo-free-ukraine", "geo-all-ukraine", "geo-two-regions"}),
        (article("period"), reader("RU"), {"period"}),
        (article("lang"), reader(None, None, "pt-br"), {"lang-pt-br"}),
    ],
)
def test_only_indexed_candidates_are_considered(art: Article, who: Reader, candidates: set[str]) -> None:
    """The index, not a scan: the buckets a decision looks in hold no rule for other publishers
    or other places."""
    buckets = MATCHING.index.buckets(MATCHING.query(art, who, AT))
    looked_at = {entry.rule.id for bucket, _ in buckets for entry in bucket.entries}
    assert looked_at == candidates


def test_russia_controlled_ukraine_is_matched_by_subdivision() -> None:
    engine = engine_from_yaml(
        """
        regions:
          - {id: russia, countries: [RU]}
          - {id: russia-controlled-ukraine, subdivisions: [UA-43, UA-40]}
        notices:
          - {id: n, severity: legal, default_language: en, texts: {en: {title: T, body: B}}}
        rules:
          - {id: r, notice: n, reader: {regions: [russia, russia-controlled-ukraine]}}
        """
    )
    decision = engine.decide(article("rferl"), reader("RU", "UA-43"), AT)
    assert decision.matches == (Match("r", "region", "russia-controlled-ukraine", "UA-43"),)


# ---- what is shown: order, deduplication, effects, languages ------------------------------

SHOWING = engine_from_yaml(
    """
    regions:
      - {id: russia, countries: [RU]}
    notices:
      - id: info
        severity: info
        priority: 1000
        default_language: en
        texts: {en: {title: Info, body: B}}
      - id: warning-low
        severity: warning
        default_language: en
        texts: {en: {title: Low, body: B}}
      - id: warning-high
        severity: warning
        priority: 5
        default_language: en
        texts: {en: {title: High, body: B}}
      - id: legal-b
        severity: legal
        default_language: en
        texts: {en: {title: Legal B, body: B}}
      - id: legal-a
        severity: legal
        placement: banner
        default_language: uk
        texts:
          en: {title: Legal A, body: Body, link: "https://example.org/en"}
          ru: {title: Юридическое, body: Текст}
          uk: {title: Юридичне, body: Текст}
          pt-br: {title: Jurídico, body: Texto}
    rules:
      - {id: r-info, notice: info, reader: {regions: [russia]}}
      - {id: r-warning-low, notice: warning-low, reader: {regions: [russia]}, effects: [hide_comments]}
      - {id: r-warning-high, notice: warning-high, reader: {regions: [russia]}}
      - {id: r-legal-b, notice: legal-b, reader: {regions: [russia]}, effects: [withhold_article]}
      - {id: r-legal-a-2, notice: legal-a, reader: {regions: [russia]},
         effects: [hide_share_buttons, discourage_sharing]}
      - {id: r-legal-a-1, notice: legal-a, reader: {unknown_location: show, languages: [ru]},
         effects: [discourage_sharing]}
    """
)

Shown = tuple[str, tuple[str, ...], str]  # notice id, rules that gave it, chosen language

SHOW_TABLE: list[tuple[str, Article, Reader, list[Shown], list[str]]] = [
    (
        "severity, then priority (higher first), then id; one notice from two rules",
        article("p"),
        reader("RU", None, "ru"),
        [
            ("legal-a", ("r-legal-a-1", "r-legal-a-2"), "ru"),
            ("legal-b", ("r-legal-b",), "en"),
            ("warning-high", ("r-warning-high",), "en"),
            ("warning-low", ("r-warning-low",), "en"),
            ("info", ("r-info",), "en"),
        ],
        ["discourage_sharing", "hide_comments", "hide_share_buttons", "withhold_article"],
    ),
    (
        "one rule of two",
        article("p"),
        reader(),
        [("legal-a", ("r-legal-a-1",), "uk")],
        ["discourage_sharing"],
    ),
    ("nothing", article("p"), reader("US"), [], []),
    (
        "reader language with fallback",
        article("p"),
        reader(None, None, "ru-ru"),
        [("legal-a", ("r-legal-a-1",), "ru")],
        ["discourage_sharing"],
    ),
    (
        "reader languages in order, before the article's",
        article("p", language="en"),
        reader(None, None, "de", "pt-br", "ru"),
        [("legal-a", ("r-legal-a-1",), "pt-br")],
        ["discourage_sharing"],
    ),
    (
        "a reader's regional tag falls back to the primary language",
        article("p", language="en"),
        reader(None, None, "de", "ru-ua"),
        [("legal-a", ("r-legal-a-1",), "ru")],
        ["discourage_sharing"],
    ),
    (
        "then the article's language, with fallback",
        article("p", language="en-gb"),
        reader(),
        [("legal-a", ("r-legal-a-1",), "en")],
        ["discourage_sharing"],
    ),
    (
        "then the notice's default language",
        article("p", language="de"),
        reader(None, None, "fr"),
        [("legal-a", ("r-legal-a-1",), "uk")],
        ["discourage_sharing"],
    ),
]


@pytest.mark.parametrize(
    ("art", "who", "shown", "effects"),
    [row[1:] for row in SHOW_TABLE],
    ids=[row[0] for row in SHOW_TABLE],
)
def test_notices_shown(art: Article, who: Reader, shown: list[Shown], effects: list[str]) -> None:
    decision = SHOWING.decide(art, who, AT)
    assert [(n.id, n.rules, n.language) for n in decision.notices] == shown
    assert list(decision.effects) == effects


def test_shown_notice_carries_the_chosen_text() -> None:
    decision = SHOWING.decide(article("p"), reader(None, None, "en"), AT)
    (notice,) = decision.notices
    assert (notice.severity, notice.placement, notice.language) == ("legal", "banner", "en")
    assert (notice.title, notice.body, notice.link) == ("Legal A", "Body", "https://example.org/en")


def test_decision_records_its_inputs() -> None:
    who = reader("RU", "RU-MOW", "ru")
    decision = SHOWING.decide(article("p"), who, AT)
    assert decision.ruleset == SHOWING.ruleset.hash
    assert decision.ruleset.startswith("sha256:")
    assert (decision.at, decision.reader, decision.languages) == (AT, who.location, ("ru",))


def test_same_input_same_output_whatever_the_rule_order() -> None:
    rules = SHOWING.ruleset
    backwards = Engine(
        Ruleset.build(
            list(reversed(rules.regions.values())),
            list(reversed(rules.notices.values())),
            list(reversed(rules.rules.values())),
        )
    )
    for art, who, *_ in [row[1:] for row in SHOW_TABLE]:
        first = SHOWING.decide(art, who, AT)
        assert SHOWING.decide(art, who, AT) == first
        assert backwards.decide(art, who, AT) == first


# ---- the index agrees with a plain reading of design.md -----------------------------------

COUNTRIES = ["RU", "UA", "US"]
SUBDIVISIONS = ["UA-43", "UA-40", "UA-30", "RU-MOW", "US-CA"]
# Where readers are: mostly a subdivision of their country, sometimes not (Crimea located as RU).
PLACES = [
    (None, None),
    ("RU", None),
    ("RU", "RU-MOW"),
    ("RU", "UA-43"),
    ("UA", None),
    ("UA", "UA-43"),
    ("UA", "UA-40"),
    ("UA", "UA-30"),
    ("US", "US-CA"),
    (None, "UA-43"),
]
PUBLISHERS = ["a", "b"]
TAGS = ["t1", "t2", "t3"]
RULE_LANGUAGES = ["en", "ru", "en-gb"]
SIGNAL_LANGUAGES = ["ru", "uk", "pt-br"]
READER_LANGUAGES = ["ru", "ru-ru", "uk", "pt", "pt-br", "en"]
TEXT_LANGUAGES = ["en", "ru", "uk", "pt-br"]
INSTANTS = [utc("2024-01-01"), utc("2024-02-20"), utc("2024-02-19T23:59:59"), utc("2025-01-01")]
EFFECTS = ["discourage_sharing", "hide_share_buttons", "hide_comments", "withhold_article"]


def subset(items: list[str], max_size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), max_size=max_size, unique=True) if items else st.just([])


def seldom(items: list[str], max_size: int = 1) -> st.SearchStrategy[list[str]]:
    """A condition that is usually absent, so that random rules still match random articles."""
    return st.one_of(st.just([]), st.just([]), st.just([]), subset(items, max_size))


@st.composite
def rulesets(draw: st.DrawFn) -> Ruleset:
    regions = []
    for i in range(draw(st.integers(1, 4))):
        regions.append(
            Region.model_validate(
                {
                    "id": f"r{i}",
                    "countries": draw(subset(COUNTRIES, 2)),
                    "subdivisions": draw(subset(SUBDIVISIONS, 2)),
                    "include": draw(subset([f"r{j}" for j in range(i)], 2)),  # no cycles
                    "exclude": {
                        "countries": draw(seldom(COUNTRIES)),
                        "subdivisions": draw(subset(SUBDIVISIONS, 2)),
                    },
                }
            )
        )
    notices = []
    for i in range(draw(st.integers(1, 3))):
        texts = draw(st.lists(st.sampled_from(TEXT_LANGUAGES), min_size=1, max_size=3, unique=True))
        notices.append(
            Notice.model_validate(
                {
                    "id": f"n{i}",
                    "severity": draw(st.sampled_from(["legal", "warning", "info"])),
                    "priority": draw(st.integers(-1, 1)),
                    "default_language": draw(st.sampled_from(texts)),
                    "texts": {t: {"title": f"{i}-{t}", "body": "b"} for t in texts},
                }
            )
        )
    rules = []
    for i in range(draw(st.integers(1, 6))):
        reader_condition = {
            "regions": draw(subset([r.id for r in regions], 2)),
            "unknown_location": draw(st.sampled_from(["show", "skip"])),
            "anonymized": draw(st.sampled_from(["show", "skip"])),
            "languages": draw(subset(SIGNAL_LANGUAGES, 1)),
        }
        if not (reader_condition["regions"] or reader_condition["languages"]):
            reader_condition["anonymized"] = "show"
        start, until = draw(st.sampled_from([None, *INSTANTS])), draw(st.sampled_from([None, *INSTANTS]))
        if start is not None and until is not None and until <= start:
            until = None  # `until` not after `from` is a load error, not a rule
        rules.append(
            Rule.model_validate(
                {
                    "id": f"rule{i}",
                    "notice": draw(st.sampled_from(notices)).id,
                    "article": {
                        "publisher": draw(seldom(PUBLISHERS)),
                        "section": draw(seldom(["s1", "s2"])),
                        "tags": {
                            "any": draw(seldom(TAGS, 2)),
                            "all": draw(seldom(TAGS, 2)),
                            "none": draw(seldom(TAGS)),
                        },
                        "language": draw(seldom(RULE_LANGUAGES)),
                        "type": draw(seldom(["video", "article"])),
                    },
                    "reader": reader_condition,
                    "effective": {"from": start, "until": until},
                    "effects": draw(subset(EFFECTS, 2)),
                }
            )
        )
    return Ruleset.build(regions, notices, rules)


@st.composite
def requests(draw: st.DrawFn) -> tuple[Article, Reader, datetime]:
    art = Article(
        publisher=draw(st.sampled_from([*PUBLISHERS, "c"])),
        section=draw(st.sampled_from([None, "s1", "s2", "s3"])),
        tags=frozenset(draw(subset(TAGS, 3))),
        language=draw(st.sampled_from([None, "en", "en-gb", "ru", "ru-ru"])),
        type=draw(st.sampled_from([None, "video", "article", "live"])),
    )
    country, subdivision = draw(st.sampled_from(PLACES))
    location = Location(country, subdivision, "explicit", draw(st.booleans()))
    who = Reader(location, tuple(draw(subset(READER_LANGUAGES, 3))))
    return art, who, draw(st.sampled_from([*INSTANTS, utc("2024-02-20T00:00:01")]))


def prefixes(tag: str) -> list[str]:
    parts = tag.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def reference(ruleset: Ruleset, art: Article, who: Reader, at: datetime) -> dict[str, Any]:
    """design.md read literally: every rule, every condition, no index."""
    regions = ruleset.regions
    country, subdivision = who.location.country, who.location.subdivision

    def by_subdivision(region_id: str, code: str) -> bool:
        r = regions[region_id]
        if code in r.exclude.subdivisions or code.split("-")[0] in r.exclude.countries:
            return False
        return code in r.subdivisions or any(by_subdivision(i, code) for i in r.include)

    def by_country(region_id: str) -> bool:
        r = regions[region_id]
        if country in r.exclude.countries or subdivision in r.exclude.subdivisions:
            return False
        return country in r.countries or any(by_country(i) for i in r.include)

    def in_region(region_id: str) -> bool:
        return (subdivision is not None and by_subdivision(region_id, subdivision)) or (
            country is not None and by_country(region_id)
        )

    def possibly_in(region_id: str) -> bool:
        """Known country, unknown subdivision, and some subdivision of that country is in the region."""
        if country is None or subdivision is not None or by_country(region_id):
            return False
        named = {s for r in regions.values() for s in (*r.subdivisions, *r.exclude.subdivisions)}
        return any(by_subdivision(region_id, s) for s in named if s.startswith(country + "-"))

    def article_fits(rule: Rule) -> bool:
        a = rule.article
        return (
            (not a.publisher or art.publisher in a.publisher)
            and (not a.section or art.section in a.section)
            and (not a.tags.any or bool(set(a.tags.any) & art.tags))
            and set(a.tags.all) <= art.tags
            and not set(a.tags.none) & art.tags
            and (
                not a.language
                or (art.language is not None and any(t in a.language for t in prefixes(art.language)))
            )
            and (not a.type or art.type in a.type)
        )

    def reader_fits(rule: Rule) -> bool:
        r = rule.reader
        unknown = country is None and subdivision is None
        return (
            any(in_region(i) for i in r.regions)
            or (r.unknown_location == "show" and unknown)
            or (r.unknown_location == "show" and any(possibly_in(i) for i in r.regions))
            or (r.anonymized == "show" and who.location.anonymized)
            or any(t in r.languages for tag in who.languages for t in prefixes(tag))
        )

    def in_period(rule: Rule) -> bool:
        start, until = rule.effective.start, rule.effective.until
        return (start is None or start <= at) and (until is None or at < until)

    matched = sorted(
        rule.id
        for rule in ruleset.rules.values()
        if in_period(rule) and article_fits(rule) and reader_fits(rule)
    )
    given_by: dict[str, list[str]] = {}
    for rule_id in matched:
        given_by.setdefault(ruleset.rules[rule_id].notice, []).append(rule_id)
    severity = {"legal": 0, "warning": 1, "info": 2}
    order = sorted(
        given_by, key=lambda n: (severity[ruleset.notices[n].severity], -ruleset.notices[n].priority, n)
    )

    def language(notice: Notice) -> str:
        wanted = [*who.languages, *([art.language] if art.language else [])]
        for tag in wanted:
            for candidate in prefixes(tag):
                if candidate in notice.texts:
                    return candidate
        return notice.default_language

    return {
        "rules": matched,
        "notices": [(n, tuple(given_by[n]), language(ruleset.notices[n])) for n in order],
        "effects": sorted({e for rule_id in matched for e in ruleset.rules[rule_id].effects}),
    }


def observed(decision: Decision) -> dict[str, Any]:
    return {
        "rules": list(decision.rules),
        "notices": [(n.id, n.rules, n.language) for n in decision.notices],
        "effects": list(decision.effects),
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ruleset=rulesets(), request=st.lists(requests(), min_size=1, max_size=5))
def test_engine_agrees_with_reference(
    ruleset: Ruleset, request: list[tuple[Article, Reader, datetime]]
) -> None:
    engine = Engine(ruleset)
    for art, who, at in request:
        expected = reference(ruleset, art, who, at)
        event(f"rules matched: {min(len(expected['rules']), 2)}")
        assert observed(engine.decide(art, who, at)) == expected


# ---- supersession --------------------------------------------------------------------------

SUPERSEDING = engine_from_yaml(
    """
    regions:
      - {id: russia, countries: [RU]}
      - {id: crimea, subdivisions: [UA-43]}
    notices:
      - {id: general, severity: legal, default_language: en, texts: {en: {title: G, body: g}}}
      - id: strict
        severity: legal
        default_language: en
        texts: {en: {title: S, body: s}}
        supersedes: [general]
    rules:
      - {id: everywhere, notice: general, reader: {regions: [russia, crimea]}, effects: [discourage_sharing]}
      - {id: crimea-only, notice: strict, reader: {regions: [crimea]}, effects: [hide_comments]}
    """
)


@pytest.mark.parametrize(
    ("who", "shown", "superseded", "effects"),
    [
        (reader("RU"), ["general"], [], ["discourage_sharing"]),
        (
            reader("UA", "UA-43"),
            ["strict"],
            [("general", "strict", ("everywhere",))],
            ["discourage_sharing", "hide_comments"],
        ),
        (reader("US"), [], [], []),
    ],
)
def test_a_superseding_notice_replaces_the_general_one(
    who: Reader, shown: list[str], superseded: list[tuple[str, str, tuple[str, ...]]], effects: list[str]
) -> None:
    decision = SUPERSEDING.decide(article("any"), who, AT)
    assert [n.id for n in decision.notices] == shown
    assert [(s.id, s.by, s.rules) for s in decision.superseded] == superseded
    assert list(decision.effects) == effects
    assert set(decision.rules) >= {r for _, _, rules in superseded for r in rules}


# ---- the memoized engine agrees with a fresh evaluation -------------------------------------

# Every rule period starts or ends at one of INSTANTS: ask at them, just before and just after.
NEAR_BOUNDS = [i + timedelta(microseconds=d) for i in INSTANTS for d in (-1, 0, 1)] + [
    utc("2000-01-01"),
    utc("2100-01-01"),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ruleset=rulesets(),
    request=st.lists(st.tuples(requests(), st.sampled_from(NEAR_BOUNDS)), min_size=5, max_size=12),
)
def test_memoized_engine_agrees_with_fresh_evaluation(
    ruleset: Ruleset, request: list[tuple[tuple[Article, Reader, datetime], datetime]]
) -> None:
    """The memo key holds everything a decision depends on, and instants are bucketed safely:
    a small memo (so entries are also evicted) answers as an engine without memos, which
    answers as the reference, for every request asked twice and at instants around bounds."""
    memoized = Engine(ruleset, memo_bytes=4096, text_memo_size=4)
    asked = [(art, who, at) for (art, who, _), at in request]
    for art, who, at in asked + asked[::-1]:
        fresh = Engine(ruleset, memo_bytes=0).decide(art, who, at)
        assert memoized.decide(art, who, at) == fresh
        assert observed(fresh) == reference(ruleset, art, who, at)
    hits = memoized.memo_info()["decisions"]["hits"]
    event(f"memo hits: {min(hits or 0, 3)}")


def test_memos_are_bounded_and_can_be_turned_off() -> None:
    engine = Engine(MATCHING.ruleset, memo_bytes=3000)
    for publisher in ("geo", "opts", "lang", "cond", "period", "other"):
        engine.decide(article(publisher), reader("RU"), AT)
        engine.decide(article(publisher), reader("RU"), AT)
    info = engine.memo_info()["decisions"]
    assert (info["hits"], info["misses"], info["maxbytes"]) == (6, 6, 3000)
    assert 0 < info["currsize"] < 6 and 0 < info["bytes"] <= 3000  # type: ignore[operator]
    assert Engine(MATCHING.ruleset, memo_bytes=0).memo_info() == {}


@pytest.mark.parametrize(
    ("at", "window"),
    [
        (utc("2024-02-19T23:59:59.999999"), 0),
        (utc("2024-02-20"), 1),
        (utc("2024-02-29T23:59:59.999999"), 1),
        (utc("2024-03-01"), 2),
        (utc("2030-01-01"), 2),
    ],
)
def test_instants_are_bucketed_by_the_periods_bounds(at: datetime, window: int) -> None:
    """`period` runs from 2024-02-20 until 2024-03-01: the only bounds in MATCHING."""
    assert MATCHING.query(article("period"), reader("RU"), at).window == window
