"""Bounded record fields: the caller's long texts cut, with a marker in the value and a count beside it.

A decision record keeps what the engine saw, so that it can be replayed. The engine never reads an
article's id or url, and reads only the tags that some rule names: those are kept whole, every other
long value is cut. So a request with a 2,000-character url and 100 tags of 200 characters writes a
record of about 2 KB, not 25 KB, and its replay still gives the same answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.ruleset import Ruleset

ID_MAX = 128  # characters of article.id kept (real ids are short: "33012345")
URL_MAX = 512  # characters of article.url kept (enough to tell pages apart; the rest is query noise)
TAG_MAX = 64  # characters kept of a tag no rule names
TAGS_MAX = 20  # tags kept that no rule names (in sorted order); tags some rule names are all kept
MARK = "…"  # ends a value that was cut

Cut = dict[str, dict[str, int]]  # "article.url" -> {"chars": n} or "article.tags" -> {"items", "chars"}


def clip(text: str | None, limit: int) -> tuple[str | None, int]:
    """`text` cut to `limit` characters and marked, and how many characters were cut."""
    if text is None or len(text) <= limit:
        return text, 0
    return text[:limit] + MARK, len(text) - limit


def bounded_tags(tags: Iterable[str], named: frozenset[str]) -> tuple[list[str], dict[str, int]]:
    """Tags as recorded: every tag in `named` whole, at most TAGS_MAX others, each cut to TAG_MAX;
    with the count of tags left out (`items`) and of characters cut (`chars`) when any were."""
    everything = sorted(tags)
    if len(everything) <= TAGS_MAX and max(map(len, everything), default=0) <= TAG_MAX:
        return everything, {}  # the common case, decided without looking at `named`
    others = [t for t in everything if t not in named]
    if len(others) <= TAGS_MAX and all(len(t) <= TAG_MAX for t in others):
        return everything, {}
    kept = [t for t in everything if t in named]
    chars = 0
    for tag in others[:TAGS_MAX]:
        text, removed = clip(tag, TAG_MAX)
        kept.append(str(text))
        chars += removed
    left_out = len(others) - min(len(others), TAGS_MAX)
    counts = {"items": left_out} if left_out else {}
    return sorted(kept), counts | ({"chars": chars} if chars else {})


_NAMED: dict[str, frozenset[str]] = {}


def named_tags(ruleset: Ruleset) -> frozenset[str]:
    """Every tag a rule of `ruleset` names (any, all or none of): the tags a decision can depend on."""
    found = _NAMED.get(ruleset.hash)
    if found is None:
        found = frozenset(
            tag
            for rule in ruleset.rules.values()
            for tag in (*rule.article.tags.any, *rule.article.tags.all, *rule.article.tags.none)
        )
        if len(_NAMED) >= 16:  # a worker serves a few rulesets in its life: keep it small anyway
            _NAMED.clear()
        _NAMED[ruleset.hash] = found
    return found


def bounded_article(
    fields: dict[str, Any], tags: Iterable[str], named: frozenset[str]
) -> tuple[dict[str, Any], Cut]:
    """The article's recorded fields with id, url and tags bounded, and what was cut from each."""
    article_id, url = fields.get("id"), fields.get("url")
    if (article_id is None or len(article_id) <= ID_MAX) and (url is None or len(url) <= URL_MAX):
        recorded, counts = bounded_tags(tags, named)
        if not counts:  # the common case: nothing to cut, nothing to count
            return {**fields, "tags": recorded}, {}
    cut: Cut = {}
    bounded = dict(fields)
    for name, limit in (("id", ID_MAX), ("url", URL_MAX)):
        bounded[name], removed = clip(fields.get(name), limit)
        if removed:
            cut[f"article.{name}"] = {"chars": removed}
    bounded["tags"], counts = bounded_tags(tags, named)
    if counts:
        cut["article.tags"] = counts
    return bounded, cut
