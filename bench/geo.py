"""GeoIP figures: µs per location lookup with the embedded City database, beside the raw reader.

- `geo_unique_us` / `geo_raw_us`: 100,000 random public IPv4 addresses, each looked up once by
  `GeoDatabase.lookup` (a fresh cache, so almost every lookup reaches the database) and by the
  raw `maxminddb` C reader's `.get()` on the same address objects, in alternating rounds; best
  round of each. Their ratio is `geo_ratio_to_maxminddb`.
- `geo_zipf_us`: 100,000 lookups of readers drawn Zipf-distributed from 20,000 addresses (a
  reader comes back), from a fresh cache; `geo_zipf_hit_pct` the share answered from the cache.
- `geo_cached_us`: a repeat reader, whose network is already cached.

Usage: python bench/geo.py [--addresses N] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from common import SEED, figure, table, zipf_choice

from service.geo import GeoDatabase, embedded_database_path
from service.network import IPAddress, is_locatable


def public_addresses(n: int, seed: int) -> list[IPAddress]:
    rng = random.Random(seed)
    out: list[IPAddress] = []
    while len(out) < n:
        ip = ipaddress.IPv4Address(rng.getrandbits(32))
        if is_locatable(ip):
            out.append(ip)
    return out


def per_call_us(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    """Mean µs per call over one pass (the loop's own cost included, the same for every side)."""
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for item in items:
            fn(item)
        return (time.perf_counter_ns() - start) / len(items) / 1000
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addresses", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 addresses, 2 rounds")
    args = parser.parse_args()
    n, rounds = (20_000, 2) if args.quick else (args.addresses, args.rounds)
    path = embedded_database_path()
    addresses = public_addresses(n, SEED)
    raw_times, unique_times = [], []
    for _ in range(rounds):
        with GeoDatabase.open(path) as raw:
            raw_times.append(per_call_us(raw._reader.get, addresses))
        with GeoDatabase.open(path) as geo:  # a fresh cache each round
            unique_times.append(per_call_us(geo.lookup, addresses))
    raw_us, unique_us = min(raw_times), min(unique_times)

    rng = random.Random(SEED + 2)
    population = public_addresses(20_000, SEED + 3)
    stream = [zipf_choice(rng, population, 1.0) for _ in range(n)]
    zipf_times, hit_pct = [], 0.0
    for _ in range(rounds):
        with GeoDatabase.open(path) as geo:
            zipf_times.append(per_call_us(geo.lookup, stream))
            cached = getattr(geo, "_cached", None)  # networks cached: one per miss (cache not full)
            hit_pct = 100 * (1 - (len(geo._cache) if cached is None else cached) / n)
    with GeoDatabase.open(path) as geo:
        repeat = addresses[:1000]
        for ip in repeat:
            geo.lookup(ip)
        cached_us = min(per_call_us(geo.lookup, repeat * 20) for _ in range(rounds))
        raw_repeat_us = min(per_call_us(geo._reader.get, repeat * 20) for _ in range(rounds))

    figure("geo_raw_us", raw_us, "us")
    figure("geo_unique_us", unique_us, "us")
    figure("geo_ratio_to_maxminddb", unique_us / raw_us, "x")
    figure("geo_zipf_us", min(zipf_times), "us")
    figure("geo_zipf_hit_pct", hit_pct, "%")
    figure("geo_cached_us", cached_us, "us")
    print()
    table(
        ("lookup", "us per lookup"),
        [
            ("maxminddb .get(), unique addresses", f"{raw_us:.2f}"),
            ("GeoDatabase.lookup, unique addresses", f"{unique_us:.2f}"),
            (f"GeoDatabase.lookup, Zipf readers ({hit_pct:.0f}% cached)", f"{min(zipf_times):.2f}"),
            ("maxminddb .get(), repeat reader", f"{raw_repeat_us:.2f}"),
            ("GeoDatabase.lookup, repeat reader", f"{cached_us:.2f}"),
        ],
    )


if __name__ == "__main__":
    main()
