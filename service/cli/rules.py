"""`herald rules check|test|diff`: the editors' tools."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from service import geo as geoip
from service.cases import CaseResult, Locate, coverage, run_cases
from service.cli import common
from service.cli.diff import diff
from service.engine import Engine
from service.inputs import Location
from service.lint import lint
from service.loader import load_ruleset
from service.network import parse_ip
from service.problems import RulesetInvalid, tally


@click.group()
def rules() -> None:
    """Check, test and compare rule files."""


def _directory(directory: Path | None) -> Path:
    return directory or common.settings().rules_dir


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(directory: Path | None, strict: bool, output: str) -> None:
    """Load the rules as the service does; print every problem as file:line:column: severity: message."""
    directory = _directory(directory)
    ruleset_hash = None
    try:
        ruleset = load_ruleset(directory, max_total_bytes=common.settings().rules_max_bytes)
        problems = lint(ruleset, datetime.now(UTC))
        ruleset_hash = ruleset.hash
    except RulesetInvalid as invalid:
        problems = invalid.problems
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if output == "json":
        body = {
            "ruleset": ruleset_hash,
            "errors": errors,
            "warnings": warnings,
            "problems": [p.as_dict() for p in problems],
        }
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            click.echo(str(problem))
        # The verdict says what the exit status says: "failed" when --strict fails on warnings.
        verdict = "invalid" if errors else "failed (--strict)" if strict and warnings else "ok"
        click.echo(
            f"{directory}: {verdict}, {tally(problems, 'error')}, {tally(problems, 'warning')}"
            + (f"; {ruleset_hash}" if ruleset_hash else "")
        )
    sys.exit(1 if errors or (strict and warnings) else 0)


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--min-coverage", type=click.FloatRange(0, 100), help="Fail when coverage is below PCT.")
@click.option("-v", "--verbose", is_flag=True, help="Show every case and why each rule matched.")
def test(directory: Path | None, min_coverage: float | None, verbose: bool) -> None:
    """Run the editors' test cases; exit 1 on any failure."""
    directory = _directory(directory)
    engine = Engine(common.ruleset(directory))
    results = run_cases(engine, locate=_geo_locate() if _needs_geo(engine) else None)
    for result in results:
        if not result.passed:
            _print_failure(result)
        elif verbose and result.decision is not None:
            click.echo(f"ok {result.case.file}:{result.case.line}: {result.case.case.name}")
            for match in result.decision.matches:
                click.echo(f"      {match.rule}: {match.describe()}")
    cover = coverage(engine.ruleset, results)
    click.echo(
        f"coverage: {cover.percent:.0f}% (rules {_ratio(cover.rules, cover.missed_rules)}, "
        f"regions {_ratio(cover.regions, cover.missed_regions)}, "
        f"notice texts {_ratio(cover.texts, cover.missed_texts)})"
    )
    for kind, missed in (
        ("rule", cover.missed_rules),
        ("region", cover.missed_regions),
        ("notice text", cover.missed_texts),
    ):
        for item in missed:
            click.echo(f"  not exercised: {kind} {item}")
    failed = sum(not r.passed for r in results)
    too_low = min_coverage is not None and cover.percent < min_coverage
    if too_low:
        click.echo(f"coverage {cover.percent:.1f}% is below --min-coverage {min_coverage:g}%")
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or too_low else 0)


def _ratio(every: tuple[str, ...], missed: tuple[str, ...]) -> str:
    return f"{len(every) - len(missed)}/{len(every)}"


def _print_failure(result: CaseResult) -> None:
    click.echo(f"FAILED {result.case.file}:{result.case.line}: {result.case.case.name}")
    for failure in result.failures:
        click.echo(f"    {failure}")
    if result.decision is not None:
        click.echo(f"    rules fired: {', '.join(result.decision.rules) or 'none'}")
        for match in result.decision.matches:
            click.echo(f"      {match.rule}: {match.describe()}")


def _needs_geo(engine: Engine) -> bool:
    return any(case.case.reader.ip is not None for case in engine.ruleset.cases)


def _geo_locate() -> Locate:
    settings = common.settings()
    try:
        database = geoip.GeoDatabase.open(
            settings.geoip_db or geoip.embedded_database_path(), locate_non_global=settings.locate_private
        )
    except geoip.GeoDatabaseError as error:
        raise click.ClickException(f"{error}; cases with ip: need it (HERALD_GEOIP_DB)") from None

    def locate(ip: str) -> Location:
        return database.lookup(parse_ip(ip))

    return locate


rules.add_command(diff)
