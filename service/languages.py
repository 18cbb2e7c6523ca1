"""Language negotiation: Accept-Language parsing and choosing a notice's text language."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from functools import lru_cache

MAX_LANGUAGES = 10
_TAG = re.compile(r"^[a-z]{1,8}(-[a-z0-9]{1,8})*$")


def parse_accept_language(header: str | None) -> tuple[str, ...]:
    """Tags from an Accept-Language header, best first; malformed parts and `*` are skipped."""
    if not header:
        return ()
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:50]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if _TAG.match(tag) and 0 < quality <= 1:
            weighted.append((-quality, index, tag))
    return tuple(dict.fromkeys(tag for _, _, tag in sorted(weighted)))[:MAX_LANGUAGES]


@lru_cache(maxsize=4096)
def fallbacks(tag: str) -> tuple[str, ...]:
    """`ru-ru` then `ru`; `zh-hant-tw` then `zh-hant` then `zh`. Remembered: the same few tags
    come with every request."""
    parts = tag.split("-")
    return tuple("-".join(parts[:end]) for end in range(len(parts), 0, -1))


def covered(tag: str | None, wanted: Collection[str]) -> bool:
    """`tag`, or one of its fallbacks, is one of `wanted` (a rule's `language` or `languages`)."""
    return tag is not None and any(t in wanted for t in fallbacks(tag))


@lru_cache(maxsize=4096)
def text_order(preferred: tuple[str, ...], article_language: str | None) -> tuple[str, ...]:
    """Tags to choose a notice's text by, best first: the reader's languages, then the article's,
    each with its fallbacks. Remembered: one per reader and article language."""
    wanted = (*preferred, article_language) if article_language else preferred
    return tuple(dict.fromkeys(t for tag in wanted for t in fallbacks(tag)))


def choose(available: Collection[str], order: Iterable[str], default: str) -> str:
    """The first of `order` (see `text_order`) that has a text, else the default."""
    return next((tag for tag in order if tag in available), default)
