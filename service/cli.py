"""The `herald` command: serve, check and test rules, look up an address. User errors exit
non-zero with one clean message; only bugs show a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from service import geo
from service.cases import run_cases
from service.config import Settings, SettingsError, describe, load_settings
from service.engine import Engine
from service.loader import load_ruleset
from service.network import parse_ip
from service.problems import RulesetInvalid
from service.ruleset import Ruleset


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as error:
        raise click.ClickException(f"invalid settings:\n{error}") from None


def _ruleset(directory: Path) -> Ruleset:
    try:
        return load_ruleset(directory)
    except RulesetInvalid as error:
        _fail_rules(error)


def _fail_rules(error: RulesetInvalid) -> NoReturn:
    for problem in error.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{error}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Herald decides which legal notices a reader must see for an article, given where the reader is."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes [default: cores].")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads a worker.")
@click.option(
    "--rules", "rules_dir", type=click.Path(path_type=Path), help="Rule directory [HERALD_RULES_DIR]."
)
def serve(host: str, port: int, workers: int | None, threads: int, rules_dir: Path | None) -> None:
    """Serve the HTTP API with gunicorn on the rules and the GeoIP database."""
    from service.serve import default_workers  # gunicorn only where it is needed
    from service.serve import serve as run

    settings = _settings(rules_dir=rules_dir)
    ruleset = _ruleset(settings.rules_dir)  # fail here, once, before any worker starts
    click.echo(f"herald: rules {settings.rules_dir} {ruleset.hash}", err=True)
    run(settings, host, port, workers or default_workers(), threads)


@main.command("settings")
def settings_command() -> None:
    """List every setting with its default and help."""
    for name, default, help_text in describe():
        click.echo(f"{name}\n    {help_text}" + (f" Default: {default}" if default else ""))


@main.group()
def rules() -> None:
    """Check and test rule files."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def rules_check(directory: Path | None) -> None:
    """Load the rules as the service does and report every problem at file:line:column."""
    directory = directory or _settings().rules_dir
    ruleset = _ruleset(directory)
    click.echo(
        f"{directory}: ok, {len(ruleset.regions)} regions, {len(ruleset.notices)} notices, "
        f"{len(ruleset.rules)} rules, {len(ruleset.cases)} cases; {ruleset.hash}"
    )


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def rules_test(directory: Path | None) -> None:
    """Run the editors' test cases; exit 1 on any failure."""
    directory = directory or _settings().rules_dir
    results = run_cases(Engine(_ruleset(directory)))
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


@main.group("geo")
def geo_group() -> None:
    """The GeoIP database."""


@geo_group.command("lookup")
@click.argument("address")
def geo_lookup(address: str) -> None:
    """Where ADDRESS is, according to the configured GeoIP database."""
    settings = _settings()
    try:
        ip = parse_ip(address)
        database = geo.GeoDatabase.open(settings.geoip_db or geo.embedded_database_path())
    except (ValueError, geo.GeoDatabaseError) as error:
        raise click.ClickException(str(error)) from None
    location = database.lookup(ip)
    info = database.info()
    click.echo(f"address:     {ip}")
    click.echo(f"country:     {location.country or '-'}")
    click.echo(f"subdivision: {location.subdivision or '-'}")
    click.echo(f"source:      {location.source}")
    click.echo(f"anonymized:  {'yes' if location.anonymized else 'no'}")
    click.echo(f"database:    {info['type']} built {info['build_date'][:10]} ({info['path']})")
    if settings.geoip_db is None:
        click.echo(geo.ATTRIBUTION)
