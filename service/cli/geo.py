"""`herald geo lookup`: where an address is, according to the configured database."""

from __future__ import annotations

import click

from service import geo as geoip
from service.cli import common
from service.network import parse_ip


@click.group()
def geo() -> None:
    """The GeoIP database."""


@geo.command("lookup")
@click.argument("address")
def lookup(address: str) -> None:
    """Where ADDRESS is, according to the configured GeoIP database."""
    settings = common.settings()
    try:
        ip = parse_ip(address)
        database = geoip.GeoDatabase.open(settings.geoip_db or geoip.embedded_database_path())
    except (ValueError, geoip.GeoDatabaseError) as error:
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
        click.echo(geoip.ATTRIBUTION)
