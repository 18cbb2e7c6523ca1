"""Builds small MaxMind City databases for tests, so no test depends on the age of real data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

BUILD_EPOCH = 1_577_145_600  # 2019-12-24T00:00:00Z; pinned so builds are byte-identical
CityRecord = dict[str, Any]


def city(country: str | None, *subdivisions: str, continent: str = "EU", **traits: bool) -> CityRecord:
    """A record shaped like MaxMind's City records; subdivision codes are the part after the dash."""
    record: CityRecord = {"continent": {"code": continent}}
    if country is not None:
        record["country"] = {"iso_code": country, "names": {"en": country}}
    if subdivisions:
        record["subdivisions"] = [{"iso_code": code, "names": {"en": code}} for code in subdivisions]
    if traits:
        record["traits"] = dict(traits)
    return record


# Networks with the shape of the 2019 GeoLite2 data (see /work/shared/geo.md). The documentation
# ranges at the end are only located by a database opened with locate_non_global=True.
DEFAULT_NETWORKS: tuple[tuple[str, CityRecord], ...] = (
    ("77.88.8.0/24", city("RU")),  # Russia, no subdivision
    ("2a02:6b8::/32", city("RU", "MOW")),  # RU-MOW
    ("5.59.104.0/24", city("UA", "43")),  # UA-43 Crimea
    ("5.149.208.0/24", city("UA", "40")),  # UA-40 Sevastopol
    ("93.72.0.0/24", city("UA", "30")),  # UA-30 Kyiv
    ("8.8.8.0/24", city("US", continent="NA")),  # United States, no subdivision
    ("2001:4860::/32", city("US", continent="NA")),
    ("81.2.69.0/24", city("GB", "ENG", "WBK")),  # two levels: GB-ENG is the first
    ("41.0.0.0/24", city("ZA", "GT", continent="AF")),  # ZA-GT is no longer ISO 3166-2: ZA-GP now
    ("41.0.1.0/24", city("ZA", "QQ", continent="AF")),  # ZA-QQ never was, and is no alias
    ("46.99.0.0/24", city("XK")),  # Kosovo, user-assigned code
    ("185.220.101.0/24", city(None, is_anonymous_proxy=True)),  # continent only
    ("196.201.128.0/24", city(None, continent="AF", is_satellite_provider=True)),
    ("104.16.0.0/24", city("NL", is_anonymous_vpn=True)),  # a country and an anonymizer
    ("192.0.2.0/24", city("RU")),
    ("198.51.100.0/24", city("UA", "43")),
    ("203.0.113.0/24", city("US", continent="NA")),
    ("2001:db8::/32", city("UA", "40")),
)


class _PinnedWriter(MMDBWriter):
    def __init__(self, build_epoch: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.build_epoch = build_epoch

    def _build_meta(self) -> dict[str, Any]:
        return super()._build_meta() | {"build_epoch": self.build_epoch}


def build_city_db(
    path: Path,
    networks: tuple[tuple[str, CityRecord], ...] | list[tuple[str, CityRecord]] = DEFAULT_NETWORKS,
    *,
    database_type: str = "GeoLite2-City",
    build_epoch: int = BUILD_EPOCH,
) -> Path:
    """Write `networks` (CIDR, record) as an IPv4 + IPv6 database at `path`, and return `path`."""
    writer = _PinnedWriter(
        build_epoch,
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description="Herald test database",
    )
    for cidr, record in networks:
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path
