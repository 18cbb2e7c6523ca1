"""What the rules name, and warnings for an article that names what no rule does."""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass

from service.inputs import Article
from service.ruleset import Ruleset

# Suggestions are looked for among names of about the same length only: a caller sending unseen
# tags costs a bounded comparison each, however large the rule pack.
_LENGTH_SLACK = 3
_REMEMBERED = 4096  # (field, value) answers kept per ruleset; cleared when full


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The values rules condition on, per article field, for one ruleset."""

    publishers: frozenset[str]
    sections: frozenset[str]
    types: frozenset[str]
    tags: frozenset[str]

    @classmethod
    def of(cls, ruleset: Ruleset) -> Vocabulary:
        conditions = [rule.article for rule in ruleset.rules.values()]
        return cls(
            publishers=frozenset(p for c in conditions for p in c.publisher),
            sections=frozenset(s for c in conditions for s in c.section),
            types=frozenset(t for c in conditions for t in c.type),
            tags=frozenset(t for c in conditions for t in (*c.tags.any, *c.tags.all, *c.tags.none)),
        )


class Warnings:
    """Warnings for an article on one ruleset: computed once per (field, value), then remembered.

    *Choice:* a publisher that no rule names is always a warning (no notice can apply to it: a
    misconfigured site, or a typo). A section, type or tag that no rule names is warned about only
    when it is close to one that a rule does name (a likely typo): most of a site's sections and
    tags legitimately decide nothing, and a warning for each would bury the one that matters."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.vocabulary = Vocabulary.of(ruleset)
        self._known = {
            "publisher": self.vocabulary.publishers,
            "section": self.vocabulary.sections,
            "type": self.vocabulary.types,
            "tag": self.vocabulary.tags,
        }
        self._remembered: dict[tuple[str, str], str | None] = {}
        # Whole articles' answers too (a site's pages repeat their publisher, section and tags).
        self._articles: dict[tuple[str, str | None, str | None, frozenset[str]], tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def __call__(self, article: Article) -> list[str]:
        """The warnings for `article`, in field order (publisher, section, type, tags sorted)."""
        key = (article.publisher, article.section, article.type, article.tags)
        found = self._articles.get(key)
        if found is None:
            found = self._articles[key] = self._warnings(article)
            if len(self._articles) > _REMEMBERED:
                self._articles.clear()
        return list(found)

    def _warnings(self, article: Article) -> tuple[str, ...]:
        asked = [("publisher", article.publisher)]
        asked += [
            (field, value) for field, value in (("section", article.section), ("type", article.type)) if value
        ]
        asked += [("tag", tag) for tag in sorted(article.tags)]
        found = [self._warning(field, value) for field, value in asked]
        return tuple(w for w in found if w is not None)

    def _warning(self, field: str, value: str) -> str | None:
        key = (field, value)
        if key in self._remembered:
            return self._remembered[key]
        warning = self._compute(field, value)
        with self._lock:
            if len(self._remembered) >= _REMEMBERED:
                self._remembered.clear()
            self._remembered[key] = warning
        return warning

    def _compute(self, field: str, value: str) -> str | None:
        known = self._known[field]
        if value in known:
            return None
        near = [k for k in known if abs(len(k) - len(value)) <= _LENGTH_SLACK]
        close = difflib.get_close_matches(value, sorted(near), n=1, cutoff=0.7)
        if close:
            return f"{field} {value!r} appears in no rule; did you mean {close[0]!r}?"
        if field == "publisher":
            return f"{field} {value!r} appears in no rule"
        return None


_BY_RULESET: dict[str, Warnings] = {}
_BY_RULESET_LOCK = threading.Lock()


def warnings_for(ruleset: Ruleset) -> Warnings:
    """The warnings of `ruleset`, built once per ruleset (a worker serves a few in its life)."""
    found = _BY_RULESET.get(ruleset.hash)
    if found is None:
        with _BY_RULESET_LOCK:
            found = _BY_RULESET.get(ruleset.hash)
            if found is None:
                if len(_BY_RULESET) >= 8:
                    _BY_RULESET.clear()
                found = _BY_RULESET[ruleset.hash] = Warnings(ruleset)
    return found
