"""The Makefile a newcomer meets: what `make run`, `PORT=… make run`, `make test` and `make clean` do."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def dry_run(tmp_path: Path, *args: str) -> str:
    """What make would run in a fresh clone (no .venv yet), without running it."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    env = {
        k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    }  # under make test
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_run_installs_only_what_serving_needs(tmp_path: Path) -> None:
    commands = dry_run(tmp_path, "run")
    assert "pip install --quiet -e .\n" in commands and "[dev]" not in commands
    assert commands.rstrip().endswith(".venv/bin/herald serve --host 127.0.0.1 --port 8080")


@pytest.mark.parametrize(
    ("variables", "expected"), [(("PORT=8081",), "--port 8081"), (("HOST=0.0.0.0",), "--host 0.0.0.0")]
)
def test_make_run_takes_the_port_and_host(tmp_path: Path, variables: tuple[str, ...], expected: str) -> None:
    assert expected in dry_run(tmp_path, "run", *variables).splitlines()[-1]


def test_make_test_installs_the_dev_tools(tmp_path: Path) -> None:
    commands = dry_run(tmp_path, "lint")
    assert "pip install --quiet -e '.[dev]'" in commands and ".venv/bin/ruff check ." in commands


def test_make_clean_removes_build_leftovers(tmp_path: Path) -> None:
    for leftover in (
        ".venv/bin",
        "var/audit",
        "herald.egg-info",
        "build/lib",
        "dist",
        ".hypothesis",
        "service/__pycache__",
    ):
        (tmp_path / leftover).mkdir(parents=True)
    (tmp_path / "service" / "engine.py").write_text("")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    subprocess.run(["make", "--no-print-directory", "clean"], cwd=tmp_path, capture_output=True, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Makefile", "service"]
    assert [p.name for p in (tmp_path / "service").iterdir()] == ["engine.py"]
