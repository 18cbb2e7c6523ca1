"""IP address helpers: strict parsing, which addresses can be located, and the reader's address."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network

_IPV4_MAPPED = IPv6Network("::ffff:0:0/96")
_SEPARATORS = re.compile(r"[,\s]+")


def _shown(text: str) -> str:
    """`text` quoted for an error message, cut short so a hostile header cannot flood a log."""
    return repr(text if len(text) <= 64 else text[:61] + "...")


def parse_ip(text: str) -> IPAddress:
    """One IP address, strictly: no zone id, port or brackets; `::ffff:a.b.c.d` gives the IPv4."""
    stripped = text.strip()
    try:
        if "%" in stripped:
            raise ValueError("zone ids are not accepted")
        ip = ipaddress.ip_address(stripped)
    except ValueError:
        raise ValueError(f"{_shown(stripped)} is not an IP address") from None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


# Readers repeat, and a request's address is parsed twice (validated, then located): remember
# recent answers. Errors are not cached; they are rare and cheap to find again.
parse_ip_cached = lru_cache(maxsize=16_384)(parse_ip)


def is_locatable(ip: IPAddress) -> bool:
    """True only for global unicast addresses: the only ones a GeoIP database can place."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # Python 3.11 calls multicast and some reserved IPv6 ranges global: rule them out explicitly.
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def _parse_network(entry: str) -> IPNetwork:
    if "%" in entry:
        raise ValueError(f"{_shown(entry)} is not a network: zone ids are not accepted")
    try:
        network = ipaddress.ip_network(entry)  # strict: host bits set is an error, not a guess
    except ValueError as error:
        raise ValueError(f"{_shown(entry)} is not a network: {error}") from None
    if isinstance(network, IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        # parse_ip turns mapped addresses into IPv4 ones, so the network must be IPv4 to match.
        first = network.network_address.ipv4_mapped
        assert first is not None
        return IPv4Network((first, network.prefixlen - 96))
    return network


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """CIDRs separated by commas or whitespace; a bare address is a /32 or /128 network."""
    return tuple(_parse_network(entry) for entry in _SEPARATORS.split(text.strip()) if entry)


def _trusted(ip: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(ip in network for network in trusted)


def is_trusted(peer: str, trusted: Sequence[IPNetwork]) -> bool:
    """Whether the direct peer (as the server saw it) is one of the trusted proxies."""
    try:
        return _trusted(parse_ip_cached(peer), trusted)
    except ValueError:
        return False


def forwarded_for(header: str) -> list[str]:
    """The `for=` addresses of a `Forwarded` header (RFC 7239), left to right, as address texts:
    quotes, IPv6 brackets and ports removed. An element without `for=` gives "" (not an address)."""
    hops = []
    for element in header.split(","):
        value = ""
        for pair in element.split(";"):
            name, _, raw = pair.strip().partition("=")
            if name.strip().lower() == "for":
                value = raw.strip().strip('"')
                if value.startswith("["):  # "[2001:db8::1]:4711"
                    value = value[1 : value.find("]")] if "]" in value else ""
                elif value.count(":") == 1:  # "192.0.2.60:4711"
                    value = value.partition(":")[0]
        hops.append(value)
    return hops


def client_address(
    peer: str | None,
    x_forwarded_for: str | None,
    trusted: Sequence[IPNetwork],
    forwarded: str | None = None,
) -> IPAddress | None:
    """The reader's address: the peer, unless it is a trusted proxy, then from the proxy headers:
    `X-Forwarded-For` when present, else `Forwarded`. (Proxies write X-Forwarded-For and pass a
    client's own `Forwarded` through, so preferring `Forwarded` would let readers choose.)

    The hops are walked from the right (the one our proxy added) past trusted proxies to the
    first untrusted hop. An entry that does not parse (`unknown`, an obfuscated name, garbage)
    ends the walk at the last good hop, so it is never believed; when every hop is trusted, the
    leftmost one is the answer.
    """
    if peer is None:
        return None
    try:
        hop = parse_ip(peer)
    except ValueError:
        return None
    if not (forwarded or x_forwarded_for) or not _trusted(hop, trusted):
        return hop
    hops = x_forwarded_for.split(",") if x_forwarded_for else forwarded_for(forwarded or "")
    for entry in reversed(hops):
        try:
            previous = parse_ip(entry)
        except ValueError:
            return hop
        if not _trusted(previous, trusted):
            return previous
        hop = previous
    return hop
