"""The loader on the bundled rules and on broken rule files: every error at its file:line:column."""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from service.loader import load_ruleset
from service.problems import Problem, RulesetInvalid

HERE = Path(__file__).parent
RULES = HERE.parent / "rules"

NOTICE = """\
notices:
  - id: undesirable
    severity: legal
    default_language: en
    texts:
      en: {title: T, body: B}
"""
REGION = """\
regions:
  - id: russia
    countries: [RU]
"""


def load_errors(root: Path, files: dict[str, str]) -> list[str]:
    """Write `files` under root/rules, load that directory and return the error lines."""
    for name, text in files.items():
        path = root / "rules" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(Path("rules"))
    return str(caught.value).splitlines()


def fits(pattern: str, line: str) -> bool:
    """`line` is `pattern`, where '…' stands for any text (suggestions that come from ISO data)."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("…")), line) is not None


def test_bundled_rules_load() -> None:
    ruleset = load_ruleset(RULES)
    assert set(ruleset.regions) == {"russia", "russia-controlled-ukraine"}
    assert set(ruleset.notices) == {"rferl-undesirable"}
    assert set(ruleset.rules) == {"rferl-undesirable-russia"}
    assert ruleset.cases
    assert [f.path for f in ruleset.files] == sorted(f.path for f in ruleset.files)
    assert all(len(f.sha256) == 64 for f in ruleset.files)


def test_yml_files_load_and_hidden_files_do_not(tmp_path: Path) -> None:
    (tmp_path / "regions.yml").write_text(REGION)
    (tmp_path / "notes.txt").write_text("not: [yaml")
    (tmp_path / ".draft.yaml").write_text("not: [yaml")
    ruleset = load_ruleset(tmp_path)
    assert list(ruleset.regions) == ["russia"]
    assert [Path(f.path).name for f in ruleset.files] == ["regions.yml"]


def test_codes_and_words_are_normalized(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "regions:\n  - {id: Russia, countries: [ru], subdivisions: [ua-43]}\n"
        + NOTICE.replace("id: undesirable", "id: Undesirable")
        + "rules:\n  - {id: r, notice: undesirable, article: {publisher: RFERL, tags: {any: War}},"
        " reader: {regions: [russia]}}\n"
    )
    ruleset = load_ruleset(tmp_path)
    assert ruleset.regions["russia"].countries == ("RU",)
    assert ruleset.regions["russia"].subdivisions == ("UA-43",)
    assert ruleset.rules["r"].article.publisher == ("rferl",)
    assert ruleset.rules["r"].article.tags.any == ("war",)


BROKEN: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "yaml syntax",
        {"r.yaml": "regions:\n  - id: ukraine\n    countries: [UA\n"},
        [
            "rules/r.yaml:4:1: error: while parsing a flow sequence expected ',' or ']', "
            "but got '<stream end>' [yaml]"
        ],
    ),
    (
        "tab indentation",
        {"r.yaml": "regions:\n\t- id: ukraine\n"},
        [
            "rules/r.yaml:2:1: error: while scanning for the next token found character '\\t' "
            "that cannot start any token [yaml]"
        ],
    ),
    (
        "duplicate key",
        {"r.yaml": "regions:\n  - id: a\n    countries: [RU]\n    countries: [UA]\n"},
        [
            'rules/r.yaml:4:5: error: while constructing a mapping found duplicate key "countries" '
            "with value \"['UA']\" (original value: \"['RU']\") [yaml]"
        ],
    ),
    (
        "unknown key, suggested from the keys of that place",
        {"r.yaml": "regions:\n  - id: a\n    countrys: [RU]\n"},
        ["rules/r.yaml:3:5: error: unknown key 'countrys'; did you mean 'countries'? [unknown-key]"],
    ),
    (
        "unknown key below a language",
        {"r.yaml": NOTICE.replace("{title: T, body: B}", "{title: T, body: B, lnk: 'https://x.org'}")},
        ["rules/r.yaml:6:31: error: unknown key 'lnk'; did you mean 'link'? [unknown-key]"],
    ),
    (
        "unknown section",
        {"r.yaml": "region:\n  - id: a\n"},
        [
            "rules/r.yaml:1:1: error: unknown section 'region'; a rule file is a mapping with any of "
            "the keys regions, notices, rules, cases [unknown-key]"
        ],
    ),
    (
        "missing required key",
        {"r.yaml": NOTICE.replace("    severity: legal\n", "")},
        ["rules/r.yaml:2:5: error: missing required key 'severity' [missing]"],
    ),
    (
        "bad id",
        {"r.yaml": "regions:\n  - id: Bad Id\n    countries: [RU]\n"},
        [
            "rules/r.yaml:2:9: error: regions.0.id: 'bad id' is not a valid id: use lower-case letters, "
            "digits, '.', '_' and '-' [string-pattern-mismatch]"
        ],
    ),
    (
        "unknown severity",
        {"r.yaml": NOTICE.replace("severity: legal", "severity: legl")},
        [
            "rules/r.yaml:3:15: error: notices.0.severity: expected 'legal', 'warning' or 'info', "
            "got 'legl'; did you mean 'legal'? [literal-error]"
        ],
    ),
    (
        "unknown effect",
        {
            "r.yaml": NOTICE + "rules:\n  - id: r\n    notice: undesirable\n"
            "    reader: {unknown_location: show}\n    effects: [hide_coments]\n"
        },
        [
            "rules/r.yaml:11:15: error: rules.0.effects.0: expected 'discourage_sharing', "
            "'hide_share_buttons', 'hide_comments' or 'withhold_article', got 'hide_coments'; "
            "did you mean 'hide_comments'? [literal-error]"
        ],
    ),
    (
        "alpha-3 country",
        {"r.yaml": "regions:\n  - id: a\n    countries: [UA, RUS]\n"},
        [
            "rules/r.yaml:3:21: error: unknown country code 'RUS'; ISO 3166-1 alpha-2 is 'RU' "
            "[unknown-country]"
        ],
    ),
    (
        "subdivision given as a country",
        {"r.yaml": "regions:\n  - id: a\n    countries: [UA-43]\n"},
        [
            "rules/r.yaml:3:17: error: unknown country code 'UA-43'; 'UA-43' is a subdivision "
            "(ISO 3166-2), not a country [unknown-country]"
        ],
    ),
    (
        "unknown subdivision",
        {"r.yaml": "regions:\n  - id: a\n    subdivisions: [UA-43, UA-99, XX-01]\n"},
        [
            "rules/r.yaml:3:27: error: unknown subdivision code 'UA-99'; did you mean 'UA-…' (…)? "
            "[unknown-subdivision]",
            "rules/r.yaml:3:34: error: unknown subdivision code 'XX-01'; 'XX' is not a country code "
            "[unknown-subdivision]",
        ],
    ),
    (
        "unknown region, with a suggestion",
        {"r.yaml": REGION + "  - id: greater\n    include: [rusia]\n"},
        ["rules/r.yaml:5:15: error: unknown region 'rusia'; did you mean 'russia'? [unknown-region]"],
    ),
    (
        "unknown region in a rule",
        {
            "r.yaml": REGION + NOTICE + "rules:\n  - id: r\n    notice: undesirable\n"
            "    reader: {regions: [russia, ukraine]}\n"
        },
        ["rules/r.yaml:13:32: error: unknown region 'ukraine' [unknown-region]"],
    ),
    (
        "unknown notice",
        {
            "r.yaml": REGION + NOTICE + "rules:\n  - id: r\n    notice: undesireable\n"
            "    reader: {regions: [russia]}\n"
        },
        [
            "rules/r.yaml:12:13: error: unknown notice 'undesireable'; did you mean 'undesirable'? "
            "[unknown-notice]"
        ],
    ),
    (
        "duplicate id across files names the first",
        {"a.yaml": REGION, "b.yaml": "# the same again\n" + REGION},
        ["rules/b.yaml:3:9: error: region id 'russia' is already defined at rules/a.yaml:2 [duplicate-id]"],
    ),
    (
        "a notice and a region may share an id",
        {"a.yaml": REGION, "b.yaml": NOTICE.replace("undesirable", "russia"), "c.yaml": "cases: [\n"},
        [
            "rules/c.yaml:2:1: error: while parsing a flow node expected the node content, "
            "but found '<stream end>' [yaml]"
        ],
    ),
    (
        "region include cycle",
        {
            "r.yaml": "regions:\n  - {id: a, include: [b]}\n  - {id: b, include: [c]}\n"
            "  - {id: c, include: [a]}\n  - {id: self, include: [self]}\n"
        },
        [
            "rules/r.yaml:2:22: error: region 'a' includes itself: a -> b -> c -> a [region-cycle]",
            "rules/r.yaml:3:22: error: region 'b' includes itself: b -> c -> a -> b [region-cycle]",
            "rules/r.yaml:4:22: error: region 'c' includes itself: c -> a -> b -> c [region-cycle]",
            "rules/r.yaml:5:25: error: region 'self' includes itself: self -> self [region-cycle]",
        ],
    ),
    (
        "default language without text",
        {"r.yaml": NOTICE.replace("default_language: en", "default_language: ru")},
        ["rules/r.yaml:2:5: error: default_language 'ru' has no text; texts are given for en [value-error]"],
    ),
    (
        "rule naming no readers",
        {"r.yaml": NOTICE + "rules:\n  - id: r\n    notice: undesirable\n    reader: {anonymized: skip}\n"},
        [
            "rules/r.yaml:8:5: error: rule names no readers: give reader.regions, reader.languages, "
            "or set unknown_location or anonymized to show [value-error]"
        ],
    ),
    (
        "impossible date",
        {
            "r.yaml": NOTICE + "rules:\n  - id: r\n    notice: undesirable\n    reader: {anonymized: show}\n"
            "    effective: {from: 2024-02-30}\n"
        },
        [
            "rules/r.yaml:11:23: error: rules.0.effective.from: input should be a valid datetime or date, "
            "day value is outside expected range, got '2024-02-30' [datetime-from-date-parsing]"
        ],
    ),
    (
        "a date-time without a zone in a rule: the message shows the fixed form",
        {
            "r.yaml": NOTICE + "rules:\n  - id: r\n    notice: undesirable\n    reader: {anonymized: show}\n"
            "    effective: {from: 2024-03-01T12:00:00}\n"
        },
        [
            "rules/r.yaml:11:23: error: rules.0.effective.from: date-time 2024-03-01T12:00:00 has no time "
            "zone; write 2024-03-01T12:00:00Z for UTC, or give an offset such as 2024-03-01T12:00:00+03:00 "
            "(a date alone, 2024-03-01, means midnight UTC) [no-time-zone]"
        ],
    ),
    (
        "a quoted date-time without a zone in a case",
        {
            "r.yaml": "cases:\n  - name: c\n    article: {publisher: p}\n    at: '2024-03-01 12:00'\n"
            "    expect: {notices: []}\n"
        },
        ["rules/r.yaml:4:9: error: cases.0.at: date-time 2024-03-01T12:00:00 has no time zone; …"],
    ),
    (
        "until equal to from",
        {
            "r.yaml": NOTICE + "rules:\n  - id: r\n    notice: undesirable\n    reader: {anonymized: show}\n"
            "    effective: {from: 2024-03-01, until: 2024-03-01T00:00:00Z}\n"
        },
        [
            "rules/r.yaml:11:16: error: rules.0.effective: until (2024-03-01T00:00:00Z) is not after from "
            "(2024-03-01T00:00:00Z): the rule could never apply; `until` is exclusive [until-not-after-from]"
        ],
    ),
    (
        "until before from, in another zone",
        {
            "r.yaml": NOTICE + "rules:\n  - id: r\n    notice: undesirable\n    reader: {anonymized: show}\n"
            "    effective:\n      from: 2024-03-01T03:00:00+03:00\n      until: 2024-02-29T23:00:00Z\n"
        },
        [
            "rules/r.yaml:12:7: error: rules.0.effective: until (2024-02-29T23:00:00Z) "
            "is not after from (2024-03-01T00:00:00Z): …"
        ],
    ),
    (
        "YAML alias refused",
        {"r.yaml": "regions:\n  - id: a\n    countries: &c [RU]\n  - id: b\n    countries: *c\n"},
        [
            "rules/r.yaml:5:16: error: YAML aliases (*name) are not allowed in rule files; "
            "write the value out [yaml]"
        ],
    ),
    (
        "YAML alias of a scalar refused",
        {"r.yaml": "regions:\n  - id: &x a\n    countries: [RU]\n  - id: b\n    include: [*x]\n"},
        [
            "rules/r.yaml:5:15: error: YAML aliases (*name) are not allowed in rule files; "
            "write the value out [yaml]"
        ],
    ),
    (
        "a top-level list",
        {"r.yaml": "- id: a\n  countries: [RU]\n"},
        [
            "rules/r.yaml:1:1: error: a rule file is a mapping with any of the keys regions, notices, "
            "rules, cases [not-a-mapping]"
        ],
    ),
    (
        "a case expecting an unknown notice",
        {
            "r.yaml": NOTICE + "cases:\n  - name: c\n    article: {publisher: p}\n"
            "    expect: {includes: [undesirable], excludes: [undesirabel]}\n"
        },
        [
            "rules/r.yaml:10:50: error: unknown notice 'undesirabel'; did you mean 'undesirable'? "
            "[unknown-notice]"
        ],
    ),
    (
        "supersedes an unknown notice",
        {"r.yaml": NOTICE + "    supersedes: [undesireable]\n"},
        [
            "rules/r.yaml:7:18: error: unknown notice 'undesireable'; "
            "did you mean 'undesirable'? [unknown-notice]"
        ],
    ),
    (
        "notices that supersede each other",
        {
            "r.yaml": NOTICE
            + "    supersedes: [other]\n"
            + NOTICE.replace("notices:\n", "").replace("id: undesirable", "id: other")
            + "    supersedes: [undesirable]\n"
        },
        [
            "rules/r.yaml:7:17: error: notice 'undesirable' supersedes itself: undesirable -> other -> "
            "undesirable [supersede-cycle]",
            "rules/r.yaml:13:17: error: notice 'other' supersedes itself: other -> undesirable -> other "
            "[supersede-cycle]",
        ],
    ),
]


@pytest.mark.parametrize(("files", "expected"), [row[1:] for row in BROKEN], ids=[row[0] for row in BROKEN])
def test_broken_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = load_errors(tmp_path, files)
    assert len(lines) == len(expected), "\n".join(lines)
    for pattern, line in zip(expected, lines, strict=True):
        assert fits(pattern, line), f"\nexpected {pattern}\n     got {line}"


def test_not_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_bytes("regions:\n  - id: россия\n".encode("cp1251"))
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(Path("rules"))
    assert caught.value.problems == [
        Problem("rules/r.yaml", 1, 1, "encoding", "file is not UTF-8 text (invalid continuation byte)")
    ]


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda d: d.mkdir(), "no-files", "no rule files (*.yaml) found"),
        (
            lambda d: (d.mkdir(), (d / "README.md").write_text("# rules\n")),
            "no-files",
            "no rule files (*.yaml) found",
        ),
        (lambda d: None, "no-directory", "rule directory not found"),
    ],
    ids=["empty", "no yaml", "missing"],
)
def test_no_rules(tmp_path: Path, make: Callable[[Path], object], code: str, message: str) -> None:
    directory = tmp_path / "rules"
    make(directory)
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(directory)
    assert caught.value.problems == [Problem(str(directory), 1, 1, code, message)]


def test_every_error_of_a_load_is_reported_sorted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = load_errors(
        tmp_path,
        {
            "z.yaml": "regions:\n  - id: b\n    countries: [RUS]\n  - id: c\n    countries: [UKR]\n",
            "a/notices.yaml": NOTICE.replace("legal", "legl") + "  - id: second\n    severity: info\n",
            "m.yaml": "regions: [\n",
        },
    )
    where = [line.split(": ", 1)[0] for line in lines]
    assert where == [
        "rules/a/notices.yaml:3:15",
        "rules/a/notices.yaml:7:5",
        "rules/a/notices.yaml:7:5",
        "rules/m.yaml:2:1",
        "rules/z.yaml:3:17",
        "rules/z.yaml:5:17",
    ]
    assert [line.rsplit(" ", 1)[1] for line in lines] == [
        "[literal-error]",
        "[missing]",
        "[missing]",
        "[yaml]",
        "[unknown-country]",
        "[unknown-country]",
    ]
    assert lines[1:3] == [
        "rules/a/notices.yaml:7:5: error: missing required key 'default_language' [missing]",
        "rules/a/notices.yaml:7:5: error: missing required key 'texts' [missing]",
    ]


def test_problem_as_dict() -> None:
    problem = Problem("rules/r.yaml", 3, 5, "unknown-key", "unknown key 'x'")
    assert problem.as_dict() == {
        "file": "rules/r.yaml",
        "line": 3,
        "column": 5,
        "severity": "error",
        "code": "unknown-key",
        "message": "unknown key 'x'",
    }
    assert str(RulesetInvalid([problem, problem])).count("\n") == 1
    assert RulesetInvalid([problem]).args == ("1 error in 1 file",)


def test_golden_error_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole output for a broken directory. Set UPDATE_GOLDEN=1 to rewrite the file,
    then review the diff: a reworded message is a change editors will see."""
    golden = HERE / "golden" / "broken.txt"
    monkeypatch.chdir(HERE / "rulefiles")
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(Path("broken"))
    output = str(caught.value) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(output, encoding="utf-8")
    assert output == golden.read_text(encoding="utf-8")
