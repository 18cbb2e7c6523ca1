"""Notices prepared once per ruleset for showing: rank, what they supersede, texts by language."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import attrgetter

from service import languages
from service.decision import ShownNotice, Superseded
from service.model import Notice

MAX_REMEMBERED = 8
"""Shown forms kept per notice, by language and rules: most notices are shown in one or two
languages, each given by one rule at a time. Past that, a shown form is built from its prepared
fields (a fraction of a microsecond) rather than kept: 10,000 rules' notices stay a few MB."""


MAX_ORDERS = 1024
"""Orders of languages remembered per set of texts (a reader's Accept-Language makes one)."""


class _Chooser:
    """The text language of every notice with the same set of texts, by the order asked in."""

    __slots__ = ("available", "default", "chosen")

    def __init__(self, available: frozenset[str], default: str) -> None:
        self.available, self.default = available, default
        self.chosen: dict[tuple[str, ...], str] = {}  # up to MAX_ORDERS: readers choose the orders

    def __call__(self, order: tuple[str, ...]) -> str:
        language = self.chosen.get(order)
        if language is None:
            language = languages.choose(self.available, order, self.default)
            if len(self.chosen) < MAX_ORDERS:
                self.chosen[order] = language
        return language


class PreparedNotice:
    """A notice with what showing it needs worked out when the ruleset is compiled: its rank,
    what it supersedes, its fields in each language it has a text in, and how the language is
    chosen. A few shown forms are kept to be handed out again."""

    __slots__ = ("id", "rank", "supersedes", "_choose", "_fields", "_shown")

    def __init__(self, notice: Notice, choose: _Chooser) -> None:
        self.id = notice.id
        self.rank = notice.rank
        self.supersedes = notice.supersedes
        self._choose = choose
        self._fields = {
            language: (
                notice.id,
                notice.severity,
                notice.placement,
                language,
                text.title,
                text.body,
                text.link,
            )
            for language, text in notice.texts.items()
        }
        self._shown: dict[tuple[str, tuple[str, ...]], ShownNotice] = {}

    def show(self, rules: tuple[str, ...], order: tuple[str, ...]) -> ShownNotice:
        """The notice in the first language of `order` it has a text in (see
        `languages.text_order`), else in its default language, given by `rules`."""
        language = self._choose(order)
        key = (language, rules)
        shown = self._shown.get(key)
        if shown is None:
            shown = ShownNotice(*self._fields[language], rules)
            if len(self._shown) < MAX_REMEMBERED:
                self._shown[key] = shown
        return shown


def prepare(notices: Mapping[str, Notice]) -> dict[str, PreparedNotice]:
    """Every notice prepared; notices with the same texts' languages share a chooser."""
    choosers: dict[tuple[frozenset[str], str], _Chooser] = {}
    prepared = {}
    for notice_id, notice in notices.items():
        key = (frozenset(notice.texts), notice.default_language)
        choose = choosers.get(key) or choosers.setdefault(key, _Chooser(*key))
        prepared[notice_id] = PreparedNotice(notice, choose)
    return prepared


def in_display_order(
    by_notice: dict[PreparedNotice, tuple[str, ...]], order: tuple[str, ...]
) -> tuple[tuple[ShownNotice, ...], tuple[Superseded, ...]]:
    """Notices to show, in display order (see `Notice.rank`), each with the rules that gave it,
    and those superseded by a notice that is shown."""
    ranked = sorted(by_notice, key=_rank)
    superseding = [n for n in ranked if n.supersedes]
    if not superseding:
        return tuple([n.show(by_notice[n], order) for n in ranked]), ()
    present = {n.id for n in ranked}
    superseded_by = {old: n.id for n in reversed(superseding) for old in n.supersedes if old in present}
    shown = tuple([n.show(by_notice[n], order) for n in ranked if n.id not in superseded_by])
    superseded = tuple(
        Superseded(n.id, superseded_by[n.id], by_notice[n]) for n in ranked if n.id in superseded_by
    )
    return shown, superseded


_rank = attrgetter("rank")


def sorted_effects(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(sorted({effect for group in groups for effect in group}))
