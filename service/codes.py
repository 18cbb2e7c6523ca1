"""Vendors' country and subdivision codes read as ISO 3166 codes, through the packaged alias table."""

from __future__ import annotations

import importlib.resources
from functools import cache, lru_cache
from typing import NamedTuple

from ruamel.yaml import YAML

from service import iso

ALIASES = "data/subdivision_aliases.yaml"


class AliasTableError(Exception):
    """The packaged alias table is wrong: a key that is ISO already, or a value that is not."""


@cache
def aliases() -> dict[str, str]:
    """Vendor subdivision code (e.g. RU-CR) -> the ISO 3166-2 code of the place (UA-43)."""
    text = (importlib.resources.files("service") / ALIASES).read_text(encoding="utf-8")
    sections = YAML(typ="safe").load(text) or {}
    table: dict[str, str] = {}
    for section in sections.values():
        for key, value in (section or {}).items():
            key, value = str(key).upper(), str(value).upper()
            if iso.is_subdivision(key):
                raise AliasTableError(f"{ALIASES}: {key} is a valid ISO 3166-2 code, never an alias")
            if not iso.is_subdivision(value):
                raise AliasTableError(f"{ALIASES}: {key} maps to {value}, which is not ISO 3166-2")
            table[key] = value
    return table


class Codes(NamedTuple):
    """ISO codes read from a vendor's, and what was read differently or dropped (`note`).
    `stale`: a subdivision code was sent that is neither ISO 3166-2 nor a known alias."""

    country: str | None
    subdivision: str | None
    note: str | None = None
    stale: bool = False


@lru_cache(maxsize=16_384)
def read_codes(country: str | None, subdivision: str | None) -> Codes:
    """ISO codes for a vendor's `country` (alpha-2) and `subdivision` (the part after the dash,
    as MaxMind and CDNs send it, or a whole code with its country).

    A country that is not ISO 3166-1 gives nothing. A subdivision is taken when it is ISO
    3166-2, or read through the alias table (RU-CR is UA-43); otherwise the country alone is
    kept, so a stale or invented code can never match a region by accident."""
    country = (country or "").strip().upper() or None
    if country is None:
        return Codes(None, None)
    if not iso.is_country(country):
        return Codes(None, None, f"country {country[:16]!r} is not ISO 3166-1: ignored")
    part = (subdivision or "").strip().upper()
    if not part:
        return Codes(country, None)
    code = part if part.startswith(country + "-") else f"{country}-{part}"
    if iso.is_subdivision(code):
        return Codes(country, code)
    alias = aliases().get(code)
    if alias is not None:
        return Codes(country, alias, f"vendor code {code} read as {alias}")
    return Codes(country, None, f"subdivision {code[:20]!r} is not ISO 3166-2: country only", True)
