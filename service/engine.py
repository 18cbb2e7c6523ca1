"""The decision engine: compiles a ruleset into an index once, then decides per request, purely."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

from service import gcpause, languages
from service.decision import Decision, Match, ShownNotice, Superseded
from service.index import Index, Query
from service.inputs import Article, Reader
from service.memo import ByteBoundedMemo
from service.notices import PreparedNotice, in_display_order, prepare, sorted_effects
from service.ruleset import Ruleset

DEFAULT_MEMO_BYTES = 16 * 1024 * 1024
"""Estimated bytes of decision outcomes remembered per engine (least recently used go first); 0: none."""
DEFAULT_TEXT_MEMO_SIZE = 4_096
"""Shown notice lists remembered per engine, by matched rules and languages."""

_EARLIEST = datetime.min.replace(tzinfo=UTC)


class Shown(NamedTuple):
    """The notices shown for a set of matched rules, with their effects and superseded notices."""

    notices: tuple[ShownNotice, ...]
    effects: tuple[str, ...]
    superseded: tuple[Superseded, ...]


class Outcome(NamedTuple):
    """A decision without its instant and reader."""

    notices: tuple[ShownNotice, ...]
    effects: tuple[str, ...]
    matches: tuple[Match, ...]
    superseded: tuple[Superseded, ...]


_NOTHING = Outcome((), (), (), ())

# Rough CPython sizes, for the memo's estimate: what an entry holds besides the text of its tags.
_ENTRY_BYTES = 1200  # the key and value tuples, the memo's node, the outcome's tuples, the words
_STRING_BYTES = 90  # a str object and its slot in a frozenset or tuple
_MATCH_BYTES = 200  # a Match made for this outcome (notices are shared with the text memo)


def _entry_bytes(key: Query, outcome: Outcome) -> int:
    """An estimate of what one memoized decision keeps alive. What varies most is the article's
    tags (up to 50 of up to 100 characters); the other words of the key are few and short, and
    counted in `_ENTRY_BYTES`. Kept cheap: it runs on every miss."""
    return (
        _ENTRY_BYTES
        + _STRING_BYTES * (len(key.tags) + len(key.languages))
        + sum(map(len, key.tags))
        + _MATCH_BYTES * (len(outcome.matches) + len(outcome.superseded))
    )


class Engine:
    """Decides from one ruleset. Build once per ruleset; `decide` is a pure function.

    The index (`service.index`): rules by (publisher, country or subdivision), and by (publisher,
    unknown location / possibly in a region / anonymized / language signal), each list indexed
    again by one article condition, so a decision meets about the rules that apply, whatever the
    rule count. Notices are prepared once (`service.notices`): a matched notice costs its text
    choice, not its building.

    Decisions are memoized, bounded by an estimate of their bytes (least recently used go first; see
    `service.memo`), by everything they depend on (`Query`): the article's publisher, section, tags,
    language and type, the reader's country, subdivision, anonymizer flag and languages, and the
    window of the instant between two consecutive `from`/`until` instants of the ruleset (no rule
    starts or ends inside a window, so the same rules are in effect all through it). The memoized
    function is given only that key, so it cannot depend on anything else. Below it, the notices
    shown for a set of matches are memoized by (matches, reader languages, article language), up to
    `text_memo_size` (their keys are bounded: rule ids of the ruleset, at most 10 languages).
    `memo_bytes=0` turns both off (unless `text_memo_size` is given).
    """

    def __init__(
        self, ruleset: Ruleset, *, memo_bytes: int = DEFAULT_MEMO_BYTES, text_memo_size: int | None = None
    ) -> None:
        with gcpause.paused():
            self._compile(ruleset, memo_bytes, text_memo_size)

    def _compile(self, ruleset: Ruleset, memo_bytes: int, text_memo_size: int | None) -> None:
        self.ruleset = ruleset
        self.hash = ruleset.hash
        instants = {p for r in ruleset.rules.values() for p in (r.effective.start, r.effective.until)}
        self._bounds = sorted(i for i in instants if i is not None)
        # The first instant of each window: the same rules are in effect all through it.
        self.index = Index(ruleset, [_EARLIEST, *self._bounds])
        prepared = prepare(ruleset.notices)
        self._notice_of = {rule_id: prepared[rule.notice] for rule_id, rule in ruleset.rules.items()}
        self._alone = {rule_id: (rule_id,) for rule_id in ruleset.rules}  # rules of a notice given by one
        self._effects_of = {
            rule_id: tuple(sorted(set(rule.effects))) for rule_id, rule in ruleset.rules.items()
        }
        self._outcome: Callable[[Query], Outcome] = self._evaluate
        self._memo: ByteBoundedMemo[Query, Outcome] | None = None
        if memo_bytes > 0:
            self._outcome = self._memo = ByteBoundedMemo(self._evaluate, memo_bytes, _entry_bytes)
        text_memo_size = DEFAULT_TEXT_MEMO_SIZE if text_memo_size is None and memo_bytes else text_memo_size
        self._shown_for: Callable[[tuple[str, ...], tuple[str, ...], str | None], Shown] = self._show
        if text_memo_size:
            self._shown_for = lru_cache(maxsize=text_memo_size)(self._show)

    def decide(self, article: Article, reader: Reader, at: datetime) -> Decision:
        """The notices and effects for this article and reader at instant `at` (UTC)."""
        outcome = self._outcome(self.query(article, reader, at))
        return Decision(self.hash, at, reader.location, reader.languages, *outcome)

    def query(self, article: Article, reader: Reader, at: datetime) -> Query:
        """What the decision depends on; the window of `at` is how many `from`/`until` instants
        of the ruleset are <= at."""
        location = reader.location
        return Query(
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

    def memo_info(self) -> dict[str, dict[str, int | None]]:
        """Hits, misses and sizes of the memos (none when they are off)."""
        info: dict[str, dict[str, int | None]] = {}
        if self._memo is not None:
            info["decisions"] = self._memo.info()
        stats = getattr(self._shown_for, "cache_info", None)
        if stats is not None:
            info["texts"] = stats()._asdict()
        return info

    def _evaluate(self, key: Query) -> Outcome:
        """The outcome for `key`, computed from the key alone."""
        found: dict[str, Match] = {}
        for bucket, by_country in self.index.buckets(key):
            bucket.add_fitting(found, key, by_country)
        if not found:
            return _NOTHING
        ids = tuple(sorted(found))
        shown = self._shown_for(ids, key.languages, key.language)
        return Outcome(shown.notices, shown.effects, tuple(map(found.__getitem__, ids)), shown.superseded)

    def _show(
        self, rule_ids: tuple[str, ...], preferred: tuple[str, ...], article_language: str | None
    ) -> Shown:
        """The notices of matched rules with their texts chosen, their effects, and superseded notices."""
        order = languages.text_order(preferred, article_language)
        notice_of, effects_of, alone = self._notice_of, self._effects_of, self._alone
        if len(rule_ids) == 1:  # the common case: one notice, nothing to order or supersede
            rule_id = rule_ids[0]
            return Shown((notice_of[rule_id].show(alone[rule_id], order),), effects_of[rule_id], ())
        by_notice: dict[PreparedNotice, tuple[str, ...]] = {}
        for rule_id in rule_ids:
            notice = notice_of[rule_id]
            given = by_notice.get(notice)
            by_notice[notice] = alone[rule_id] if given is None else (*given, rule_id)
        notices, superseded = in_display_order(by_notice, order)
        # Effects of every matched rule apply, also those whose notice was superseded:
        # a replaced text does not make sharing any safer.
        return Shown(notices, sorted_effects(effects_of[r] for r in rule_ids), superseded)
