from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from service.geo import (
    ATTRIBUTION,
    GeoDatabase,
    GeoDatabaseError,
    embedded_database_path,
    fast_is_locatable,
    locatable_table,
    snapshot,
)
from service.inputs import UNKNOWN, Location
from service.network import is_locatable, parse_ip
from tests.mmdb import BUILD_EPOCH, DEFAULT_NETWORKS, build_city_db, city


@pytest.fixture(scope="module")
def city_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_city_db(tmp_path_factory.mktemp("geo") / "city.mmdb")


@pytest.fixture
def db(city_db_path: Path) -> Iterator[GeoDatabase]:
    with GeoDatabase.open(city_db_path) as database:
        yield database


def geoip(country: str, subdivision: str | None = None, anonymized: bool = False) -> Location:
    return Location(country, subdivision, "geoip", anonymized)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("77.88.8.8", geoip("RU")),
        ("2a02:6b8::feed:0ff", geoip("RU", "RU-MOW")),
        ("::ffff:77.88.8.8", geoip("RU")),  # IPv4-mapped, parsed to IPv4
        ("5.59.104.1", geoip("UA", "UA-43")),
        ("5.149.208.1", geoip("UA", "UA-40")),
        ("93.72.0.1", geoip("UA", "UA-30")),
        ("8.8.8.8", geoip("US")),
        ("2001:4860:4860::8888", geoip("US")),
        ("81.2.69.142", geoip("GB", "GB-ENG")),  # first-level subdivision only
        ("46.99.0.1", geoip("XK")),
        ("41.0.0.1", geoip("ZA", "ZA-GP")),  # ZA-GT, renamed ZA-GP: read through the alias table
        ("41.0.1.1", geoip("ZA")),  # ZA-QQ, no such code: country only
        ("104.16.0.1", Location("NL", None, "geoip", True, ("vpn",))),
        ("185.220.101.1", Location(anonymized=True, anonymizers=("anonymous_proxy",))),  # no country
        ("196.201.128.1", UNKNOWN),  # a satellite provider carries its reader's own traffic: no anonymizer
        ("1.1.1.1", UNKNOWN),  # not in the database
        ("2a00::1", UNKNOWN),
        ("10.0.0.1", UNKNOWN),
        ("127.0.0.1", UNKNOWN),
        ("::1", UNKNOWN),
        ("::ffff:10.0.0.1", UNKNOWN),
        ("192.0.2.1", UNKNOWN),  # documentation ranges are not global
        ("2001:db8::1", UNKNOWN),
    ],
)
def test_lookup(db: GeoDatabase, address: str, expected: Location) -> None:
    assert db.lookup(parse_ip(address)) == expected


def test_lookup_of_an_unparsed_mapped_address_uses_the_ipv4_record(db: GeoDatabase) -> None:
    assert db.lookup(ip_address("::ffff:5.59.104.1")) == geoip("UA", "UA-43")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("192.0.2.1", geoip("RU")),
        ("198.51.100.1", geoip("UA", "UA-43")),
        ("203.0.113.1", geoip("US")),
        ("2001:db8::1", geoip("UA", "UA-40")),
        ("10.0.0.1", UNKNOWN),  # looked up, not found
        ("77.88.8.8", geoip("RU")),
    ],
)
def test_locate_non_global(city_db_path: Path, address: str, expected: Location) -> None:
    with GeoDatabase.open(city_db_path, locate_non_global=True) as database:
        assert database.lookup(parse_ip(address)) == expected


def test_stale_subdivisions_are_counted_per_lookup(db: GeoDatabase) -> None:
    db.lookup(parse_ip("77.88.8.8"))
    db.lookup(parse_ip("5.59.104.1"))
    assert db.stale_subdivisions == 0
    db.lookup(parse_ip("41.0.0.1"))  # an alias is no stale code
    assert db.stale_subdivisions == 0
    db.lookup(parse_ip("41.0.1.1"))
    db.lookup(parse_ip("41.0.1.2"))  # from the cache, still counted
    assert db.stale_subdivisions == 2


@pytest.mark.parametrize("cache_size", [0, 1, 2, 65_536])
def test_cache_gives_the_answers_of_the_database(city_db_path: Path, cache_size: int) -> None:
    addresses = [
        "5.59.104.1", "5.59.104.200", "77.88.8.8", "5.59.104.1", "1.1.1.1", "1.1.1.2",
        "2a02:6b8::1", "2a02:6b8:ffff::1", "93.72.0.1", "5.59.104.7", "77.88.8.1", "1.1.1.1",
    ]  # fmt: skip
    with GeoDatabase.open(city_db_path, cache_size=0) as uncached:
        expected = [uncached.lookup(parse_ip(a)) for a in addresses]
    with GeoDatabase.open(city_db_path, cache_size=cache_size) as database:
        assert [database.lookup(parse_ip(a)) for a in addresses] == expected
        assert [database.lookup(parse_ip(a)) for a in reversed(addresses)] == expected[::-1]


def test_a_cached_network_is_answered_without_the_database(db: GeoDatabase) -> None:
    assert db.lookup(parse_ip("5.59.104.1")) == geoip("UA", "UA-43")
    db._reader.close()  # any lookup that reached the database would now fail
    assert db.lookup(parse_ip("5.59.104.254")) == geoip("UA", "UA-43")
    assert db.lookup(parse_ip("77.88.8.8")) == UNKNOWN and db.errors == 1  # reached the closed database


def test_cache_with_nested_networks(tmp_path: Path) -> None:
    # A /24 inside a /16 splits the /16 into networks of many prefix lengths.
    networks = [("93.72.0.0/16", city("UA")), ("93.72.5.0/24", city("UA", "30"))]
    path = build_city_db(tmp_path / "nested.mmdb", networks)
    addresses = ["93.72.200.1", "93.72.5.1", "93.72.4.1", "93.72.5.255", "93.72.6.1", "93.72.0.1"]
    with GeoDatabase.open(path) as database:
        found = [database.lookup(parse_ip(a)) for a in addresses + addresses]
    kyiv, ukraine = geoip("UA", "UA-30"), geoip("UA")
    assert found == [ukraine, kyiv, ukraine, kyiv, ukraine, ukraine] * 2


def test_info(db: GeoDatabase, city_db_path: Path) -> None:
    assert db.path == city_db_path
    assert db.database_type == "GeoLite2-City"
    assert db.build_date == datetime(2019, 12, 24, tzinfo=UTC)
    assert db.build_date.timestamp() == BUILD_EPOCH
    assert db.info() == {
        "path": str(city_db_path),
        "type": "GeoLite2-City",
        "build_date": "2019-12-24T00:00:00+00:00",
    }


def test_builds_are_byte_identical(tmp_path: Path) -> None:
    first = build_city_db(tmp_path / "a.mmdb").read_bytes()
    assert build_city_db(tmp_path / "b.mmdb", DEFAULT_NETWORKS).read_bytes() == first


def test_wrong_database_type(tmp_path: Path) -> None:
    path = build_city_db(tmp_path / "country.mmdb", database_type="GeoLite2-Country")
    with pytest.raises(GeoDatabaseError, match="'GeoLite2-Country'.*City database"):
        GeoDatabase.open(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GeoDatabaseError, match="missing.mmdb does not exist"):
        GeoDatabase.open(tmp_path / "missing.mmdb")


@pytest.mark.parametrize("content", [b"", b"not a database", b"\x00" * 4096])
def test_not_a_maxmind_db(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.mmdb"
    path.write_bytes(content)
    with pytest.raises(GeoDatabaseError, match="bad.mmdb is not a MaxMind DB file"):
        GeoDatabase.open(path)


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(GeoDatabaseError, match="GeoIP database"):
        GeoDatabase.open(tmp_path)


def test_embedded_database() -> None:
    path = embedded_database_path()
    assert path.is_file()
    with GeoDatabase.open(path) as database:
        assert "City" in database.database_type
        assert database.lookup(parse_ip("77.88.8.8")).country == "RU"


def test_attribution_names_maxmind() -> None:
    assert "GeoLite2" in ATTRIBUTION and "https://www.maxmind.com" in ATTRIBUTION


# ---- the fast paths agree with the plain ones ------------------------------------------------


@pytest.mark.parametrize("version", [4, 6])
def test_the_locatable_table_agrees_with_is_locatable(version: int) -> None:
    """At every interval's first and last address, and at random ones, the table says what
    `is_locatable` says (the table is built by asking it once per interval)."""
    starts, _ = locatable_table(version)
    top = 2**32 if version == 4 else 2**128
    ends = [s - 1 for s in starts[1:]] + [top - 1]
    rng = random.Random(version)
    addresses = [*starts, *ends, *(rng.randrange(top) for _ in range(5000))]
    cls = IPv4Address if version == 4 else IPv6Address
    for value in addresses:
        ip = cls(value)
        assert fast_is_locatable(ip) == is_locatable(ip), ip


def test_a_network_shorter_than_its_bucket_is_cached_in_each_bucket_met(tmp_path: Path) -> None:
    networks = [("10.0.0.0/8", city("RU")), ("93.72.0.0/12", city("UA"))]
    path = build_city_db(tmp_path / "wide.mmdb", networks)
    with GeoDatabase.open(path, locate_non_global=True) as database:
        for a in ("93.72.1.1", "93.73.1.1", "93.79.255.255", "10.200.0.1"):
            database.lookup(parse_ip(a))
        database._reader.close()  # from here on, only cached answers can be given
        assert database.lookup(parse_ip("93.72.200.1")) == geoip("UA")  # same /16 bucket
        assert database.lookup(parse_ip("93.73.0.1")) == geoip("UA")
        assert database.lookup(parse_ip("10.200.99.1")) == geoip("RU")
        assert database.lookup(parse_ip("93.74.0.1")) == UNKNOWN  # another /16 of the /12: not met yet
        assert database.errors == 1  # so it reached the closed database


def test_a_bucket_keeps_its_latest_networks(tmp_path: Path) -> None:
    networks = [(f"93.72.{i}.0/24", city("UA", "30")) for i in range(12)]
    path = build_city_db(tmp_path / "many.mmdb", networks)
    with GeoDatabase.open(path) as database:
        for i in range(12):
            database.lookup(parse_ip(f"93.72.{i}.1"))
        bucket = database._cache[4][int(parse_ip("93.72.0.0")) >> 16]
        assert len(bucket) == 8
        assert [entry[1] & 0xFF for entry in bucket] == list(range(11, 3, -1))
        assert all(database.lookup(parse_ip(f"93.72.{i}.9")) == geoip("UA", "UA-30") for i in range(12))


def test_a_database_corrupted_under_the_reader_answers_unknown(tmp_path: Path) -> None:
    path = build_city_db(tmp_path / "City.mmdb")
    database = GeoDatabase.open(path, cache_size=0)
    assert database.lookup(parse_ip("77.88.8.8")).country == "RU"
    with path.open("r+b") as file:  # the same file the reader maps, overwritten in place
        file.write(random.Random(3).randbytes(path.stat().st_size // 2))
    answers = [database.lookup(IPv4Address(random.Random(i).getrandbits(32))) for i in range(200)]
    assert database.errors > 0 and all(a == UNKNOWN or a.source == "geoip" for a in answers)
    assert database.info()["error"].startswith(f"{database.errors} lookups failed; last: ")


def test_a_snapshot_is_sealed_and_outlives_the_file(tmp_path: Path) -> None:
    path = build_city_db(tmp_path / "City.mmdb")
    copy = snapshot(path)
    database = GeoDatabase.open(copy, source=path)
    path.write_bytes(b"\0" * 10)  # replaced, truncated...
    path.unlink()  # ...and removed: the snapshot does not change
    assert database.lookup(parse_ip("5.59.104.1")) == geoip("UA", "UA-43")
    assert database.info()["path"] == str(path)
    with pytest.raises(OSError), copy.open("r+b") as file:
        file.write(b"x")
