"""ISO 3166 codes checked against pycountry's data, with suggestions editors can act on."""

from __future__ import annotations

import pytest

from service import iso

LOOK_LIKE = "ISO 3166-2 codes look like 'UA-43' (country, dash, subdivision)"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("RU", None),
        ("ru", None),
        ("XK", None),  # Kosovo: user-assigned, accepted on purpose
        ("RUS", "unknown country code 'RUS'; ISO 3166-1 alpha-2 is 'RU'"),
        ("ukr", "unknown country code 'ukr'; ISO 3166-1 alpha-2 is 'UA'"),
        ("UA-43", "unknown country code 'UA-43'; 'UA-43' is a subdivision (ISO 3166-2), not a country"),
        ("UA43", "unknown country code 'UA43'; did you mean 'UA' (Ukraine)?"),
        ("ZZ", "unknown country code 'ZZ'"),
    ],
)
def test_country_problem(code: str, problem: str | None) -> None:
    assert iso.country_problem(code) == problem


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("UA-43", None),
        ("ua-40", None),
        ("RU-MOW", None),
        (
            "UA43",
            f"unknown subdivision code 'UA43'; {LOOK_LIKE}",
        ),
        (
            "RU",
            f"unknown subdivision code 'RU'; {LOOK_LIKE}",
        ),
        ("XX-01", "unknown subdivision code 'XX-01'; 'XX' is not a country code"),
        ("RUS-MOW", "unknown subdivision code 'RUS-MOW'; 'RUS' is not a country code"),
        ("AQ-01", "unknown subdivision code 'AQ-01'; ISO 3166-2 lists no subdivisions for 'AQ'"),
        ("US-ZZ", "unknown subdivision code 'US-ZZ'; did you mean 'US-AZ' (Arizona)?"),
    ],
)
def test_subdivision_problem(code: str, problem: str | None) -> None:
    assert iso.subdivision_problem(code) == problem


def test_lookups_come_from_iso_data() -> None:
    assert iso.is_country("ua") and iso.is_country("XK") and not iso.is_country("SU")
    assert iso.is_subdivision("ua-43") and not iso.is_subdivision("UA-99")
    assert iso.countries()["UA"] == "Ukraine"
    assert len(iso.countries()) > 240 and len(iso.subdivisions()) > 4000
    # every subdivision belongs to a known country
    assert {code.split("-", 1)[0] for code in iso.subdivisions()} <= set(iso.countries())
