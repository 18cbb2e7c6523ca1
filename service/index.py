"""The engine's index: rules by publisher and reader key, each list indexed again by an article condition.

Built once per ruleset. A decision looks in a few buckets (`Index.buckets`) and tests only the
rules there: an article meets about the rules that apply to it, whatever the rule count."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from service import languages
from service.decision import POSSIBLY_IN_REGION, Match
from service.model import Rule
from service.ruleset import Area, Ruleset

ANY = ""  # the publisher key of rules that name no publisher


class Query(NamedTuple):
    """Everything a decision depends on: the article's publisher, section, tags, language and
    type, the reader's country, subdivision, anonymizer flag and languages, and the window of
    the instant (its place among the ruleset's `from`/`until` instants: see `Engine`)."""

    publisher: str
    section: str | None
    tags: frozenset[str]
    language: str | None
    type: str | None
    country: str | None
    subdivision: str | None
    anonymized: bool
    languages: tuple[str, ...]
    window: int


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule's article conditions as sets, and its period as the windows it is in effect in."""

    id: str
    sections: frozenset[str]
    tags_any: frozenset[str]
    tags_all: frozenset[str]
    tags_none: frozenset[str]
    languages: frozenset[str]
    types: frozenset[str]
    first_window: int
    end_window: int  # in effect in windows first_window <= w < end_window
    unconditional: bool  # no article condition but the publisher: every article fits

    @classmethod
    def of(
        cls, rule: Rule, window_starts: Sequence[datetime], sets: dict[frozenset[str], frozenset[str]]
    ) -> CompiledRule:
        """`window_starts`: the first instant of each window; the period is asked at each (by
        bisection: it holds on one run of consecutive windows). `sets`: the sets made so far, so
        that rules with the same condition share one."""

        def shared(values: tuple[str, ...]) -> frozenset[str]:
            made = frozenset(values)
            return sets.setdefault(made, made)

        a, period = rule.article, rule.effective
        return cls(
            rule.id,
            shared(a.section),
            shared(a.tags.any),
            shared(a.tags.all),
            shared(a.tags.none),
            shared(a.language),
            shared(a.type),
            bisect_left(window_starts, True, key=period.started),
            bisect_left(window_starts, True, key=period.ended),
            not (a.section or a.tags.any or a.tags.all or a.tags.none or a.language or a.type),
        )

    def fits(self, query: Query) -> bool:
        """Every article condition but the publisher holds (the index has checked that one)."""
        tags = query.tags
        return (
            (not self.sections or query.section in self.sections)
            and (not self.tags_any or not self.tags_any.isdisjoint(tags))
            and self.tags_all <= tags
            and self.tags_none.isdisjoint(tags)
            and (not self.languages or languages.covered(query.language, self.languages))
            and (not self.types or query.type in self.types)
        )


class Entry(NamedTuple):
    """A rule under one index key, with the reason it matches by that key. `area` is set when a
    rule is filed under a country its region holds but for some subdivisions: `Area.match` says
    whether a reader of that country is in."""

    rule: CompiledRule
    match: Match
    area: Area | None = None


class Bucket:
    """The entries under one index key, indexed again by one article condition each rule
    requires, so an article meets few more rules than it fits: a tag of `tags.all` or of
    `tags.any`, else a section, a type or a language. `always` holds the rules that require none
    of these, and every rule of a bucket of at most `SMALL` entries: testing those few costs less
    than looking them up."""

    __slots__ = ("entries", "always", "by_tag", "by_section", "by_type", "by_language")

    SMALL = 4

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = tuple(entries)  # in index order
        if len(entries) <= self.SMALL:
            self.always, self.by_tag, self.by_section, self.by_type, self.by_language = (
                self.entries,
                {},
                {},
                {},
                {},
            )
            return
        always: list[Entry] = []
        by_tag: dict[str, list[Entry]] = defaultdict(list)
        by_section: dict[str, list[Entry]] = defaultdict(list)
        by_type: dict[str, list[Entry]] = defaultdict(list)
        by_language: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:  # in index order, which `add_fitting` relies on
            rule = entry.rule
            if rule.tags_all:
                by_tag[min(rule.tags_all)].append(entry)
                continue
            keyed, values = (
                (by_tag, rule.tags_any)
                if rule.tags_any
                else (by_section, rule.sections)
                if rule.sections
                else (by_type, rule.types)
                if rule.types
                else (by_language, rule.languages)
            )
            if not values:
                always.append(entry)
            for value in values:
                keyed[value].append(entry)
        self.always = tuple(always)
        self.by_tag = _frozen(by_tag)
        self.by_section = _frozen(by_section)
        self.by_type = _frozen(by_type)
        self.by_language = _frozen(by_language)

    def add_fitting(self, found: dict[str, Match], query: Query, by_country: bool = False) -> None:
        """Adds to `found` each rule of the bucket, not found yet, that fits the query, and, in
        a bucket of a country (`by_country`), whose area holds the reader.

        A rule under several entries of one bucket (two regions with the same country) sits
        in the same lists in index order, so its first entry that applies is the one found,
        as in a plain walk of the index."""
        groups: list[tuple[Entry, ...]] = [self.always] if self.always else []
        if self.by_tag:
            by_tag = self.by_tag
            groups += [g for tag in query.tags if (g := by_tag.get(tag)) is not None]
        if query.section is not None and (g := self.by_section.get(query.section)) is not None:
            groups.append(g)
        if query.type is not None and (g := self.by_type.get(query.type)) is not None:
            groups.append(g)
        if query.language is not None and self.by_language:
            by_language = self.by_language
            tags = languages.fallbacks(query.language)
            groups += [g for t in tags if (g := by_language.get(t)) is not None]
        window = query.window
        for group in groups:
            for entry in group:
                rule = entry.rule
                if (
                    rule.id not in found
                    and rule.first_window <= window < rule.end_window  # in effect
                    and (rule.unconditional or rule.fits(query))
                    and (
                        not by_country
                        or entry.area is None
                        or entry.area.match(query.country, query.subdivision) is not None
                    )
                ):
                    found[rule.id] = entry.match


def _frozen(keyed: dict[str, list[Entry]]) -> dict[str, tuple[Entry, ...]]:
    return {value: tuple(entries) for value, entries in keyed.items()}


class Index:
    """Buckets by (publisher, country or subdivision) and by (publisher, reason): unknown
    location, possibly in a region, anonymized, or a language signal."""

    def __init__(self, ruleset: Ruleset, window_starts: Sequence[datetime]) -> None:
        by_code: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        by_reason: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        areas = ruleset.areas
        sets: dict[frozenset[str], frozenset[str]] = {}
        for rule in ruleset.rules.values():
            _file(rule, CompiledRule.of(rule, window_starts, sets), areas, by_code, by_reason)
        self.by_code = {key: Bucket(entries) for key, entries in by_code.items()}
        self.by_reason = {key: Bucket(entries) for key, entries in by_reason.items()}
        self.signals = any(reason.startswith("language:") for _, reason in by_reason)

    def buckets(self, query: Query) -> Iterator[tuple[Bucket, bool]]:
        """The buckets a decision looks in, in the order their reasons rank, each with whether
        it is a country's: for the article's publisher, then for any publisher, by subdivision,
        by country, unknown location, possibly in a region, anonymized, then the reader's
        languages with their fallbacks."""
        by_code, by_reason = self.by_code, self.by_reason
        country, subdivision = query.country, query.subdivision
        for p in (query.publisher, ANY):
            if subdivision is not None and (bucket := by_code.get((p, subdivision))) is not None:
                yield bucket, False
            if country is not None and (bucket := by_code.get((p, country))) is not None:
                yield bucket, True
            if not by_reason:
                continue
            if country is None and subdivision is None:
                if (bucket := by_reason.get((p, "unknown_location"))) is not None:
                    yield bucket, False
            elif subdivision is None:
                if (bucket := by_reason.get((p, f"{POSSIBLY_IN_REGION}:{country}"))) is not None:
                    yield bucket, False
            if query.anonymized and (bucket := by_reason.get((p, "anonymized"))) is not None:
                yield bucket, False
            if self.signals:
                for reason in _signal_keys(query.languages):
                    if (bucket := by_reason.get((p, reason))) is not None:
                        yield bucket, False


@lru_cache(maxsize=4096)
def _signal_keys(tags: tuple[str, ...]) -> tuple[str, ...]:
    """Index keys of the language signals a reader with these languages meets, in order."""
    return tuple(f"language:{t}" for tag in tags for t in languages.fallbacks(tag))


def _file(
    rule: Rule,
    compiled: CompiledRule,
    areas: Mapping[str, Area],
    by_code: dict[tuple[str, str], list[Entry]],
    by_reason: dict[tuple[str, str], list[Entry]],
) -> None:
    """Files the rule under every key it may match by."""
    reader = rule.reader
    for publisher in rule.article.publisher or (ANY,):
        for region_id in reader.regions:
            area = areas[region_id]
            for country, excluded in area.countries.items():
                match = Match(rule.id, "region", region_id, country)
                by_code[publisher, country].append(Entry(compiled, match, area if excluded else None))
            for subdivision in area.subdivisions:
                by_code[publisher, subdivision].append(
                    Entry(compiled, Match(rule.id, "region", region_id, subdivision))
                )
        if reader.unknown_location == "show":
            by_reason[publisher, "unknown_location"].append(
                Entry(compiled, Match(rule.id, "unknown_location"))
            )
            for region_id in reader.regions:
                for country in sorted(areas[region_id].partly()):
                    match = Match(rule.id, POSSIBLY_IN_REGION, region_id, country)
                    by_reason[publisher, f"{POSSIBLY_IN_REGION}:{country}"].append(Entry(compiled, match))
        if reader.anonymized == "show":
            by_reason[publisher, "anonymized"].append(Entry(compiled, Match(rule.id, "anonymized")))
        for tag in reader.languages:
            by_reason[publisher, f"language:{tag}"].append(
                Entry(compiled, Match(rule.id, "language", code=tag))
            )
