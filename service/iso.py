"""ISO 3166 country and subdivision codes: validation and "did you mean" suggestions, from pycountry."""

from __future__ import annotations

import difflib
from functools import cache

import pycountry

# Kosovo has no ISO 3166-1 code. "XK" is the user-assigned code that the EU, MaxMind and most
# registries use, and Kosovo readers are a real audience for this publisher, so we accept it.
USER_ASSIGNED_COUNTRIES = {"XK": "Kosovo"}


@cache
def countries() -> dict[str, str]:
    """Every accepted ISO 3166-1 alpha-2 code, with its name."""
    known = {c.alpha_2: c.name for c in pycountry.countries}
    return known | USER_ASSIGNED_COUNTRIES


@cache
def _alpha3() -> dict[str, str]:
    return {c.alpha_3: c.alpha_2 for c in pycountry.countries}


@cache
def subdivisions() -> dict[str, str]:
    """Every ISO 3166-2 subdivision code, with its name."""
    return {s.code: s.name for s in pycountry.subdivisions}


def is_country(code: str) -> bool:
    return code.upper() in countries()


def is_subdivision(code: str) -> bool:
    return code.upper() in subdivisions()


def country_problem(code: str) -> str | None:
    """None when `code` is a valid country code, else a message with a suggestion if one is close."""
    upper = code.upper()
    if upper in countries():
        return None
    message = f"unknown country code {code!r}"
    if upper in _alpha3():
        return f"{message}; ISO 3166-1 alpha-2 is {_alpha3()[upper]!r}"
    if upper in subdivisions():
        return f"{message}; {upper!r} is a subdivision (ISO 3166-2), not a country"
    return message + _did_you_mean(upper, countries())


def subdivision_problem(code: str) -> str | None:
    """None when `code` is a valid ISO 3166-2 code, else a message with a suggestion if one is close."""
    upper = code.upper()
    if upper in subdivisions():
        return None
    message = f"unknown subdivision code {code!r}"
    if "-" not in upper:
        return f"{message}; ISO 3166-2 codes look like 'UA-43' (country, dash, subdivision)"
    country = upper.split("-", 1)[0]
    if country not in countries():
        return f"{message}; {country!r} is not a country code"
    same_country = {c: n for c, n in subdivisions().items() if c.startswith(country + "-")}
    if not same_country:
        return f"{message}; ISO 3166-2 lists no subdivisions for {country!r}"
    return message + _did_you_mean(upper, same_country)


def _did_you_mean(code: str, known: dict[str, str]) -> str:
    close = difflib.get_close_matches(code, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r} ({known[close[0]]})?" if close else ""
