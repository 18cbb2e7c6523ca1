"""`herald rules check|test`: the editors' tools."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from service.cases import run_cases
from service.cli import common
from service.engine import Engine


@click.group()
def rules() -> None:
    """Check and test rule files."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def check(directory: Path | None) -> None:
    """Load the rules as the service does and report every problem at file:line:column."""
    directory = directory or common.settings().rules_dir
    ruleset = common.ruleset(directory)
    click.echo(
        f"{directory}: ok, {len(ruleset.regions)} regions, {len(ruleset.notices)} notices, "
        f"{len(ruleset.rules)} rules, {len(ruleset.cases)} cases; {ruleset.hash}"
    )


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def test(directory: Path | None) -> None:
    """Run the editors' test cases; exit 1 on any failure."""
    directory = directory or common.settings().rules_dir
    results = run_cases(Engine(common.ruleset(directory)))
    for result in results:
        if not result.passed:
            where = f"{result.case.file}:{result.case.line}"
            click.echo(f"FAILED {where}: {result.case.case.name}")
            for failure in result.failures:
                click.echo(f"    {failure}")
            click.echo(f"    rules fired: {', '.join(result.decision.rules) or 'none'}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
