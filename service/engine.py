"""The decision engine: compiles a ruleset into an index once, then decides per request, purely."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from service import languages
from service.decision import POSSIBLY_IN_REGION, Decision, Match, ShownNotice, Superseded
from service.inputs import Article, Reader
from service.memo import ByteBoundedMemo
from service.model import Notice, Rule
from service.ruleset import Ruleset

ANY = ""  # index key for rules that name no publisher
POSSIBLY = POSSIBLY_IN_REGION
DEFAULT_MEMO_BYTES = 16 * 1024 * 1024
"""Estimated bytes of decision outcomes remembered per engine (least recently used go first); 0: none."""
DEFAULT_TEXT_MEMO_SIZE = 4_096
"""Rendered notice lists remembered per engine, by matches and languages."""

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its article conditions turned into sets, and its period, for quick tests."""

    rule: Rule
    publishers: frozenset[str]
    sections: frozenset[str]
    tags_any: frozenset[str]
    tags_all: frozenset[str]
    tags_none: frozenset[str]
    languages: frozenset[str]
    types: frozenset[str]
    start: datetime | None = None
    until: datetime | None = None

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
            rule.effective.start,
            rule.effective.until,
        )

    def fits(self, article: Article) -> bool:
        """Every article condition the rule states holds."""
        return (not self.publishers or article.publisher in self.publishers) and self.fits_fields(
            article.section, article.tags, article.language, article.type
        )

    def fits_fields(
        self, section: str | None, tags: frozenset[str], language: str | None, type_: str | None
    ) -> bool:
        """Every article condition but the publisher holds (the index has checked that one)."""
        return (
            (not self.sections or section in self.sections)
            and (not self.tags_any or not self.tags_any.isdisjoint(tags))
            and self.tags_all <= tags
            and self.tags_none.isdisjoint(tags)
            and (not self.languages or _language_in(language, self.languages))
            and (not self.types or type_ in self.types)
        )


@lru_cache(maxsize=4096)
def _fallbacks(tag: str) -> tuple[str, ...]:
    """`languages.fallbacks`, remembered: the same few tags come with every request."""
    return tuple(languages.fallbacks(tag))


@lru_cache(maxsize=4096)
def _signal_keys(tags: tuple[str, ...]) -> tuple[str, ...]:
    """Index keys of the language signals a reader with these languages meets, in order."""
    return tuple(f"language:{t}" for tag in tags for t in _fallbacks(tag))


@lru_cache(maxsize=4096)
def _text_languages(preferred: tuple[str, ...], article_language: str | None) -> tuple[str, ...]:
    """Tags to choose a notice's text by, best first: the reader's languages, then the article's,
    each with its fallbacks (see languages.choose); the notice's default comes after them."""
    wanted = [*preferred, article_language] if article_language else preferred
    return tuple(dict.fromkeys(t for tag in wanted for t in _fallbacks(tag)))


def _language_in(tag: str | None, wanted: frozenset[str]) -> bool:
    return tag is not None and any(t in wanted for t in _fallbacks(tag))


@dataclass(frozen=True, slots=True)
class _Entry:
    """A rule under one index key, with the reason it matches by that key."""

    rule: CompiledRule
    match: Match
    excluded: frozenset[str] = frozenset()  # subdivisions excluded when matching by country


class _Bucket:
    """The entries under one index key (publisher and code, reason or language), indexed again
    by one article condition each rule requires, so an article meets few more rules than it
    fits: a tag of `tags.all` or of `tags.any`, else a section, a type or a language. `always`
    holds the rules that require none of these."""

    __slots__ = ("entries", "always", "by_tag", "by_section", "by_type", "by_language")

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = tuple(entries)  # in index order
        always: list[_Entry] = []
        keyed: dict[str, dict[str, list[_Entry]]] = {k: defaultdict(list) for k in "tsyl"}
        for entry in entries:  # in index order, which `add_fitting` relies on
            rule = entry.rule
            if rule.tags_all:
                keyed["t"][min(rule.tags_all)].append(entry)
            elif rule.tags_any:
                for tag in rule.tags_any:
                    keyed["t"][tag].append(entry)
            elif rule.sections or rule.types or rule.languages:
                kind, values = (
                    ("s", rule.sections)
                    if rule.sections
                    else ("y", rule.types)
                    if rule.types
                    else ("l", rule.languages)
                )
                for value in values:
                    keyed[kind][value].append(entry)
            else:
                always.append(entry)
        frozen = {k: {v: tuple(e) for v, e in d.items()} for k, d in keyed.items()}
        self.always = tuple(always)
        self.by_tag = frozen["t"]
        self.by_section = frozen["s"]
        self.by_type = frozen["y"]
        self.by_language = frozen["l"]

    def add_fitting(self, found: dict[str, Match], request: _Request, subdivision: str | None = None) -> None:
        """Adds to `found` each rule of the bucket, not found yet, in effect at the instant,
        whose article conditions hold, unless `subdivision` is excluded from its entry.

        A rule under several entries of one bucket (two regions with the same country) sits
        in the same lists in index order, so its first entry that applies is the one found,
        as in a plain walk of the index."""
        section, tags, language, type_, at = request
        groups: list[tuple[_Entry, ...]] = [self.always] if self.always else []
        if self.by_tag:
            groups += [g for tag in tags if (g := self.by_tag.get(tag)) is not None]
        if section is not None and (g := self.by_section.get(section)) is not None:
            groups.append(g)
        if type_ is not None and (g := self.by_type.get(type_)) is not None:
            groups.append(g)
        if language is not None and self.by_language:
            groups += [g for t in _fallbacks(language) if (g := self.by_language.get(t)) is not None]
        for group in groups:
            for entry in group:
                rule = entry.rule
                if (
                    rule.rule.id not in found
                    and (rule.start is None or rule.start <= at)
                    and (rule.until is None or at < rule.until)
                    and (subdivision is None or subdivision not in entry.excluded)
                    and rule.fits_fields(section, tags, language, type_)
                ):
                    found[rule.rule.id] = entry.match


# What `_Bucket.add_fitting` needs of a request: article section, tags, language, type; instant.
_Request = tuple[str | None, frozenset[str], str | None, str | None, datetime]
# The outcome of a decision without its instant and reader: notices, effects, matches, superseded.
_Outcome = tuple[tuple[ShownNotice, ...], tuple[str, ...], tuple[Match, ...], tuple[Superseded, ...]]
_Rendered = tuple[tuple[ShownNotice, ...], tuple[str, ...], tuple[Superseded, ...]]
_NOTHING: _Outcome = ((), (), (), ())
# Everything an outcome depends on: the article's publisher, section, tags, language and type,
# the reader's country, subdivision, anonymizer flag and languages, and the instant's window.
_Key = tuple[
    str,
    str | None,
    frozenset[str],
    str | None,
    str | None,  # publisher, section, tags, language, type
    str | None,
    str | None,
    bool,
    tuple[str, ...],  # country, subdivision, anonymized, languages
    int,  # window
]


# Rough CPython sizes, for the memo's estimate: what an entry holds besides the text of its tags.
_ENTRY_BYTES = 1200  # the key and value tuples, the memo's node, the outcome's tuples, the words
_STRING_BYTES = 90  # a str object and its slot in a frozenset or tuple
_MATCH_BYTES = 200  # a Match made for this outcome (notices are shared with the text memo)


def _entry_bytes(key: _Key, outcome: _Outcome) -> int:
    """An estimate of what one memoized decision keeps alive. What varies most is the article's
    tags (up to 50 of up to 100 characters); the other words of the key are few and short, and
    counted in `_ENTRY_BYTES`. Kept cheap: it runs on every miss."""
    tags = key[2]
    return (
        _ENTRY_BYTES
        + _STRING_BYTES * (len(tags) + len(key[8]))
        + sum(map(len, tags))
        + _MATCH_BYTES * (len(outcome[2]) + len(outcome[3]))
    )


class Engine:
    """Decides from one ruleset. Build once per ruleset; `decide` is a pure function.

    The index: rules by (publisher, country or subdivision), and by (publisher, unknown
    location / anonymized / language signal), each list indexed again by one article condition
    (see `_Bucket`), so a decision meets about the rules that apply, whatever the rule count.

    Decisions are memoized, bounded by an estimate of their bytes (least recently used go first; see
    `service.memo`), by everything they depend on: the article's publisher, section, tags, language
    and type, the reader's country, subdivision, anonymizer flag and languages, and the window of
    the instant between two consecutive `from`/`until` instants of the ruleset (no rule starts or
    ends inside a window, so the same rules are in effect all through it). The memoized function is
    given only that key, so it cannot depend on anything else. Below it, the notices of a set of
    matches with their texts chosen are memoized by (matches, reader languages, article language),
    up to `text_memo_size` (their keys are bounded: rule ids of the ruleset, at most 10 languages).
    `memo_bytes=0` turns both off (unless `text_memo_size` is given).
    """

    def __init__(
        self, ruleset: Ruleset, *, memo_bytes: int = DEFAULT_MEMO_BYTES, text_memo_size: int | None = None
    ) -> None:
        self.ruleset = ruleset
        self.hash = ruleset.hash
        by_code: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
        by_reason: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
        for rule in ruleset.rules.values():
            self._index(CompiledRule.of(rule), by_code, by_reason)
        self._by_code = {key: _Bucket(entries) for key, entries in by_code.items()}
        self._by_reason = {key: _Bucket(entries) for key, entries in by_reason.items()}
        self._signals = any(reason.startswith("language:") for _, reason in by_reason)
        instants = {p for r in ruleset.rules.values() for p in (r.effective.start, r.effective.until)}
        self._bounds = sorted(i for i in instants if i is not None)
        # At the first instant of each window: the same rules are in effect all through it.
        self._window_starts = [_EARLIEST, *self._bounds]
        self._outcome: Callable[[_Key], _Outcome] = self._evaluate
        self._memo: ByteBoundedMemo[_Key, _Outcome] | None = None
        rules = ruleset.rules
        self._notice_of = {rule_id: rule.notice for rule_id, rule in rules.items()}
        self._effects_of = {rule_id: tuple(sorted(set(rule.effects))) for rule_id, rule in rules.items()}
        self._rank = {notice_id: notice.rank for notice_id, notice in ruleset.notices.items()}
        self._render: Callable[[tuple[str, ...], tuple[str, ...], str | None], _Rendered] = self._rendered
        if memo_bytes > 0:
            self._outcome = self._memo = ByteBoundedMemo(self._evaluate, memo_bytes, _entry_bytes)
        text_memo_size = DEFAULT_TEXT_MEMO_SIZE if text_memo_size is None and memo_bytes else text_memo_size
        self._shown: Callable[[str, tuple[str, ...], tuple[str, ...]], ShownNotice] = self._shown_notice
        if text_memo_size:
            self._render = lru_cache(maxsize=text_memo_size)(self._rendered)
            self._shown = lru_cache(maxsize=text_memo_size)(self._shown_notice)

    def _index(
        self,
        compiled: CompiledRule,
        by_code: dict[tuple[str, str], list[_Entry]],
        by_reason: dict[tuple[str, str], list[_Entry]],
    ) -> None:
        rule = compiled.rule
        for publisher in rule.article.publisher or (ANY,):
            for region_id in rule.reader.regions:
                area = self.ruleset.areas[region_id]
                for country, excluded in area.countries.items():
                    match = Match(rule.id, "region", region_id, country)
                    by_code[publisher, country].append(_Entry(compiled, match, excluded))
                for subdivision in area.subdivisions:
                    match = Match(rule.id, "region", region_id, subdivision)
                    by_code[publisher, subdivision].append(_Entry(compiled, match))
            if rule.reader.unknown_location == "show":
                by_reason[publisher, "unknown_location"].append(
                    _Entry(compiled, Match(rule.id, "unknown_location"))
                )
                for region_id in rule.reader.regions:
                    for country in sorted(self.ruleset.areas[region_id].partly()):
                        match = Match(rule.id, POSSIBLY, region_id, country)
                        by_reason[publisher, f"{POSSIBLY}:{country}"].append(_Entry(compiled, match))
            if rule.reader.anonymized == "show":
                by_reason[publisher, "anonymized"].append(_Entry(compiled, Match(rule.id, "anonymized")))
            for tag in rule.reader.languages:
                by_reason[publisher, f"language:{tag}"].append(
                    _Entry(compiled, Match(rule.id, "language", code=tag))
                )

    def window(self, at: datetime) -> int:
        """The effective-period window of `at`: how many `from`/`until` instants are <= at."""
        return bisect_right(self._bounds, at)

    def decide(self, article: Article, reader: Reader, at: datetime) -> Decision:
        """The notices and effects for this article and reader at instant `at` (UTC)."""
        location = reader.location
        notices, effects, matches, superseded = self._outcome(
            (
                article.publisher,
                article.section,
                article.tags,
                article.language,
                article.type,
                location.country,
                location.subdivision,
                location.anonymized,
                reader.languages,
                bisect_right(self._bounds, at),
            )
        )
        return Decision(self.hash, at, location, reader.languages, notices, effects, matches, superseded)

    def memo_info(self) -> dict[str, dict[str, int | None]]:
        """Hits, misses and sizes of the memos (none when they are off)."""
        info: dict[str, dict[str, int | None]] = {}
        if self._memo is not None:
            info["decisions"] = self._memo.info()
        stats = getattr(self._render, "cache_info", None)
        if stats is not None:
            info["texts"] = stats()._asdict()
        return info

    def _evaluate(self, key: _Key) -> _Outcome:
        """The outcome for `key`, computed from the key alone."""
        publisher, section, tags, language, type_, country, subdivision, anonymized, langs, window = key
        request: _Request = (section, tags, language, type_, self._window_starts[window])
        found: dict[str, Match] = {}
        by_code, by_reason = self._by_code, self._by_reason
        for p in (publisher, ANY):  # the order of reasons: see `_candidates`
            if subdivision is not None and (bucket := by_code.get((p, subdivision))) is not None:
                bucket.add_fitting(found, request)
            if country is not None and (bucket := by_code.get((p, country))) is not None:
                bucket.add_fitting(found, request, subdivision)
            if not by_reason:
                continue
            if country is None and subdivision is None:
                if (bucket := by_reason.get((p, "unknown_location"))) is not None:
                    bucket.add_fitting(found, request)
            elif subdivision is None and (bucket := by_reason.get((p, f"{POSSIBLY}:{country}"))) is not None:
                bucket.add_fitting(found, request)
            if anonymized and (bucket := by_reason.get((p, "anonymized"))) is not None:
                bucket.add_fitting(found, request)
            if self._signals:
                for reason in _signal_keys(langs):
                    if (bucket := by_reason.get((p, reason))) is not None:
                        bucket.add_fitting(found, request)
        if not found:
            return _NOTHING
        ids = tuple(sorted(found))
        notices, effects, superseded = self._render(ids, langs, language)
        return notices, effects, tuple(found[r] for r in ids), superseded

    def _rendered(
        self, rule_ids: tuple[str, ...], preferred: tuple[str, ...], article_language: str | None
    ) -> _Rendered:
        """Notices with their texts chosen, effects and superseded notices of matched rules."""
        tags = _text_languages(preferred, article_language)
        if len(rule_ids) == 1:  # the common case: one notice, nothing to order or supersede
            rule_id = rule_ids[0]
            return (self._shown(self._notice_of[rule_id], rule_ids, tags),), self._effects_of[rule_id], ()
        shown, superseded = self._notices(rule_ids)
        effects = self._effects_of
        return (
            tuple(self._shown(n.id, ids, tags) for n, ids in shown),
            # Effects of every matched rule apply, also those whose notice was superseded:
            # a replaced text does not make sharing any safer.
            tuple(sorted({e for r in rule_ids for e in effects[r]})),
            superseded,
        )

    def _candidates(self, article: Article, reader: Reader) -> Iterator[tuple[CompiledRule, Match]]:
        """Rules that could match this reader, by index, in the order their reasons rank: for the
        article's publisher, then for any publisher, by subdivision, by country (unless the
        subdivision is excluded there), unknown location, anonymized, then the reader's
        languages with their fallbacks. Article conditions and periods are checked after."""
        location = reader.location
        for p in (article.publisher, ANY):
            for code in (location.subdivision, location.country):
                if code is None or (bucket := self._by_code.get((p, code))) is None:
                    continue
                for entry in bucket.entries:
                    if code == location.country and location.subdivision in entry.excluded:
                        continue
                    yield entry.rule, entry.match
            reasons = ["unknown_location"] if not location.known else []
            reasons += [f"{POSSIBLY}:{location.country}"] if location.partial else []
            reasons += ["anonymized"] if location.anonymized else []
            reasons += [f"language:{t}" for tag in reader.languages for t in languages.fallbacks(tag)]
            for reason in reasons:
                if (bucket := self._by_reason.get((p, reason))) is not None:
                    for entry in bucket.entries:
                        yield entry.rule, entry.match

    def _notices(
        self, rule_ids: tuple[str, ...]
    ) -> tuple[list[tuple[Notice, tuple[str, ...]]], tuple[Superseded, ...]]:
        """Notices to show in display order with their rules, and those superseded."""
        by_notice: dict[str, list[str]] = {}
        for rule_id in rule_ids:
            by_notice.setdefault(self._notice_of[rule_id], []).append(rule_id)
        notices = [self.ruleset.notices[n] for n in sorted(by_notice, key=self._rank.__getitem__)]
        superseded_by = {old: n.id for n in reversed(notices) for old in n.supersedes if old in by_notice}
        shown = [(n, tuple(by_notice[n.id])) for n in notices if n.id not in superseded_by]
        superseded = tuple(
            Superseded(n.id, superseded_by[n.id], tuple(by_notice[n.id]))
            for n in notices
            if n.id in superseded_by
        )
        return shown, superseded

    def _shown_notice(self, notice_id: str, rules: tuple[str, ...], tags: tuple[str, ...]) -> ShownNotice:
        """The notice in the first of `tags` it has a text for, else in its default language."""
        return _shown(self.ruleset.notices[notice_id], rules, tags)


def _shown(notice: Notice, rules: tuple[str, ...], tags: tuple[str, ...]) -> ShownNotice:
    texts = notice.texts
    language = next((t for t in tags if t in texts), notice.default_language)
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
