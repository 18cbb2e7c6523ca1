"""The decision engine: compiles a ruleset into an index once, then decides per request, purely."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from service import languages
from service.decision import Decision, Match, ShownNotice, Superseded
from service.inputs import Article, Reader
from service.model import Notice, Rule
from service.ruleset import Ruleset

ANY = ""  # index key for rules that name no publisher


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its article conditions turned into sets for quick tests."""

    rule: Rule
    publishers: frozenset[str]
    sections: frozenset[str]
    tags_any: frozenset[str]
    tags_all: frozenset[str]
    tags_none: frozenset[str]
    languages: frozenset[str]
    types: frozenset[str]

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        a = rule.article
        return cls(
            rule,
            frozenset(a.publisher),
            frozenset(a.section),
            frozenset(a.tags.any),
            frozenset(a.tags.all),
            frozenset(a.tags.none),
            frozenset(a.language),
            frozenset(a.type),
        )

    def fits(self, article: Article) -> bool:
        """Every article condition the rule states holds."""
        return (
            (not self.publishers or article.publisher in self.publishers)
            and (not self.sections or article.section in self.sections)
            and (not self.tags_any or not self.tags_any.isdisjoint(article.tags))
            and self.tags_all <= article.tags
            and self.tags_none.isdisjoint(article.tags)
            and (not self.languages or _language_in(article.language, self.languages))
            and (not self.types or article.type in self.types)
        )


def _language_in(tag: str | None, wanted: frozenset[str]) -> bool:
    return tag is not None and any(t in wanted for t in languages.fallbacks(tag))


@dataclass(frozen=True, slots=True)
class _RegionEntry:
    rule: CompiledRule
    region: str
    excluded: frozenset[str]  # subdivisions excluded when matching by country


class Engine:
    """Decides from one ruleset. Build once per ruleset; `decide` is a pure function."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.hash = ruleset.hash
        self._by_code: dict[tuple[str, str], list[_RegionEntry]] = defaultdict(list)
        self._unknown: dict[str, list[CompiledRule]] = defaultdict(list)
        self._anonymized: dict[str, list[CompiledRule]] = defaultdict(list)
        self._by_language: dict[tuple[str, str], list[CompiledRule]] = defaultdict(list)
        for rule in ruleset.rules.values():
            self._index(CompiledRule.of(rule))

    def _index(self, compiled: CompiledRule) -> None:
        rule = compiled.rule
        for publisher in rule.article.publisher or (ANY,):
            for region_id in rule.reader.regions:
                area = self.ruleset.areas[region_id]
                for country, excluded in area.countries.items():
                    self._by_code[publisher, country].append(_RegionEntry(compiled, region_id, excluded))
                for subdivision in area.subdivisions:
                    self._by_code[publisher, subdivision].append(
                        _RegionEntry(compiled, region_id, frozenset())
                    )
            if rule.reader.unknown_location == "show":
                self._unknown[publisher].append(compiled)
            if rule.reader.anonymized == "show":
                self._anonymized[publisher].append(compiled)
            for tag in rule.reader.languages:
                self._by_language[publisher, tag].append(compiled)

    def decide(self, article: Article, reader: Reader, at: datetime) -> Decision:
        """The notices and effects for this article and reader at instant `at` (UTC)."""
        matches: dict[str, Match] = {}
        for rule, match in self._candidates(article, reader):
            if rule.rule.id not in matches and rule.rule.effective.holds(at) and rule.fits(article):
                matches[rule.rule.id] = match
        ordered = tuple(sorted(matches.values(), key=lambda m: m.rule))
        shown, superseded = self._notices(ordered)
        return Decision(
            ruleset=self.hash,
            at=at,
            reader=reader.location,
            languages=reader.languages,
            notices=tuple(_shown(n, rules, article, reader) for n, rules in shown),
            # Effects of every matched rule apply, also those whose notice was superseded:
            # a replaced text does not make sharing any safer.
            effects=tuple(sorted({e for m in ordered for e in self.ruleset.rules[m.rule].effects})),
            matches=ordered,
            superseded=superseded,
        )

    def _candidates(self, article: Article, reader: Reader) -> Iterable[tuple[CompiledRule, Match]]:
        """Rules that could match this reader, by index; article conditions are checked after."""
        location = reader.location
        for publisher in (article.publisher, ANY):
            for code in (location.subdivision, location.country):
                if code is None:
                    continue
                for entry in self._by_code.get((publisher, code), ()):
                    if code == location.country and location.subdivision in entry.excluded:
                        continue
                    yield entry.rule, Match(entry.rule.rule.id, "region", entry.region, code)
            if not location.known:
                for rule in self._unknown.get(publisher, ()):
                    yield rule, Match(rule.rule.id, "unknown_location")
            if location.anonymized:
                for rule in self._anonymized.get(publisher, ()):
                    yield rule, Match(rule.rule.id, "anonymized")
            for tag in reader.languages:
                for candidate in languages.fallbacks(tag):
                    for rule in self._by_language.get((publisher, candidate), ()):
                        yield rule, Match(rule.rule.id, "language", code=candidate)

    def _notices(
        self, matches: tuple[Match, ...]
    ) -> tuple[list[tuple[Notice, tuple[str, ...]]], tuple[Superseded, ...]]:
        """Notices to show in display order with their rules, and those superseded."""
        by_notice: dict[str, list[str]] = defaultdict(list)
        for match in matches:
            by_notice[self.ruleset.rules[match.rule].notice].append(match.rule)
        notices = sorted((self.ruleset.notices[n] for n in by_notice), key=lambda n: n.rank)
        superseded_by = {old: n.id for n in reversed(notices) for old in n.supersedes if old in by_notice}
        shown = [(n, tuple(by_notice[n.id])) for n in notices if n.id not in superseded_by]
        superseded = tuple(
            Superseded(n.id, superseded_by[n.id], tuple(by_notice[n.id]))
            for n in notices
            if n.id in superseded_by
        )
        return shown, superseded


def _shown(notice: Notice, rules: tuple[str, ...], article: Article, reader: Reader) -> ShownNotice:
    language = languages.choose(notice.texts, reader.languages, article.language, notice.default_language)
    text = notice.texts[language]
    return ShownNotice(
        id=notice.id,
        severity=notice.severity,
        placement=notice.placement,
        language=language,
        title=text.title,
        body=text.body,
        link=text.link,
        rules=rules,
    )
