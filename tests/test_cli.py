"""The `herald` command through click's runner: clean messages and exit codes, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from tests.conftest import RULES


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_rules_check_on_the_bundled_rules() -> None:
    code, output = run("rules", "check", str(RULES))
    assert code == 0
    assert f"{RULES}: ok, 0 errors, 0 warnings; sha256:" in output


def test_rules_check_reports_file_line_column(tmp_path: Path) -> None:
    (tmp_path / "n.yaml").write_text(
        "notices:\n  - id: n\n    severity: lgal\n    default_language: en\n"
        "    texts: {en: {title: t, body: b}}\n"
    )
    code, output = run("rules", "check", str(tmp_path))
    assert code == 1
    assert (
        f"{tmp_path}/n.yaml:3:15: error: notices.0.severity: "
        "expected 'legal', 'warning' or 'info', got 'lgal'" in output
    )
    assert "did you mean 'legal'?" in output


def test_rules_test_passes_on_the_bundled_cases() -> None:
    code, output = run("rules", "test", str(RULES))
    assert code == 0
    assert output.strip().splitlines()[-1].endswith("passed, 0 failed")


def test_rules_test_names_the_failing_case(tmp_path: Path) -> None:
    for source in RULES.rglob("*.yaml"):
        target = tmp_path / source.relative_to(RULES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text())
    (tmp_path / "tests" / "extra.yaml").write_text(
        "cases:\n  - name: wrong on purpose\n    article: {publisher: rferl}\n"
        "    reader: {country: US}\n    at: 2025-01-01\n    expect: {notices: [rferl-undesirable]}\n"
    )
    code, output = run("rules", "test", str(tmp_path))
    assert code == 1
    assert f"FAILED {tmp_path}/tests/extra.yaml:2: wrong on purpose" in output
    assert "expected notices ['rferl-undesirable'], got []" in output
    assert output.strip().splitlines()[-1].endswith(" passed, 1 failed")


@pytest.mark.parametrize(
    ("address", "lines"),
    [
        ("77.88.8.8", ["country:     RU", "source:      geoip"]),
        ("5.59.104.1", ["subdivision: UA-43"]),
        ("10.1.1.1", ["source:      unknown"]),
    ],
)
def test_geo_lookup(city_db: Path, address: str, lines: list[str]) -> None:
    code, output = run("geo", "lookup", address, env={"HERALD_GEOIP_DB": str(city_db)})
    assert code == 0
    for line in lines:
        assert line in output


def test_geo_lookup_on_the_embedded_database_names_its_source() -> None:
    code, output = run("geo", "lookup", "77.88.8.8")
    assert code == 0
    assert "GeoLite2-City 2019-12-24" in output and "GeoLite2 data created by MaxMind" in output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["geo", "lookup", "1.2.3"], {}, "'1.2.3' is not an IP address"),
        (["geo", "lookup", "8.8.8.8"], {"HERALD_GEOIP_DB": "/nowhere.mmdb"}, "/nowhere.mmdb does not exist"),
        (["serve"], {"HERALD_MAX_BATCH": "many"}, "HERALD_MAX_BATCH: "),
        (
            ["serve"],
            {"HERALD_TRUSTED_PROXIES": "10.0.0.1/8"},
            "HERALD_TRUSTED_PROXIES: '10.0.0.1/8' is not a network",
        ),
        (["rules", "check"], {"HERALD_RULES_DIRR": "x"}, "HERALD_RULES_DIRR: unknown setting"),
    ],
)
def test_user_errors_are_one_clean_message(args: list[str], env: dict[str, str], message: str) -> None:
    code, output = run(*args, env=env)
    assert code != 0
    assert message in output


def test_settings_lists_every_setting() -> None:
    from service.config import env_names

    code, output = run("settings")
    assert code == 0
    for name in env_names():
        assert name in output
