"""The dashboard's chart as geometry: per day, bars of decisions and of notices shown, stacked by country."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from service.audit.summary import Key, Row

# Okabe-Ito colours (told apart with colour-blindness too), then grey for all other countries.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")
OTHER_COLOUR = "#8c8c8c"
UNKNOWN = "unknown"  # readers Herald could not locate
OTHER = "other"
WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 44
SERIES = ("decisions", "notices")


@dataclass(frozen=True, slots=True)
class Segment:
    country: str
    value: int
    colour: str
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    day: str
    series: str  # "decisions" or "notices"
    x: float
    width: float
    total: int
    segments: tuple[Segment, ...]

    @property
    def top(self) -> float:
        return min(s.y for s in self.segments)


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    plot: tuple[float, float, float, float]  # left, top, right, bottom
    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, int], ...]  # (y, value)
    labels: tuple[tuple[float, str], ...]  # (x, day)
    legend: tuple[tuple[str, str], ...]  # (colour, country)
    days: int


def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def nice_ceiling(value: int) -> tuple[int, int]:
    """The top of the axis and its tick step: 1, 2 or 5 times a power of ten, four or five ticks."""
    if value <= 0:
        return 4, 1
    step = 10 ** max(0, math.floor(math.log10(value / 4)))
    for factor in (1, 2, 5, 10):
        if value <= 4 * step * factor or factor == 10:
            step *= factor
            break
    return step * math.ceil(value / step), step


def by_country(rows: Mapping[Key, Row]) -> dict[tuple[str, str], tuple[int, int]]:
    """(day, country) -> (decisions, notices shown), with `unknown` for readers not located."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for (day, country, _), row in rows.items():
        key = (day, country or UNKNOWN)
        decisions, notices = counts.get(key, (0, 0))
        counts[key] = (decisions + row.decisions, notices + sum(row.notices.values()))
    return counts


def colours(counts: Mapping[tuple[str, str], tuple[int, int]]) -> dict[str, str]:
    """Country -> colour: the countries with most decisions get the palette, the rest share grey."""
    totals: dict[str, int] = {}
    for (_, country), (decisions, _) in counts.items():
        totals[country] = totals.get(country, 0) + decisions
    ranked = sorted(totals, key=lambda c: (-totals[c], c))
    if len(ranked) > len(PALETTE):
        ranked = ranked[: len(PALETTE) - 1]  # keep one colour slot's worth of room for "other"
    return {country: PALETTE[i] for i, country in enumerate(ranked)}


def build(rows: Mapping[Key, Row], days: Sequence[str]) -> Chart:
    """Bars for every day with something to show; countries stacked in legend order, bottom up."""
    counts = by_country(rows)
    palette = colours(counts)
    legend_order = [*palette, OTHER]
    per_day: dict[tuple[str, str], dict[str, int]] = {}
    for (day, country), values in counts.items():
        for series, value in zip(SERIES, values, strict=True):
            if value:
                name = country if country in palette else OTHER
                stack = per_day.setdefault((day, series), {})
                stack[name] = stack.get(name, 0) + value
    top, step = nice_ceiling(max((sum(s.values()) for s in per_day.values()), default=0))
    left, right, upper, lower = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    slot = (right - left) / max(1, len(days))
    width = max(1.0, slot * 0.38)

    def y(value: int) -> float:
        return round(lower - (lower - upper) * value / top, 2)

    bars = []
    for index, day in enumerate(days):
        for offset, series in enumerate(SERIES):
            if (day, series) not in per_day:
                continue
            stack = per_day[(day, series)]
            segments, base = [], 0
            for country in sorted(stack, key=legend_order.index):
                value = stack[country]
                colour = palette.get(country, OTHER_COLOUR)
                segments.append(Segment(country, value, colour, y(base + value), y(base) - y(base + value)))
                base += value
            x = left + slot * index + slot * 0.1 + offset * (width + slot * 0.04)
            bars.append(Bar(day, series, round(x, 2), round(width, 2), base, tuple(segments)))
    every = max(1, math.ceil(len(days) / 10))
    labels = tuple(
        (round(left + slot * (i + 0.5), 2), day[5:]) for i, day in enumerate(days) if i % every == 0
    )
    shown = {s.country for bar in bars for s in bar.segments}
    legend = tuple((palette.get(c, OTHER_COLOUR), c) for c in legend_order if c in shown)
    ticks = tuple((y(value), value) for value in range(0, top + 1, step))
    return Chart(WIDTH, HEIGHT, (left, upper, right, lower), tuple(bars), ticks, labels, legend, len(days))
