"""The reader's address reduced for privacy before it is logged: a network, a keyed hash, or nothing."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import lru_cache
from typing import Literal

AddressMode = Literal["network", "full", "hash", "none"]
IPV6_PREFIX = 48


def reduce_address(address: str | None, mode: AddressMode, key: bytes | None = None) -> str | None:
    """What the log keeps of `address`: `network` gives e.g. 77.88.8.0/24 or 2a02:6b8::/48."""
    if address is None or mode == "none":
        return None
    if mode == "full":
        return address
    if mode == "hash":
        if not key:
            raise ValueError("hashing addresses needs a key (HERALD_AUDIT_ADDRESS_KEY)")
        return "hmac-sha256:" + hmac.new(key, address.encode(), hashlib.sha256).hexdigest()
    if "." in address and ":" not in address:  # IPv4, as the service prints it: a.b.c.d
        return address.rpartition(".")[0] + ".0/24"
    return _network6(address)


@lru_cache(maxsize=4096)
def _network6(address: str) -> str:
    return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
