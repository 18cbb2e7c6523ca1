"""The deployment recipe in docs/deploy/: the settings file loads, the systemd units are valid."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"


def _env_file() -> dict[str, str]:
    """NAME=value lines, as systemd's EnvironmentFile reads them (comments and blank lines skipped)."""
    values = {}
    for line in (DEPLOY / "herald.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_the_settings_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    values = _env_file()
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.audit_db_url and settings.audit_db_url.startswith("postgresql://")
    assert settings.audit_node == "eu-west-1a" and values["WORKERS"].isdigit()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["herald.service", "herald-ship.service"])
def test_the_systemd_units_are_valid(unit: str, tmp_path: Path) -> None:
    herald = Path(sys.executable).parent / "herald"
    text = (DEPLOY / unit).read_text().replace("/opt/herald/.venv/bin/herald", str(herald))
    (tmp_path / unit).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and str(tmp_path) not in done.stderr, done.stderr
