"""`herald geo lookup`: where an address is, according to the configured database."""

from __future__ import annotations

import click

from service import geo as geoip
from service.cli import common
from service.location import merge
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
        city = geoip.GeoDatabase.open(settings.geoip_db or geoip.embedded_database_path())
        anonymous = (
            geoip.GeoDatabase.open(settings.anonymous_ip_db, kind="anonymous-ip")
            if settings.anonymous_ip_db is not None
            else None
        )
    except (ValueError, geoip.GeoDatabaseError) as error:
        raise click.ClickException(str(error)) from None
    location = merge(None, city.said(ip), anonymous.said(ip) if anonymous is not None else None)
    click.echo(f"address:     {ip}")
    click.echo(f"country:     {location.country or '-'}")
    click.echo(f"subdivision: {location.subdivision or '-'}")
    click.echo(f"source:      {location.source}")
    kinds = f" ({', '.join(location.anonymizers)})" if location.anonymizers else ""
    click.echo(f"anonymized:  {'yes' if location.anonymized else 'no'}{kinds}")
    for said in location.said:
        if said.note:
            click.echo(f"note:        {said.source}: {said.note}")
    for database in (city, anonymous):
        if database is not None:
            click.echo(f"database:    {database.data} ({database.path})")
    if settings.geoip_db is None:
        click.echo(geoip.ATTRIBUTION)
        click.echo("warning:     the embedded data is from 2019, before 2022: demo data only")
