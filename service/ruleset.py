"""A loaded ruleset: immutable, with regions expanded to areas, identified by a content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import orjson

from service.model import ARCHIVE, Case, Notice, Region, Rule


@dataclass(frozen=True, slots=True)
class Area:
    """A region expanded to codes: each country with the subdivisions it excludes, and
    subdivisions that belong whatever the reader's country code says (e.g. UA-43 for Crimea)."""

    countries: Mapping[str, frozenset[str]]
    subdivisions: frozenset[str]

    def match(self, country: str | None, subdivision: str | None) -> str | None:
        """The code by which the reader is in this area, or None. The one test of region
        membership: the engine's index, explain, lint, diff and the case coverage rely on it."""
        if subdivision is not None and subdivision in self.subdivisions:
            return subdivision
        if country is not None and country in self.countries:
            if subdivision is None or subdivision not in self.countries[country]:
                return country
        return None

    def partly(self) -> frozenset[str]:
        """Countries the area holds only some subdivisions of: a reader located in one of them
        with no subdivision is possibly in the area (the rule's `unknown_location` decides)."""
        return frozenset(s.split("-", 1)[0] for s in self.subdivisions) - self.countries.keys()

    def possibly(self, country: str | None, subdivision: str | None) -> bool:
        """A reader of this country, subdivision unknown, may be in the area (see `partly`)."""
        return country is not None and subdivision is None and country in self.partly()

    @property
    def empty(self) -> bool:
        return not self.countries and not self.subdivisions


def union(areas: list[Area]) -> Area:
    countries: dict[str, frozenset[str]] = {}
    for area in areas:
        for country, excluded in area.countries.items():
            # In both: excluded only where every part excludes it.
            countries[country] = countries[country] & excluded if country in countries else excluded
    subdivisions = frozenset().union(*(a.subdivisions for a in areas))
    return Area(countries, subdivisions)


def expand(region: Region, areas: Mapping[str, Area]) -> Area:
    """The area of `region`, given the areas of the regions it includes."""
    own = Area({c: frozenset() for c in region.countries}, frozenset(region.subdivisions))
    whole = union([own, *(areas[i] for i in region.include)])
    gone_countries = set(region.exclude.countries)
    gone_subdivisions = frozenset(region.exclude.subdivisions)
    # An excluded subdivision is excluded whatever its code's country: a region of [RU] that
    # excludes UA-43 must not take in a reader located as RU with subdivision UA-43.
    countries = {
        country: excluded | gone_subdivisions
        for country, excluded in whole.countries.items()
        if country not in gone_countries
    }
    subdivisions = frozenset(
        s
        for s in whole.subdivisions
        if s not in gone_subdivisions and s.split("-", 1)[0] not in gone_countries
    )
    return Area(countries, subdivisions)


def expand_all(regions: Mapping[str, Region]) -> dict[str, Area]:
    """Areas of every region. Regions must already be known to include no cycle. Walked with an
    explicit stack, children first: a long chain of regions cannot hit the recursion limit."""
    areas: dict[str, Area] = {}
    for root in regions:
        work = [root]
        while work:
            region = regions[work[-1]]
            if region.id in areas:
                work.pop()
                continue
            pending = [child for child in region.include if child not in areas]
            if pending:
                work += pending
            else:
                areas[region.id] = expand(region, areas)
                work.pop()
    return areas


def _sorted_sets(value: Any) -> Any:
    """Every list of strings in the rule model is a set: sort it, so order is formatting.
    (Called on a model's JSON dump: only dicts, lists and scalars; scalars are not visited.)"""
    if isinstance(value, dict):
        return {k: _sorted_sets(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sorted(set(value))
    return value


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an item is defined: its file and position, and the position of each of its keys."""

    file: str
    line: int
    column: int
    keys: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def at(self, key: str | None = None) -> tuple[str, int, int]:
        """file, line, column of `key` in this item (of the item itself if it has no such key)."""
        line, column = self.keys.get(key, (self.line, self.column)) if key else (self.line, self.column)
        return self.file, line, column


@dataclass(frozen=True, slots=True)
class SourcedCase:
    case: Case
    file: str
    line: int
    column: int = 1


@dataclass(frozen=True)
class Ruleset:
    """Every rule file loaded together and validated. Never changes once built."""

    regions: Mapping[str, Region]
    notices: Mapping[str, Notice]
    rules: Mapping[str, Rule]
    areas: Mapping[str, Area]
    cases: tuple[SourcedCase, ...] = ()
    files: tuple[SourceFile, ...] = ()
    # (section, id) -> where it is defined; empty for a ruleset rebuilt from its canonical form.
    origins: Mapping[tuple[str, str], Origin] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        regions: list[Region],
        notices: list[Notice],
        rules: list[Rule],
        cases: tuple[SourcedCase, ...] = (),
        files: tuple[SourceFile, ...] = (),
        origins: Mapping[tuple[str, str], Origin] | None = None,
    ) -> Ruleset:
        by_id_regions = {r.id: r for r in sorted(regions, key=lambda r: r.id)}
        return cls(
            regions=MappingProxyType(by_id_regions),
            notices=MappingProxyType({n.id: n for n in sorted(notices, key=lambda n: n.id)}),
            rules=MappingProxyType({r.id: r for r in sorted(rules, key=lambda r: r.id)}),
            areas=MappingProxyType(expand_all(by_id_regions)),
            cases=cases,
            files=files,
            origins=MappingProxyType(dict(origins or {})),
        )

    def canonical(self) -> dict[str, Any]:
        """The rules as data, independent of file layout, order and formatting. Defaults are
        left out, so adding an optional key to the rule language keeps every existing hash."""
        return {
            kind: [
                _sorted_sets(item.model_dump(mode="json", by_alias=True, exclude_defaults=True))
                for item in items.values()
            ]
            for kind, items in (
                ("regions", self.regions),
                ("notices", self.notices),
                ("rules", self.rules),
            )
        }

    def canonical_bytes(self) -> bytes:
        """Compact JSON, keys sorted, UTF-8 unescaped: what `json.dumps(..., sort_keys=True,
        separators=(",", ":"), ensure_ascii=False)` writes, byte for byte (tested), by orjson,
        ten times faster; by json for what orjson refuses (an integer past 64 bits)."""
        canonical = self.canonical()
        try:
            return orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @cached_property
    def hash(self) -> str:
        """`sha256:` of the canonical form: the same rules give the same hash."""
        return "sha256:" + hashlib.sha256(self.canonical_bytes()).hexdigest()

    @classmethod
    def from_canonical(cls, data: Mapping[str, Any]) -> Ruleset:
        """Rebuild a ruleset from `canonical()` output (e.g. from an archive)."""
        return cls.build(
            [Region.model_validate(r) for r in data["regions"]],
            [Notice.model_validate(n) for n in data["notices"]],
            [Rule.model_validate(r, context=ARCHIVE) for r in data["rules"]],
        )
