"""Engine figures: median µs per `decide` on synthetic rulesets of 10 to 10,000 rules.

Each size gets a fresh Engine and the same seeded stream of page views (popular articles and
places repeat, as on a real site); every decision of the stream is timed once, in order, so a
memo starts cold and earns its hits like in a worker. `cold` repeats the stream with the memo
off: the indexed evaluation alone.

Two more packs (bench/common.py's `ruleset_data` options):
- heavy, at 1,000 rules: about 6 matched notices per decision. `engine_heavy_us_1000` with every
  memo off, `engine_heavy_cold_us_1000` from a fresh engine (memos on, cold), and the cost of one
  more matched notice (`engine_notice_us`: the slope of a decision's time over its notices, memo off).
- flat, at 1,000 and 10,000 rules: publishers in proportion to the rules, so matches per decision
  stay about equal; `engine_growth_1000_to_10000` is measured on it, memos on as shipped.

Usage: python bench/engine.py [--requests N] [--sizes 10,100,1000,10000] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import inspect
import statistics
import time
from collections.abc import Callable

from common import PUBLISHERS, build_ruleset, figure, median_us, percentile, publishers, requests, table

from service.engine import Engine


def make_engine(ruleset: object, memo: bool) -> Engine:
    """An engine as shipped, or with its decision memo off (its text memo, if any, stays on)."""
    knob = next((k for k in ("memo_bytes", "memo_size") if k in inspect.signature(Engine).parameters), None)
    if memo or knob is None:
        return Engine(ruleset)  # type: ignore[arg-type]
    try:
        return Engine(ruleset, **{knob: 0}, text_memo_size=4096)  # type: ignore[arg-type]
    except TypeError:
        return Engine(ruleset, **{knob: 0})  # type: ignore[arg-type]


def run_counting(engine: Engine, stream: list[tuple[object, ...]]) -> tuple[list[int], list[int]]:
    """Nanoseconds of each decision and the notices it showed."""
    decide, clock = engine.decide, time.perf_counter_ns
    samples, notices = [], []
    gc.disable()
    try:
        for art, who, at in stream:
            start = clock()
            decision = decide(art, who, at)  # type: ignore[arg-type]
            samples.append(clock() - start)
            notices.append(len(decision.notices))
    finally:
        gc.enable()
    return samples, notices


def heavy(stream: list[tuple[object, ...]], rounds: int) -> None:
    """The heavy pack at 1,000 rules: memo off, memo cold, and the cost of one more notice."""
    ruleset = build_ruleset(1000, heavy=True)
    engine = Engine(ruleset, memo_bytes=0, text_memo_size=0)
    off, notices = min((run_counting(engine, stream) for _ in range(rounds)), key=lambda r: median_us(r[0]))
    cold = best(lambda: run(Engine(ruleset), stream), rounds)
    matched = sum(len(engine.decide(*r).matches) for r in stream[:1000]) / min(1000, len(stream))  # type: ignore[arg-type]
    # The slope of time over notices, on medians per notice count (robust to preempted samples).
    by_count: dict[int, list[int]] = {}
    for ns, count in zip(off, notices, strict=True):
        by_count.setdefault(count, []).append(ns)
    counts = sorted(c for c, s in by_count.items() if len(s) >= 30)
    slope, _ = statistics.linear_regression(counts, [statistics.median(by_count[c]) / 1000 for c in counts])
    figure("engine_heavy_us_1000", median_us(off), "us")
    figure("engine_heavy_cold_us_1000", median_us(cold), "us")
    figure("engine_heavy_matches_1000", matched, "per decision")
    figure("engine_heavy_notices_1000", statistics.mean(notices), "per decision")
    figure("engine_notice_us", slope, "us")


def flat(n: int, rounds: int) -> None:
    """Growth from 1,000 to 10,000 rules at about equal matches per decision."""
    medians, matches = {}, {}
    for size in (1000, 10_000):
        names = publishers(len(PUBLISHERS) * size // 1000)
        ruleset = build_ruleset(size, publishers=names, skew=0)
        stream = requests(n, publishers=names, skew=0)
        warm = best(lambda rs=ruleset, st=stream: run(make_engine(rs, memo=True), st), rounds)  # type: ignore[misc]
        engine = make_engine(ruleset, memo=False)
        matches[size] = sum(len(engine.decide(*r).matches) for r in stream[:1000]) / min(1000, n)
        medians[size] = median_us(warm)
        figure(f"engine_flat_us_{size}", medians[size], "us")
        figure(f"engine_flat_matches_{size}", matches[size], "per decision")
    figure("engine_growth_1000_to_10000", medians[10_000] / medians[1000], "x")


def run(engine: Engine, stream: list[tuple[object, ...]]) -> list[int]:
    decide, clock = engine.decide, time.perf_counter_ns
    samples = []
    gc.disable()
    try:
        for art, who, at in stream:
            start = clock()
            decide(art, who, at)  # type: ignore[arg-type]
            samples.append(clock() - start)
    finally:
        gc.enable()
    return samples


def best(measure: Callable[[], list[int]], rounds: int) -> list[int]:
    """The samples of the run with the lowest median."""
    return min((measure() for _ in range(rounds)), key=median_us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000, help="page views per ruleset size")
    parser.add_argument("--sizes", default="10,100,1000,10000", help="rule counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="runs per size, best kept")
    parser.add_argument("--quick", action="store_true", help="2,000 requests, one round (a smoke run)")
    args = parser.parse_args()
    n, rounds = (2_000, 1) if args.quick else (args.requests, args.rounds)
    sizes = [int(s) for s in args.sizes.split(",")]
    stream = requests(n)
    rows, medians = [], {}
    for size in sizes:
        t0 = time.perf_counter()
        ruleset = build_ruleset(size)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        engine = make_engine(ruleset, memo=True)
        indexed = time.perf_counter() - t0
        # Best of `rounds` runs, each on a fresh engine (its memo cold), against noise on the machine.
        warm = best(lambda rs=ruleset: run(make_engine(rs, memo=True), stream), rounds)  # type: ignore[misc]
        cold = best(lambda rs=ruleset: run(make_engine(rs, memo=False), stream), rounds)  # type: ignore[misc]
        matched = sum(len(engine.decide(*r).matches) for r in stream[:1000]) / min(1000, n)  # type: ignore[arg-type]
        medians[size] = median_us(warm)
        rows.append(
            (
                size,
                f"{median_us(warm):.2f}",
                f"{percentile(warm, 0.99) / 1000:.1f}",
                f"{median_us(cold):.2f}",
                f"{percentile(cold, 0.99) / 1000:.1f}",
                f"{matched:.1f}",
                f"{built:.2f}",
                f"{indexed * 1000:.0f}",
            )
        )
        figure(f"engine_us_{size}", median_us(warm), "us")
        figure(f"engine_cold_us_{size}", median_us(cold), "us")
    if 10 in medians and 10_000 in medians:
        figure("engine_growth_10_to_10000", medians[10_000] / medians[10], "x")
    if 1000 in medians and 10_000 in medians:  # more matches at 10,000 rules: see the table
        figure("engine_growth_1000_to_10000_standard", medians[10_000] / medians[1000], "x")
    heavy(stream, rounds)  # type: ignore[arg-type]
    if not args.quick:
        flat(n, rounds)
    print()
    table(
        ("rules", "median us", "p99 us", "cold median us", "cold p99 us", "matches", "build s", "index ms"),
        rows,
    )


if __name__ == "__main__":
    main()
