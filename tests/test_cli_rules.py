"""`herald rules check|test` and `herald explain` as an editor runs them: output and exit codes."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from tests.conftest import RULES


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the bundled rules in tmp_path/rules, with tmp_path as the working directory."""
    shutil.copytree(RULES, tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    return Path("rules")


def write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))


def test_check_a_typo_points_at_its_line(rules: Path) -> None:
    policy = rules / "policies" / "rferl.yaml"
    policy.write_text(policy.read_text().replace("regions: [russia,", "regions: [rusia,"))
    code, output = run("rules", "check", "rules")
    assert code == 1
    assert (
        "rules/policies/rferl.yaml:11:17: error: unknown region 'rusia'; "
        "did you mean 'russia'? [unknown-region]" in output
    )
    assert output.strip().splitlines()[-1] == "rules: invalid, 1 error in 1 file, 0 warnings"


@pytest.mark.parametrize(
    ("flags", "code", "verdict"), [((), 0, "ok"), (("--strict",), 1, "failed (--strict)")]
)
def test_check_warnings_fail_only_when_strict(
    rules: Path, flags: tuple[str, ...], code: int, verdict: str
) -> None:
    write(rules / "spare.yaml", "regions:\n  - {id: belarus, countries: [BY]}\n")
    exit_code, output = run("rules", "check", "rules", *flags)
    assert exit_code == code
    assert "rules/spare.yaml:2:6: warning: region 'belarus' is not used by any rule [unused-region]" in output
    assert output.splitlines()[-1].startswith(f"rules: {verdict}, 0 errors, 1 warning in 1 file; sha256:")


def test_check_json(rules: Path) -> None:
    write(rules / "spare.yaml", "regions:\n  - {id: belarus, countries: [BLR]}\n")
    code, output = run("rules", "check", "rules", "--format", "json")
    assert code == 1
    body = json.loads(output)
    assert body["errors"] == 1 and body["ruleset"] is None
    (problem,) = body["problems"]
    assert problem["file"] == "rules/spare.yaml" and (problem["line"], problem["column"]) == (2, 31)
    assert problem["message"].endswith("ISO 3166-1 alpha-2 is 'BY'")


def test_test_prints_failures_coverage_and_summary(rules: Path) -> None:
    write(
        rules / "tests" / "more.yaml",
        """\
        cases:
          - name: Kyiv wrongly expected to see the notice
            article: {publisher: rferl}
            reader: {country: UA, subdivision: UA-30}
            at: 2025-01-01
            expect: {includes: [rferl-undesirable], effects: [discourage_sharing]}
        """,
    )
    code, output = run("rules", "test", "rules")
    assert code == 1
    assert output.splitlines()[:4] == [
        "FAILED rules/tests/more.yaml:2: Kyiv wrongly expected to see the notice",
        "    expected notice 'rferl-undesirable' to be shown, it was not",
        "    expected effects ['discourage_sharing'], got []",
        "    rules fired: none",
    ]
    assert "coverage: 100% (rules 1/1, regions 2/2, notice texts 3/3)" in output
    assert output.strip().splitlines()[-1] == "16 passed, 1 failed"


def test_test_verbose_says_why_each_rule_matched(rules: Path) -> None:
    code, output = run("rules", "test", "rules", "-v")
    assert code == 0
    lines = output.splitlines()
    at = lines.index(
        "ok rules/tests/rferl.yaml:100: a reader known only as Ukraine may be in an occupied oblast, "
        "and sees the notice"
    )
    assert lines[at + 1] == (
        "      rferl-undesirable-russia: possibly in region russia-controlled-ukraine"
        " (subdivision unknown in UA)"
    )
    assert "      rferl-undesirable-russia: in region russia-controlled-ukraine by UA-43" in lines


def test_test_min_coverage(rules: Path) -> None:
    write(
        rules / "notices" / "extra.yaml",
        "notices:\n  - {id: spare, severity: info, default_language: de, texts: {de: {title: T, body: B}}}\n",
    )
    code, output = run("rules", "test", "rules", "--min-coverage", "90")
    assert code == 1
    assert "  not exercised: notice text spare/de" in output
    assert "coverage 85.7% is below --min-coverage 90%" in output
    assert "coverage: 86% (rules 1/1, regions 2/2, notice texts 3/4)" in output
    assert run("rules", "test", "rules", "--min-coverage", "85")[0] == 0


def test_test_cases_with_ip_use_the_geoip_database(rules: Path, city_db: Path) -> None:
    write(
        rules / "tests" / "ip.yaml",
        """\
        cases:
          - name: a Yandex address is in Russia
            article: {publisher: rferl}
            reader: {ip: 77.88.8.8}
            at: 2025-01-01
            expect: {notices: [rferl-undesirable]}
          - name: a Kyiv address is not
            article: {publisher: rferl}
            reader: {ip: 93.72.0.1}
            at: 2025-01-01
            expect: {notices: []}
        """,
    )
    code, output = run("rules", "test", "rules", env={"HERALD_GEOIP_DB": str(city_db)})
    assert (code, output.strip().splitlines()[-1]) == (0, "18 passed, 0 failed")


def test_test_case_with_a_bad_ip_is_a_load_error(rules: Path) -> None:
    write(
        rules / "tests" / "ip.yaml",
        "cases:\n  - {name: x, article: {publisher: p}, reader: {ip: 1.2.3}, expect: {}}\n",
    )
    code, output = run("rules", "test", "rules")
    assert code == 1
    assert "rules/tests/ip.yaml:2:" in output and "'1.2.3' is not an IP address" in output


def test_explain_text() -> None:
    code, output = run(
        "explain",
        "--rules",
        str(RULES),
        "--publisher",
        "rferl",
        "--country",
        "UA",
        "--subdivision",
        "UA-30",
        "--at",
        "2025-01-01",
    )
    assert code == 0
    assert "notices: none" in output
    assert "  no      rferl-undesirable-russia -> rferl-undesirable" in output
    assert (
        "      NOT reader: reader UA/UA-30 (explicit): not in regions "
        "['russia', 'russia-controlled-ukraine'], location is known, not anonymized" in output
    )


def test_explain_json_from_a_file(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "article": {"publisher": "rferl"},
                "reader": {"subdivision": "UA-43"},
                "at": "2023-01-01T00:00:00Z",
            }
        )
    )
    code, output = run("explain", str(request), "--rules", str(RULES), "--json")
    assert code == 0
    body = json.loads(output)
    assert body["notices"] == []
    (verdict,) = body["rules"]
    assert [c["condition"] for c in verdict["checks"] if not c["held"]] == ["effective"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("explain",), "give --publisher"),
        (
            ("explain", "--publisher", "rferl", "--country", "RUS"),
            "reader.country: unknown country code 'RUS'",
        ),
        (("explain", "--publisher", "rferl", "--at", "later"), "at: "),
    ],
)
def test_explain_errors(args: tuple[str, ...], message: str) -> None:
    code, output = run(*args)
    assert code != 0 and message in output
