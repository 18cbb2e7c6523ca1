"""What every sub-command shares: settings and rules loaded with clean, non-zero exits on error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from service.config import Settings, SettingsError, load_settings
from service.loader import load_ruleset
from service.problems import RulesetInvalid
from service.ruleset import Ruleset


def settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as error:
        raise click.ClickException(f"invalid settings:\n{error}") from None


def ruleset(directory: Path, *, positions: bool = True) -> Ruleset:
    """The rules below `directory`, loaded as the service loads them (HERALD_RULES_MAX_BYTES)."""
    try:
        return load_ruleset(directory, max_total_bytes=settings().rules_max_bytes, positions=positions)
    except RulesetInvalid as error:
        fail_rules(error)


def fail_rules(error: RulesetInvalid) -> NoReturn:
    """Every problem once, then one summary line (`2 errors in 2 files`); exit 1."""
    for problem in error.problems:
        click.echo(str(problem), err=True)
    click.echo(error.summary, err=True)
    sys.exit(1)
