"""`herald serve` and `herald settings`."""

from __future__ import annotations

from pathlib import Path

import click

from service.cli import common
from service.config import describe


@click.command()
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
    from service.web.reload import fingerprint

    settings = common.settings(rules_dir=rules_dir)
    files = fingerprint(settings.rules_dir)  # before loading: a change made meanwhile is seen later
    ruleset = common.ruleset(settings.rules_dir, positions=False)  # fail here, once, before any worker starts
    click.echo(f"herald: rules {settings.rules_dir} {ruleset.hash}", err=True)
    run(settings, ruleset, files, host, port, workers or default_workers(), threads)


@click.command("settings")
def settings_command() -> None:
    """List every setting with its default and help."""
    for name, default, help_text in describe():
        click.echo(f"{name}\n    {help_text}" + (f" Default: {default}" if default else ""))
