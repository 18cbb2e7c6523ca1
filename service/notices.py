"""Notices prepared once per ruleset for showing: rank, what they supersede, texts by language."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import attrgetter

from service import languages
from service.decision import ShownNotice, Superseded
from service.model import Notice

MAX_REMEMBERED = 64
"""Shown forms remembered per notice, by language and rules (most notices have one or two)."""


class PreparedNotice:
    """A notice with what showing it needs worked out when the ruleset is compiled, and its
    shown forms (one per language and set of rules) built once and then handed out again."""

    __slots__ = ("notice", "id", "rank", "supersedes", "_language", "_shown")

    def __init__(self, notice: Notice) -> None:
        self.notice = notice
        self.id = notice.id
        self.rank = notice.rank
        self.supersedes = notice.supersedes
        self._language: dict[tuple[str, ...], str] = {}  # by the order of languages asked
        self._shown: dict[tuple[str, tuple[str, ...]], ShownNotice] = {}

    def show(self, rules: tuple[str, ...], order: tuple[str, ...]) -> ShownNotice:
        """The notice in the first language of `order` it has a text in (see
        `languages.text_order`), else in its default language, given by `rules`."""
        notice = self.notice
        language = self._language.get(order)
        if language is None:
            language = languages.choose(notice.texts, order, notice.default_language)
            if len(self._language) < MAX_REMEMBERED:
                self._language[order] = language
        key = (language, rules)
        shown = self._shown.get(key)
        if shown is None:
            text = notice.texts[language]
            shown = ShownNotice(
                id=notice.id,
                severity=notice.severity,
                placement=notice.placement,
                language=language,
                title=text.title,
                body=text.body,
                link=text.link,
                rules=rules,
            )
            if len(self._shown) < MAX_REMEMBERED:
                self._shown[key] = shown
        return shown


def prepare(notices: Mapping[str, Notice]) -> dict[str, PreparedNotice]:
    return {notice_id: PreparedNotice(notice) for notice_id, notice in notices.items()}


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
