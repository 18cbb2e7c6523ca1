"""The `herald` command: one click group; each sub-command group lives in its own module."""

from __future__ import annotations

import click

from service.cli import audit, explain_command, geo, keys, rules, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Herald decides which legal notices a reader must see for an article, given where the reader is."""


for command in (
    serve.serve,
    serve.settings_command,
    rules.rules,
    explain_command.explain_command,
    geo.geo,
    audit.audit,
    keys.keys,
):
    main.add_command(command)
