"""herald rules diff: items added, removed and changed, impact now and later, golden output, git revisions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.diff import as_dict, diff, render_text
from service.loader import load_ruleset
from service.ruleset import Ruleset

HERE = Path(__file__).resolve().parent
OLD, NEW = HERE / "rulefiles" / "diff" / "old", HERE / "rulefiles" / "diff" / "new"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
# Read before the autouse fixture in conftest.py strips every HERALD_* variable from the environment.
UPDATE_GOLDEN = bool(os.environ.get("UPDATE_GOLDEN"))

REGIONS = """
regions:
  - {id: russia, countries: [RU]}
  - {id: occupied, subdivisions: [UA-43]}
"""
NOTICES = """
notices:
  - {id: n, severity: legal, default_language: en, texts: {en: {title: t, body: b}}}
  - {id: m, severity: info, default_language: en, texts: {en: {title: t, body: b}}}
"""
RULE = """
rules:
  - id: r
    notice: n
    article: {publisher: rferl}
    reader: {regions: [russia]}
"""


def ruleset(directory: Path, *texts: str) -> Ruleset:
    """A ruleset from YAML texts, one file each, in a new directory."""
    directory.mkdir()
    for i, text in enumerate(texts):
        (directory / f"{i}.yaml").write_text(textwrap.dedent(text))
    return load_ruleset(directory)


def compare(tmp_path: Path, old: tuple[str, ...], new: tuple[str, ...], now: datetime = NOW) -> list[str]:
    """The text output's lines, without the two header lines naming the hashes."""
    result = diff(ruleset(tmp_path / "old", *old), ruleset(tmp_path / "new", *new), now)
    return render_text(result).splitlines()[3:]


def section(lines: list[str], title: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return [line.strip() for line in lines[start + 1 : end]]


# ---- items ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "title", "expected"),
    [
        ((REGIONS, NOTICES, RULE), (REGIONS, NOTICES, "rules: []"), "Rules", ["rule 'r' removed"]),
        (
            (REGIONS, NOTICES, "rules: []"),
            (REGIONS, NOTICES, RULE),
            "Rules",
            ["rule 'r' added"],
        ),
        (
            (REGIONS, NOTICES, RULE),
            (REGIONS, NOTICES, RULE.replace("[russia]}", "[russia]}\n    effective: {from: 2026-01-01}")),
            "Rules",
            ["rule 'r' changed: effective"],
        ),
        (
            (REGIONS, NOTICES, RULE),
            (REGIONS, NOTICES, RULE.replace("notice: n", "notice: m").replace("[russia]", "[occupied]")),
            "Rules",
            ["rule 'r' changed: notice, reader"],
        ),
        (
            (REGIONS, NOTICES, RULE),
            (REGIONS, NOTICES.replace("severity: info", "severity: warning"), RULE),
            "Notices",
            ["notice 'm' changed: severity"],
        ),
        (
            (REGIONS, NOTICES, RULE),
            (REGIONS, NOTICES.replace("  - {id: m,", "  - {id: k,"), RULE),
            "Notices",
            ["notice 'k' added", "notice 'm' removed"],
        ),
        (
            (REGIONS, NOTICES, RULE),
            (REGIONS.replace("[UA-43]", "[UA-43, UA-40], name: Occupied"), NOTICES, RULE),
            "Regions",
            ["region 'occupied' changed: name, subdivisions"],
        ),
        (
            (REGIONS, NOTICES, RULE),
            (REGIONS + "  - {id: belarus, countries: [BY]}\n", NOTICES, RULE),
            "Regions",
            ["region 'belarus' added"],
        ),
        (
            (REGIONS, NOTICES, RULE),
            (REGIONS.replace("  - {id: occupied, subdivisions: [UA-43]}\n", ""), NOTICES, RULE),
            "Regions",
            ["region 'occupied' removed"],
        ),
        ((REGIONS, NOTICES, RULE), (REGIONS, NOTICES, RULE), "Rules", ["no changes"]),
    ],
)
def test_items_added_removed_changed(
    tmp_path: Path, old: tuple[str, ...], new: tuple[str, ...], title: str, expected: list[str]
) -> None:
    if old == new:
        result = diff(ruleset(tmp_path / "a", *old), ruleset(tmp_path / "b", *new), NOW)
        assert not result.different
        assert render_text(result).endswith("\n\nno differences")
        return
    assert section(compare(tmp_path, old, new), title) == expected


def test_a_description_is_a_change_with_no_impact(tmp_path: Path) -> None:
    described = RULE.replace("notice: n", "notice: n\n    description: why")
    lines = compare(tmp_path, (REGIONS, NOTICES, RULE), (REGIONS, NOTICES, described))
    assert section(lines, "Rules") == ["rule 'r' changed: description"]
    assert section(lines, "Impact") == ["no reader gains or loses a notice or an effect"]


def test_reordering_and_reformatting_change_nothing(tmp_path: Path) -> None:
    region = "regions:\n  - id: russia\n    countries: [RU]\n  - id: occupied\n    subdivisions: UA-43\n"
    result = diff(
        ruleset(tmp_path / "a", REGIONS, NOTICES, RULE),
        ruleset(tmp_path / "b", RULE, NOTICES, region),
        NOW,
    )
    assert not result.different


# ---- impact --------------------------------------------------------------------------------

FUTURE = RULE.replace("[russia]}", "[russia]}\n    effective: {from: 2026-01-01}")


@pytest.mark.parametrize(
    ("old_rule", "new_rule", "expected"),
    [
        ("rules: []", RULE, ["rferl × RU: + n (legal) — from now"]),
        (RULE, "rules: []", ["rferl × RU: - n (legal) — from now"]),
        (RULE, FUTURE, ["rferl × RU: - n (legal) — now, until 2026-01-01"]),
        ("rules: []", FUTURE, ["rferl × RU: + n (legal) — from 2026-01-01"]),
        (
            RULE,
            RULE.replace("[russia]}", "[russia]}\n    effective: {until: 2026-01-01}"),
            ["rferl × RU: - n (legal) — from 2026-01-01"],
        ),
        (
            "rules: []",
            RULE.replace("[russia]}", "[russia]}\n    effective: {from: 2026-01-01, until: 2027-01-01}"),
            ["rferl × RU: + n (legal) — from 2026-01-01 until 2027-01-01"],
        ),
        (  # a date in the past is no instant of its own
            "rules: []",
            RULE.replace("[russia]}", "[russia]}\n    effective: {from: 2024-02-20}"),
            ["rferl × RU: + n (legal) — from now"],
        ),
        (
            RULE,
            RULE.replace("[russia]}", "[russia]}\n    effects: [hide_comments, withhold_article]"),
            ["rferl × RU: + effect hide_comments, + effect withhold_article — from now"],
        ),
        (  # readers with identical changes share a line; a subdivision is read with its own country
            RULE,
            RULE.replace("[russia]", "[russia, occupied]"),
            ["rferl × UA-43: + n (legal) — from now"],
        ),
        (
            RULE,
            RULE.replace("[russia]}", "[russia], unknown_location: show}"),
            ["rferl × unknown location, anonymized: + n (legal) — from now"],
        ),
        (
            RULE,
            RULE.replace("{publisher: rferl}", "{}"),
            ["* × RU: + n (legal) — from now", "note: * is any publisher no rule names"],
        ),
        (  # a notice replaced by another, and by one of lower rank
            RULE,
            RULE.replace("notice: n", "notice: m"),
            ["rferl × RU: + m (info), - n (legal) — from now"],
        ),
    ],
)
def test_impact(tmp_path: Path, old_rule: str, new_rule: str, expected: list[str]) -> None:
    lines = compare(tmp_path, (REGIONS, NOTICES, old_rule), (REGIONS, NOTICES, new_rule))
    assert section(lines, "Impact") == expected


def test_instants_are_now_and_every_later_from_and_until(tmp_path: Path) -> None:
    timed = RULE.replace(
        "[russia]}", "[russia]}\n    effective: {from: 2024-01-01, until: 2026-03-01T06:30:00Z}"
    )
    result = diff(
        ruleset(tmp_path / "a", REGIONS, NOTICES, FUTURE),
        ruleset(tmp_path / "b", REGIONS, NOTICES, timed),
        NOW,
    )
    assert result.instants == (NOW, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, 6, 30, tzinfo=UTC))
    assert section(render_text(result).splitlines(), "Impact") == [
        "rferl × RU: + n (legal) — now, until 2026-01-01",
        "rferl × RU: - n (legal) — from 2026-03-01T06:30:00Z",
    ]


WITNESSED = """
rules:
  - id: w
    notice: n
    article:
      publisher: rferl
      section: [opinion, news]
      tags: {any: [war, russia], all: [analysis], none: [russia]}
      language: [ru, en]
      type: video
    reader: {regions: [russia]}
"""


def test_a_witness_article_meets_the_rules_article_conditions(tmp_path: Path) -> None:
    lines = compare(tmp_path, (REGIONS, NOTICES, "rules: []"), (REGIONS, NOTICES, WITNESSED))
    # First of each list in sorted order; the any-tag that is also a none-tag is skipped.
    assert section(lines, "Impact")[0] == (
        "rferl [section=news, tags=analysis+war, language=en, type=video] × RU: + n (legal) — from now"
    )


def test_a_witness_row_lists_only_what_the_plain_article_does_not(tmp_path: Path) -> None:
    sectioned = WITNESSED.replace("id: w", "id: w\n    effects: [hide_comments]")
    both = RULE + sectioned.replace("rules:\n", "")
    lines = compare(tmp_path, (REGIONS, NOTICES, "rules: []"), (REGIONS, NOTICES, both))
    assert section(lines, "Impact")[:2] == [
        "rferl × RU: + n (legal) — from now",
        "rferl [section=news, tags=analysis+war, language=en, type=video] × RU: "
        "+ effect hide_comments — from now",
    ]


def test_a_language_signal_adds_a_reader_who_prefers_the_language(tmp_path: Path) -> None:
    signal = RULE.replace("[russia]}", "[russia], languages: [ru], unknown_location: show}")
    lines = compare(tmp_path, (REGIONS, NOTICES, "rules: []"), (REGIONS, NOTICES, signal))
    # the reader who prefers Russian has an unknown location: it repeats nothing that reader gets
    assert section(lines, "Impact")[:1] == [
        "rferl × RU, unknown location, anonymized: + n (legal) — from now"
    ]
    signal = RULE.replace("[russia]}", "[russia], languages: [ru]}")
    (tmp_path / "again").mkdir()
    lines = compare(tmp_path / "again", (REGIONS, NOTICES, "rules: []"), (REGIONS, NOTICES, signal))
    assert section(lines, "Impact")[:1] == [
        "rferl × RU, unknown location (prefers ru): + n (legal) — from now"
    ]


def test_an_excluded_subdivision_is_a_reader_of_its_own(tmp_path: Path) -> None:
    ukraine = "regions:\n  - {id: russia, countries: [UA]}\n  - {id: occupied, subdivisions: [UA-43]}\n"
    without = ukraine.replace("countries: [UA]", "countries: [UA], exclude: {subdivisions: [UA-43]}")
    lines = compare(tmp_path, (ukraine, NOTICES, RULE), (without, NOTICES, RULE))
    assert section(lines, "Impact")[:1] == ["rferl × UA-43: - n (legal) — from now"]


def test_as_dict_gives_every_impact_per_reader_with_full_instants(tmp_path: Path) -> None:
    new = RULE.replace("[russia]}", "[russia, occupied]}\n    effects: [hide_comments]")
    result = diff(
        ruleset(tmp_path / "a", REGIONS, NOTICES, FUTURE),
        ruleset(tmp_path / "b", REGIONS, NOTICES, new),
        NOW,
    )
    body = as_dict(result, "before", "after")
    assert body["old"]["source"] == "before" and body["new"]["ruleset"].startswith("sha256:")
    assert body["instants"] == ["2025-06-01T12:00:00Z", "2026-01-01T00:00:00Z"]
    assert body["rules"] == [{"id": "r", "change": "changed", "keys": ["effective", "effects", "reader"]}]
    assert [(i["reader"]["label"], i["from"], i["until"]) for i in body["impact"]] == [
        ("RU", "2025-06-01T12:00:00Z", "2026-01-01T00:00:00Z"),
        ("RU", "2025-06-01T12:00:00Z", None),
        ("UA-43", "2025-06-01T12:00:00Z", None),
    ]
    assert body["impact"][0]["gained"] == {"notices": [{"id": "n", "severity": "legal"}], "effects": []}
    assert body["impact"][2]["reader"] == {
        "label": "UA-43",
        "subdivision_unknown": False,
        "country": "UA",
        "subdivision": "UA-43",
        "anonymized": False,
        "languages": [],
    }
    json.dumps(body)


def test_now_must_be_aware(tmp_path: Path) -> None:
    rules = ruleset(tmp_path / "a", REGIONS, NOTICES, RULE)
    with pytest.raises(ValueError, match="timezone-aware"):
        diff(rules, rules, datetime(2025, 1, 1))


# ---- command line --------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["rules", "diff", *args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_golden_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole text for tests/rulefiles/diff/{old,new}. Set UPDATE_GOLDEN=1 to rewrite the
    file, then review its diff: it is what editors paste into reviews."""
    golden = HERE / "golden" / "diff.txt"
    monkeypatch.chdir(HERE)
    code, output = run("rulefiles/diff/old", "rulefiles/diff/new", "--at", "2025-06-01T12:00:00Z")
    assert code == 0
    if UPDATE_GOLDEN:
        golden.write_text(output, encoding="utf-8")
    assert output == golden.read_text(encoding="utf-8")


def test_json_output() -> None:
    code, output = run(str(OLD), str(NEW), "--at", "2025-06-01", "--format", "json")
    assert code == 0
    body = json.loads(output)
    assert body["now"] == "2025-06-01T00:00:00Z"
    assert {"id": "war-reporting-russia", "change": "removed", "keys": []} in body["rules"]
    assert body["different"] is True


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([str(OLD), str(NEW)], 0),
        ([str(OLD), str(NEW), "--exit-code"], 1),
        ([str(OLD), str(OLD), "--exit-code"], 0),
    ],
)
def test_exit_code(args: list[str], code: int) -> None:
    assert run(*args)[0] == code


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.email=editor@example.org", "-c", "user.name=Editor", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose rules/ is the old rule set in HEAD~1 and the new one in HEAD."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for source in (OLD, NEW):
        shutil.rmtree(repo / "rules", ignore_errors=True)
        shutil.copytree(source, repo / "rules")
        git(repo, "add", "rules")
        git(repo, "commit", "-q", "-m", f"rules: {source.name}")
    monkeypatch.chdir(repo)
    return repo


@pytest.mark.parametrize(
    ("old", "new"),
    [("HEAD~1", "HEAD"), ("HEAD~1:rules", "HEAD:rules/"), ("HEAD~1", "rules")],
)
def test_git_revisions(repo: Path, old: str, new: str) -> None:
    code, output = run(old, new, "--at", "2025-06-01T12:00:00Z")
    assert code == 0
    golden = (HERE / "golden" / "diff.txt").read_text(encoding="utf-8")
    # the same comparison as between the two directories; only the header names other sources
    assert output.splitlines()[2:] == golden.splitlines()[2:]
    assert output.startswith(f"old: {old} (sha256:")


def test_revision_paths_are_from_the_top_even_in_a_subdirectory(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "elsewhere").mkdir()
    monkeypatch.chdir(repo / "elsewhere")
    code, output = run("HEAD~1:rules", "HEAD:rules", "--at", "2025-06-01T12:00:00Z")
    assert code == 0
    golden = (HERE / "golden" / "diff.txt").read_text(encoding="utf-8")
    assert output.splitlines()[2:] == golden.splitlines()[2:]


def test_an_invalid_revision_names_its_file_and_line(repo: Path) -> None:
    (repo / "rules" / "rules.yaml").write_text(
        "rules:\n  - id: r\n    notice: nowhere\n    reader: {regions: [russia]}\n"
    )
    git(repo, "commit", "-q", "-am", "broken")
    code, output = run("HEAD~1", "HEAD")
    assert code == 2
    assert "Error: NEW HEAD: 1 error in 1 file\n" in output
    assert "HEAD:rules/rules.yaml:3:13: error: unknown notice 'nowhere'" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-thing", "HEAD"], "Error: OLD 'no-such-thing' is neither a directory nor a git revision"),
        (["HEAD", "HEAD~9"], "Error: NEW 'HEAD~9' is neither a directory nor a git revision"),
        (["HEAD:nowhere", "HEAD"], "Error: OLD: revision 'HEAD' has no 'nowhere'"),
        (["HEAD:rules/rules.yaml", "HEAD"], "Error: OLD: HEAD:rules/rules.yaml is not a directory"),
        (["HEAD", "HEAD", "--at", "soon"], "Invalid value for --at: 'soon' is not an RFC 3339 instant"),
        (
            ["HEAD", "HEAD", "--at", "2025-06-01T12:00"],
            "Invalid value for --at: '2025-06-01T12:00': date-time 2025-06-01T12:00:00 has no time zone; "
            "write 2025-06-01T12:00:00Z for UTC",
        ),
    ],
)
def test_user_errors_are_one_clean_message(repo: Path, args: list[str], message: str) -> None:
    code, output = run(*args)
    assert code == 2
    assert message in output


def test_invalid_rule_directory_is_reported_at_file_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE / "rulefiles")
    code, output = run("broken", "diff/new")
    assert code == 2
    assert output.startswith("Error: OLD broken: ")
    assert "broken/notices/broken.yaml:" in output


def test_outside_a_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code, output = run("HEAD", str(NEW))
    assert code == 2
    assert "Error: OLD 'HEAD' is neither a directory nor a git revision" in output
