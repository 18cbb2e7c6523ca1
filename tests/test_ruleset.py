"""Regions expanded to areas, and the ruleset's content hash: stable under layout, changed by content."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.loader import load_ruleset
from service.model import Region, Rule
from service.ruleset import Area, Ruleset, union

# ---- areas ---------------------------------------------------------------------------------

AREA = Area({"RU": frozenset(), "UA": frozenset({"UA-43", "UA-40"})}, frozenset({"UA-43", "MD-SN"}))


@pytest.mark.parametrize(
    ("country", "subdivision", "code"),
    [
        ("RU", None, "RU"),
        ("RU", "RU-MOW", "RU"),
        ("RU", "UA-43", "UA-43"),  # the subdivision is listed: it wins whatever the country
        ("UA", "UA-43", "UA-43"),
        ("UA", "UA-30", "UA"),
        ("UA", None, "UA"),
        ("UA", "UA-40", None),  # excluded from the country, and not listed
        (None, "MD-SN", "MD-SN"),
        ("MD", "MD-SN", "MD-SN"),
        ("MD", "MD-CU", None),
        ("US", None, None),
        (None, None, None),
    ],
)
def test_area_match(country: str | None, subdivision: str | None, code: str | None) -> None:
    assert AREA.match(country, subdivision) == code


def test_union_excludes_only_what_every_part_excludes() -> None:
    merged = union(
        [
            Area({"UA": frozenset({"UA-43", "UA-40"}), "RU": frozenset()}, frozenset({"MD-SN"})),
            Area({"UA": frozenset({"UA-40", "UA-14"})}, frozenset({"UA-43"})),
        ]
    )
    assert merged == Area({"UA": frozenset({"UA-40"}), "RU": frozenset()}, frozenset({"MD-SN", "UA-43"}))
    assert union([]) == Area({}, frozenset())
    assert union([]).empty and not merged.empty


def region(**fields: object) -> Region:
    return Region.model_validate(fields)


def areas(*regions: Region) -> dict[str, Area]:
    return dict(Ruleset.build(list(regions), [], []).areas)


def test_regions_expand_with_include_and_exclude() -> None:
    expanded = areas(
        region(id="russia", countries=["RU"]),
        region(id="occupied", subdivisions=["UA-43", "UA-40"]),
        region(id="both", include=["russia", "occupied"]),
        region(id="free-ukraine", countries=["UA"], exclude={"subdivisions": ["UA-43", "UA-40"]}),
        region(id="all-ukraine", include=["free-ukraine", "occupied"]),
        region(id="russia-proper", countries=["RU"], exclude={"subdivisions": ["UA-43"]}),
        region(id="no-russia", include=["both"], exclude={"countries": ["RU"]}),
        region(id="no-crimea", include=["both"], exclude={"subdivisions": ["UA-43"]}),
        region(id="no-ukraine", include=["both"], exclude={"countries": ["UA"]}),
    )
    none: frozenset[str] = frozenset()
    assert expanded == {
        "russia": Area({"RU": none}, none),
        "occupied": Area({}, frozenset({"UA-43", "UA-40"})),
        "both": Area({"RU": none}, frozenset({"UA-43", "UA-40"})),
        "free-ukraine": Area({"UA": frozenset({"UA-43", "UA-40"})}, none),
        "all-ukraine": Area({"UA": frozenset({"UA-43", "UA-40"})}, frozenset({"UA-43", "UA-40"})),
        # an excluded subdivision is excluded whatever the reader's country code says
        "russia-proper": Area({"RU": frozenset({"UA-43"})}, none),
        "no-russia": Area({}, frozenset({"UA-43", "UA-40"})),
        "no-crimea": Area({"RU": frozenset({"UA-43"})}, frozenset({"UA-40"})),
        # excluding a country excludes its subdivisions too
        "no-ukraine": Area({"RU": none}, none),
    }
    assert expanded["all-ukraine"].match("UA", "UA-43") == "UA-43"
    assert expanded["russia-proper"].match("RU", "UA-43") is None
    assert expanded["no-crimea"].match("RU", "UA-43") is None
    assert expanded["no-crimea"].match("UA", "UA-40") == "UA-40"


# ---- the content hash ----------------------------------------------------------------------

ONE_FILE = {
    "all.yaml": """
        regions:
          - id: russia
            countries: [RU]
          - id: occupied
            name: Occupied
            subdivisions: [UA-43, UA-40]
        notices:
          - id: undesirable
            severity: legal
            priority: 100
            default_language: en
            texts:
              en: {title: Title, body: Body, link: "https://example.org/"}
              ru: {title: Заголовок, body: Текст}
        rules:
          - id: to-russia
            notice: undesirable
            article:
              publisher: [rferl, currenttime]
              tags: {any: [war, protest]}
            reader:
              regions: [russia, occupied]
              unknown_location: show
            effective:
              from: 2024-02-20
            effects: [discourage_sharing, hide_comments]
          - id: to-ru-speakers
            notice: undesirable
            reader: {languages: [ru]}
    """
}

# The same rules, split, reordered, reformatted, commented, with equivalent spellings.
SPLIT = {
    "policies/rules.yaml": """
        # rules first, in the other order, keys shuffled
        rules:
          - reader: {languages: ru}
            notice: undesirable
            id: to-ru-speakers
          - effects: [hide_comments, discourage_sharing]
            effective: {from: "2024-02-20T00:00:00Z"}
            reader:
              unknown_location: show
              regions: [occupied, russia]
            article:
              tags:
                any: [Protest, war]
              publisher: [CurrentTime, rferl]
            notice: undesirable
            id: to-russia
    """,
    "regions.yml": """
        regions:
          - {id: occupied, subdivisions: [ua-40, ua-43], name: Occupied}
          - {id: russia, countries: ru}
    """,
    "notices/undesirable.yaml": """
        notices:
          - texts:
              ru:
                body: Текст
                title: Заголовок
              en:
                link: https://example.org/
                body: Body
                title: Title
            default_language: en
            priority: 100
            severity: legal
            id: undesirable
    """,
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def ruleset_of(root: Path, files: dict[str, str]) -> Ruleset:
    return load_ruleset(write(root, files))


def test_hash_form(tmp_path: Path) -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", ruleset_of(tmp_path, ONE_FILE).hash)


def test_hash_ignores_layout_order_and_formatting(tmp_path: Path) -> None:
    one = ruleset_of(tmp_path / "one", ONE_FILE)
    split = ruleset_of(tmp_path / "split", SPLIT)
    assert [f.path for f in one.files] != [f.path for f in split.files]
    assert split.canonical() == one.canonical()
    assert split.hash == one.hash


def test_hash_ignores_editor_cases(tmp_path: Path) -> None:
    cases = "cases:\n  - {name: c, article: {publisher: rferl}, expect: {notices: []}}\n"
    with_cases = ruleset_of(tmp_path / "cases", {**ONE_FILE, "tests/c.yaml": cases})
    assert with_cases.cases
    assert with_cases.hash == ruleset_of(tmp_path / "one", ONE_FILE).hash


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("from: 2024-02-20", "from: 2024-02-21"),
        ("from: 2024-02-20", "from: 2024-02-20T00:00:01Z"),
        ("body: Body", "body: Another body"),
        ("priority: 100", "priority: 99"),
        ("[RU]", "[RU, BY]"),
        ("unknown_location: show", "unknown_location: skip"),
        ("effects: [discourage_sharing, hide_comments]", "effects: [discourage_sharing]"),
        ("reader: {languages: [ru]}", "reader: {languages: [ru, be]}"),
        ("name: Occupied", "name: Occupied territories"),
    ],
)
def test_hash_changes_with_content(tmp_path: Path, old: str, new: str) -> None:
    text = ONE_FILE["all.yaml"]
    assert old in text
    before = ruleset_of(tmp_path / "before", ONE_FILE)
    after = ruleset_of(tmp_path / "after", {"all.yaml": text.replace(old, new, 1)})
    assert after.hash != before.hash


def test_from_canonical_round_trip(tmp_path: Path) -> None:
    ruleset = ruleset_of(tmp_path, ONE_FILE)
    again = Ruleset.from_canonical(json.loads(ruleset.canonical_bytes()))
    assert again.hash == ruleset.hash
    assert again.canonical() == ruleset.canonical()
    assert again.areas == ruleset.areas


def test_ruleset_is_immutable(tmp_path: Path) -> None:
    ruleset = ruleset_of(tmp_path, ONE_FILE)
    with pytest.raises(TypeError):
        ruleset.rules["extra"] = ruleset.rules["to-russia"]  # type: ignore[index]
    with pytest.raises(ValidationError):
        ruleset.rules["to-russia"].notice = "other"  # type: ignore[misc]
    assert list(ruleset.rules) == sorted(ruleset.rules)


def test_an_archived_ruleset_from_before_until_after_from_was_an_error_still_reads(tmp_path: Path) -> None:
    """Rulesets archived when `until` at `from` was only a warning must still replay (#12)."""
    data = json.loads(ruleset_of(tmp_path, ONE_FILE).canonical_bytes())
    data["rules"][0]["effective"] = {"from": "2024-03-01T00:00:00Z", "until": "2024-03-01T00:00:00Z"}
    again = Ruleset.from_canonical(data)
    assert (
        again.rules[data["rules"][0]["id"]].effective.until
        == again.rules[data["rules"][0]["id"]].effective.start
    )
    with pytest.raises(ValidationError, match="is not after from"):
        Rule.model_validate(data["rules"][0])


@pytest.mark.parametrize(
    "body",
    [
        "Body",
        "Ünïcode ✓ 😀",
        'quotes \\" and \\\\ backslash',
        "tab\\tand\\u2028line sep",
        "ctl \\u0001\\u001f",
    ],
)
def test_canonical_bytes_are_what_json_writes(tmp_path: Path, body: str) -> None:
    """The hash is archived with every decision: its bytes must not change with the writer."""
    text = ONE_FILE["all.yaml"].replace("body: Body", f'body: "{body}"', 1)
    ruleset = ruleset_of(tmp_path, {"all.yaml": text})
    expected = json.dumps(ruleset.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert ruleset.canonical_bytes() == expected.encode()
