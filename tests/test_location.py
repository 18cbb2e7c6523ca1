from __future__ import annotations

import pytest

from service.inputs import UNKNOWN, Location, Said
from service.location import merge

CITY = "GeoLite2-City 2026-09-18"


def geoip(country: str | None, subdivision: str | None = None, *kinds: str) -> Said:
    return Said("geoip", country, subdivision, kinds, CITY)


def header(country: str | None, subdivision: str | None = None, *kinds: str) -> Said:
    return Said("header", country, subdivision, kinds, "CF-IPCountry")


@pytest.mark.parametrize(
    ("cdn", "looked_up", "expected"),
    [
        # the Kerch case: a CDN country that agrees keeps GeoIP's subdivision
        (header("UA"), geoip("UA", "UA-43"), Location("UA", "UA-43", "header")),
        # a CDN region wins over GeoIP's subdivision
        (header("UA", "UA-43"), geoip("UA", "UA-30"), Location("UA", "UA-43", "header")),
        (header("UA", "UA-40"), None, Location("UA", "UA-40", "header")),
        # a CDN country that disagrees wins, without a subdivision
        (header("UA"), geoip("CZ", "CZ-10"), Location("UA", None, "header")),
        (header("RU", "UA-43"), geoip("UA", "UA-43"), Location("RU", "UA-43", "header")),
        # no CDN word: GeoIP alone
        (None, geoip("UA", "UA-43"), Location("UA", "UA-43", "geoip")),
        (None, geoip("UA"), Location("UA", None, "geoip")),
        (None, geoip(None), UNKNOWN),
        (None, None, UNKNOWN),
        # anonymizers from any source, kinds kept
        (header(None, None, "tor"), geoip("DE"), Location("DE", None, "geoip", True, ("tor",))),
        (
            None,
            geoip(None, None, "anonymous_proxy"),
            Location(None, None, "unknown", True, ("anonymous_proxy",)),
        ),
    ],
)
def test_merge(cdn: Said | None, looked_up: Said | None, expected: Location) -> None:
    location = merge(cdn, looked_up)
    assert location == expected
    assert [s.source for s in location.said] == [s.source for s in (cdn, looked_up) if s is not None]


def test_a_disagreement_is_noted_in_the_headers_evidence() -> None:
    location = merge(header("UA"), geoip("CZ"))
    assert [s.as_dict() for s in location.said] == [
        {
            "source": "header",
            "country": "UA",
            "subdivision": None,
            "data": "CF-IPCountry",
            "note": "GeoIP said CZ: the CDN's country is taken",
        },
        {"source": "geoip", "country": "CZ", "subdivision": None, "data": CITY},
    ]


def test_the_anonymous_ip_database_adds_its_kinds() -> None:
    anonymous = Said(
        "anonymous-ip", anonymizers=("vpn", "hosting_provider"), data="GeoIP2-Anonymous-IP 2026-11-30"
    )
    location = merge(None, geoip("RU"), anonymous)
    assert (location.country, location.anonymized, location.anonymizers) == (
        "RU",
        True,
        ("vpn", "hosting_provider"),
    )
    assert [s.source for s in location.said] == ["geoip", "anonymous-ip"]


def test_evidence_is_not_part_of_the_locations_value() -> None:
    assert merge(None, geoip("RU")) == Location("RU", None, "geoip")
    assert merge(None, geoip("RU")).said == (geoip("RU"),)
