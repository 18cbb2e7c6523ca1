"""`herald keys add|list|remove`: API keys, stored as hashes in HERALD_KEYS_FILE."""

from __future__ import annotations

from pathlib import Path

import click

from service.cli import common
from service.keys import ROLES, KeysError, add_key, read_keys, write_keys


def _file(path: Path | None) -> Path:
    chosen = path or common.settings().keys_file
    if chosen is None:
        raise click.ClickException("give --file or set HERALD_KEYS_FILE")
    return chosen


@click.group()
def keys() -> None:
    """API keys for the audit, admin and (optionally) decision endpoints."""


_FILE = click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=Path), help="Keys file [HERALD_KEYS_FILE]."
)


@keys.command("add")
@click.argument("name")
@click.option(
    "--role", "roles", multiple=True, required=True, type=click.Choice(ROLES), help="Repeat for several."
)
@click.option("--replace", is_flag=True, help="Revoke NAME's existing key and make a new one.")
@_FILE
def add(name: str, roles: tuple[str, ...], replace: bool, path: Path | None) -> None:
    """Create a key for NAME; print it once. Only its hash is stored. NAME must be new unless --replace."""
    target = _file(path)
    try:
        key = add_key(target, name, set(roles), replace=replace)
    except KeysError as error:
        raise click.ClickException(str(error)) from None
    click.echo(key)
    click.echo(
        f"stored the hash of {name}'s key ({', '.join(sorted(roles))}) in {target}; "
        "this is the only time the key is shown",
        err=True,
    )


@keys.command("list")
@_FILE
def list_keys(path: Path | None) -> None:
    """Names and roles of the stored keys (never the keys)."""
    try:
        for key in read_keys(_file(path)):
            click.echo(f"{key.name}\t{','.join(sorted(key.roles))}")
    except KeysError as error:
        raise click.ClickException(str(error)) from None


@keys.command("remove")
@click.argument("name")
@_FILE
def remove(name: str, path: Path | None) -> None:
    """Revoke NAME's key (workers notice within a second)."""
    target = _file(path)
    try:
        stored = read_keys(target)
        if not any(k.name == name for k in stored):
            raise click.ClickException(f"no key named {name!r} in {target}")
        write_keys(target, [k for k in stored if k.name != name])
    except KeysError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"removed {name}")
