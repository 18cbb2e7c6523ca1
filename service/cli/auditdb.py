"""`herald audit ship` and `herald audit db init|upgrade|prune`: the central PostgreSQL audit store."""

from __future__ import annotations

import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
import psycopg

from service.audit.chain import Chain
from service.audit.ship import CHUNK, ShipError, Shipped, Shipper, follow
from service.audit.store import LATEST, StoreError, connect, prune, require_current, upgrade, version
from service.cli import common

DB = click.option(
    "--db",
    "db_url",
    envvar="HERALD_AUDIT_DB",
    required=True,
    help="PostgreSQL URL of the audit store, e.g. postgresql://herald@db/audit [HERALD_AUDIT_DB].",
)


@click.command("ship")
@DB
@click.option(
    "-d",
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="This node's log directory [default: HERALD_AUDIT_DIR].",
)
@click.option("--key", envvar="HERALD_AUDIT_KEY", help="HMAC key the log is written with [HERALD_AUDIT_KEY].")
@click.option(
    "--follow",
    "follow_mode",
    is_flag=True,
    help="Keep shipping what the writers append (a service runs this).",
)
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Seconds between rounds with --follow."
)
@click.option(
    "--batch-bytes",
    type=click.IntRange(min=4096),
    default=CHUNK,
    show_default=True,
    help="Bytes of a file shipped per transaction.",
)
def ship_command(
    db_url: str, directory: Path | None, key: str | None, follow_mode: bool, interval: float, batch_bytes: int
) -> None:
    """Verify this node's audit files and copy every record not yet shipped into the database.

    Exactly once, whatever happens: run it twice, kill it, run it on two machines at once. A record
    whose chain does not verify is not shipped: the run stops there, naming file:seq, and exits 1.
    Only complete lines are shipped; rulesets and checkpoint logs of the directory go along."""
    folder = directory or common.settings().audit_dir
    if not folder.is_dir():
        raise click.ClickException(f"no such log directory: {folder}")
    stopping: list[int] = []
    if follow_mode:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, _: stopping.append(number))
    try:
        with connect(db_url) as conn:
            require_current(conn)
            shipper = Shipper(conn, folder, Chain(key.encode() if key else None), batch_bytes)
            if follow_mode:
                click.echo(f"shipping {folder} every {interval:g} s (stop with SIGTERM)", err=True)
                follow(shipper, interval, lambda: bool(stopping))
                return
            _report(shipper.ship())
    except ShipError as error:
        click.echo(f"not shipped: {error}", err=True)
        sys.exit(1)
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    except psycopg.Error as error:  # the database went away: exit 1 (systemd starts it again)
        raise click.ClickException(f"audit database: {str(error).strip()}") from None


def _report(shipped: Shipped) -> None:
    click.echo(
        f"shipped {shipped.records} records from {shipped.files} files, {shipped.rulesets} rulesets, "
        f"{shipped.checkpoints} checkpoint lines"
    )


@click.group("db")
def db() -> None:
    """Create, upgrade and prune the PostgreSQL audit store."""


@db.command("init")
@DB
def init_command(db_url: str) -> None:
    """Create Herald's tables in an empty database (does nothing if they are there)."""
    with _connection(db_url) as conn:
        before = version(conn)
        applied = upgrade(conn)
    if before:
        click.echo(f"already initialised (version {before}); applied {len(applied)} migrations")
    else:
        click.echo(f"initialised at version {LATEST}")


@db.command("upgrade")
@DB
def upgrade_command(db_url: str) -> None:
    """Apply the schema migrations the database lacks (plain SQL files of the package, in order)."""
    with _connection(db_url) as conn:
        before = version(conn)
        applied = upgrade(conn)
    for migration in applied:
        click.echo(f"applied {migration.name}")
    click.echo(f"at version {LATEST}" + ("" if applied else f" (was {before}; nothing to do)"))


@db.command("prune")
@DB
@click.option(
    "--before",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Drop every month that ends on or before this date (UTC), e.g. 2025-01-01.",
)
def prune_command(db_url: str, before: Any) -> None:
    """Drop whole months of decisions (and the events of their files), keeping each removed file's
    chain head in a `pruned` row, so `verify --db` still checks the links to the files kept."""
    cut: date = before.date()
    with _connection(db_url) as conn:
        require_current(conn)
        try:
            result = prune(conn, cut)
        except StoreError as error:
            raise click.ClickException(f"nothing pruned: {error}") from None
    if not result.partitions:
        click.echo(f"nothing to prune before {cut}")
        return
    click.echo(f"dropped {', '.join(result.partitions)}; {len(result.heads)} files' chain heads kept")


def _connection(db_url: str) -> Any:
    try:
        return connect(db_url)
    except StoreError as error:
        raise click.ClickException(str(error)) from None
