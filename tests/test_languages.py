"""Accept-Language parsing and the choice of a notice's text language."""

from __future__ import annotations

import pytest

from service.languages import MAX_LANGUAGES, choose, covered, fallbacks, parse_accept_language, text_order


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ()),
        ("", ()),
        ("ru", ("ru",)),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", ("ru-ru", "ru", "en-us", "en")),
        ("en;q=0.5, de", ("de", "en")),
        ("fr, de, it", ("fr", "de", "it")),  # ties keep the header's order
        ("en;q=0.8, fr;q=0.8, de;q=0.9", ("de", "en", "fr")),
        ("de;level=1;q=0.5, fr", ("fr", "de")),  # other parameters are ignored
        (" , ,ru ; q = 0.5 ,, ", ("ru",)),  # spaces and empty parts
        ("*", ()),
        ("ru, *;q=0.5", ("ru",)),
        ("en;q=0, ru", ("ru",)),  # q=0 means "not acceptable"
        ("en;q=0.000", ()),
        ("en;q=0.001", ("en",)),
        ("en;q=abc, ru", ("ru",)),  # a malformed weight drops the tag
        ("en;q=1.5, ru", ("ru",)),
        ("en;q=-1, ru", ("ru",)),
        ("en;q=nan, en-gb;q=inf, ru", ("ru",)),
        ("en_US, 123, ru-, -ru, ru", ("ru",)),  # malformed tags are skipped
        ("ru;q=0.5, ru", ("ru",)),  # a duplicate keeps its best place
        ("en, en;q=0.5, EN-gb", ("en", "en-gb")),
        ("zh-Hant-TW;q=0.9, zh", ("zh", "zh-hant-tw")),
    ],
)
def test_parse_accept_language(header: str | None, expected: tuple[str, ...]) -> None:
    assert parse_accept_language(header) == expected


def test_parse_accept_language_keeps_the_best_few() -> None:
    tags = [f"l{chr(ord('a') + i)}" for i in range(MAX_LANGUAGES + 5)]
    header = ", ".join(f"{tag};q=0.{9 - i // 3}" for i, tag in enumerate(tags))
    assert parse_accept_language(header) == tuple(tags[:MAX_LANGUAGES])


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("ru", ["ru"]), ("ru-ru", ["ru-ru", "ru"]), ("zh-hant-tw", ["zh-hant-tw", "zh-hant", "zh"])],
)
def test_fallbacks(tag: str, expected: list[str]) -> None:
    assert list(fallbacks(tag)) == expected
    assert covered(tag, {expected[-1]}) and not covered(tag, {"xx"}) and not covered(None, {"xx"})


TEXTS = {"en", "ru", "uk"}


@pytest.mark.parametrize(
    ("available", "preferred", "article_language", "expected"),
    [
        (TEXTS, ["ru"], None, "ru"),
        (TEXTS, ["ru-ru"], None, "ru"),  # fallback from a regional tag
        (TEXTS, ["de", "uk-ua", "ru"], None, "uk"),  # the reader's order, skipping what is missing
        (TEXTS, ["en"], "ru", "en"),  # the reader before the article
        (TEXTS, [], "ru", "ru"),  # then the article's language
        (TEXTS, ["de"], "uk-ua", "uk"),  # with fallback
        (TEXTS, ["de"], "fr", "en"),  # then the default
        (TEXTS, [], None, "en"),
        ({"en", "ru", "ru-ua"}, ["ru-ua"], None, "ru-ua"),  # the exact tag first
        ({"en", "ru", "ru-ua"}, ["ru-ru"], None, "ru"),
        ({"en", "pt"}, ["pt-br"], None, "pt"),
        ({"en", "pt-br"}, ["pt"], None, "en"),  # no fallback from general to regional
        ({"en", "zh-hant"}, ["zh-hant-tw"], None, "zh-hant"),
        ({"uk"}, ["de"], None, "en"),  # the default is returned as given
    ],
)
def test_choose(
    available: set[str], preferred: list[str], article_language: str | None, expected: str
) -> None:
    assert choose(available, text_order(tuple(preferred), article_language), "en") == expected
