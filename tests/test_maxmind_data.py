"""Herald against data nobody here wrote: MaxMind's own test databases and their source JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path
from typing import Any

import pycountry
import pytest

from service.geo import GeoDatabase, GeoDatabaseError
from service.geo_watch import DatabaseWatch
from service.network import IPAddress
from tests.maxmind_data import data_dir

CITY_LIKE = [
    "GeoIP2-City-Test",
    "GeoLite2-City-Test",
    "GeoIP2-Enterprise-Test",
    "GeoIP2-Precision-Enterprise-Test",
]
# Codes ISO 3166-2 has replaced since MaxMind's test data took them, written out here (not read
# from Herald's alias table) so that the table itself is under test.
RENAMED = {"CN-22": "CN-JL"}
ANONYMOUS_KINDS = {
    "is_anonymous_vpn": "vpn",
    "is_public_proxy": "public_proxy",
    "is_residential_proxy": "residential_proxy",
    "is_tor_exit_node": "tor",
    "is_hosting_provider": "hosting_provider",
}


def networks(name: str) -> list[tuple[IPAddress, dict[str, Any]]]:
    """(first address, record) of every network in a source JSON; IPv4 given as ::a.b.c.d."""
    found = []
    for entry in json.loads((data_dir() / "source-data" / f"{name}.json").read_text()):
        for cidr, record in entry.items():
            address: IPAddress = ip_network(cidr, strict=False).network_address
            if isinstance(address, IPv6Address) and int(address) < 2**32:
                address = IPv4Address(int(address))
            found.append((address, record))
    return found


def database(name: str) -> Path:
    return data_dir() / "test-data" / f"{name}.mmdb"


def expected_codes(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """What the JSON says, read by pycountry directly: ISO codes, or the country alone."""
    country = record.get("country", {}).get("iso_code")
    if country is not None and pycountry.countries.get(alpha_2=country) is None and country != "XK":
        return None, None
    subdivisions = record.get("subdivisions") or [{}]
    part = subdivisions[0].get("iso_code")
    if country is None or part is None:
        return country, None
    code = f"{country}-{part}"
    if pycountry.subdivisions.get(code=code) is not None:
        return country, code
    return country, RENAMED.get(code)


@pytest.mark.parametrize("name", CITY_LIKE)
def test_every_network_gives_the_country_and_subdivision_the_json_gives(name: str) -> None:
    cases = networks(name)
    assert len(cases) > 30
    with GeoDatabase.open(database(name), locate_non_global=True) as db:
        got = {str(ip): (loc.country, loc.subdivision) for ip, _ in cases for loc in [db.lookup(ip)]}
        assert db.stale_subdivisions == 0
    want = {str(ip): expected_codes(record) for ip, record in cases}
    assert got == want
    assert any(sub and sub.startswith("GB-") for _, sub in got.values())  # not vacuous


def test_the_renamed_code_in_the_test_data_is_read_through_the_alias_table() -> None:
    with GeoDatabase.open(database("GeoIP2-City-Test")) as db:
        location = db.lookup(IPv4Address("175.16.199.1"))
    assert (location.country, location.subdivision) == ("CN", "CN-JL")
    assert [s.note for s in location.said] == ["vendor code CN-22 read as CN-JL"]


def test_every_anonymous_network_is_anonymized_with_its_kinds() -> None:
    cases = networks("GeoIP2-Anonymous-IP-Test")
    with GeoDatabase.open(
        database("GeoIP2-Anonymous-IP-Test"), kind="anonymous-ip", locate_non_global=True
    ) as db:
        for ip, record in cases:
            location = db.lookup(ip)
            kinds = tuple(kind for trait, kind in ANONYMOUS_KINDS.items() if record.get(trait))
            assert (location.anonymized, location.anonymizers) == (True, kinds), ip


def test_81_2_69_142_is_a_tor_exit_among_others() -> None:
    with GeoDatabase.open(database("GeoIP2-Anonymous-IP-Test"), kind="anonymous-ip") as db:
        location = db.lookup(IPv4Address("81.2.69.142"))
        assert location.anonymized and "tor" in location.anonymizers
        assert db.lookup(IPv4Address("8.8.8.8")).anonymized is False  # not listed: nothing said
        assert db.data == f"GeoIP2-Anonymous-IP {db.build_date:%Y-%m-%d}"


@pytest.mark.parametrize(
    ("name", "kind", "needed"),
    [
        ("GeoIP2-Country-Test", "city", "a City database"),
        ("GeoIP2-Anonymous-IP-Test", "city", "a City database"),
        ("GeoIP2-City-Test", "anonymous-ip", "an Anonymous IP database"),
        ("GeoLite2-ASN-Test", "anonymous-ip", "an Anonymous IP database"),
    ],
)
def test_a_database_of_another_kind_is_refused_by_name(name: str, kind: str, needed: str) -> None:
    with pytest.raises(GeoDatabaseError, match=needed) as raised:
        GeoDatabase.open(database(name), kind=kind)  # type: ignore[arg-type]
    assert str(database(name)) in str(raised.value)


@pytest.mark.parametrize(
    "name",
    [
        "GeoIP2-City-Test-Invalid-Node-Count",
        "MaxMind-DB-test-broken-search-tree-24",
    ],
)
def test_maxminds_broken_databases_are_refused_as_replacements(name: str, tmp_path: Path) -> None:
    watched = tmp_path / "City.mmdb"
    watched.write_bytes(database("GeoIP2-City-Test").read_bytes())
    watch = DatabaseWatch("city", watched)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert watch.check(now) and watch.refused is None
    served = watch.served
    replacement = tmp_path / "City.mmdb.new"
    replacement.write_bytes(database(name).read_bytes())
    replacement.replace(watched)  # as geoipupdate does
    assert watch.check(now)
    assert watch.served == served  # the old data keeps serving
    assert watch.refused is not None and str(watched) in watch.refused["error"]
    assert watch.refusals == 1
