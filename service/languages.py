"""Language negotiation: Accept-Language parsing and choosing a notice's text language."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

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


def fallbacks(tag: str) -> Iterable[str]:
    """`ru-ru` then `ru`; `zh-hant-tw` then `zh-hant` then `zh`."""
    parts = tag.split("-")
    for end in range(len(parts), 0, -1):
        yield "-".join(parts[:end])


def primary(tag: str) -> str:
    return tag.split("-", 1)[0]


def choose(
    available: Collection[str],
    preferred: Iterable[str],
    article_language: str | None,
    default: str,
) -> str:
    """The reader's languages first (each with its fallbacks), then the article's, then the default."""
    wanted = [*preferred, article_language] if article_language else list(preferred)
    for tag in wanted:
        for candidate in fallbacks(tag):
            if candidate in available:
                return candidate
    return default
