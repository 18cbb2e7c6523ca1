"""CDN location headers: each preset read, merged with GeoIP, only from trusted proxies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from service.cdn import PRESETS, CdnHeaders, headers_for, read_headers
from service.config import Settings
from service.inputs import Said
from service.network import parse_networks

RFERL = {"publisher": "rferl"}
NOTICE = "rferl-undesirable"


def said(names: CdnHeaders, headers: dict[str, str]) -> tuple[Said | None, str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return read_headers(names, lambda name: lowered.get(name.lower()))


# What each CDN sends for a reader in Sevastopol, in its own format.
SEVASTOPOL = {
    "cloudfront": {"CloudFront-Viewer-Country": "UA", "CloudFront-Viewer-Country-Region": "40"},
    "cloudflare": {"CF-IPCountry": "UA", "cf-region-code": "40"},
    "fastly": {"X-Fastly-Country-Code": "UA", "X-Fastly-Region": "40"},
    "akamai": {"X-Akamai-Edgescape": "georegion=246,country_code=UA,region_code=40,city=SEVASTOPOL,lat=44.6"},
}


@pytest.mark.parametrize("cdn", sorted(SEVASTOPOL))
def test_every_preset_reads_its_cdns_country_and_region(cdn: str) -> None:
    got, outcome = said(PRESETS[cdn], SEVASTOPOL[cdn])
    assert got is not None and (got.country, got.subdivision, outcome) == ("UA", "UA-40", "read")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"CF-IPCountry": "T1"}, (None, None, ("tor",), "tor")),
        ({"CF-IPCountry": "XX"}, None),
        ({}, None),
        ({"CF-IPCountry": "ua", "CF-Region-Code": "43"}, ("UA", "UA-43", (), "read")),
        ({"CF-IPCountry": "RU", "CF-Region-Code": "SEV"}, ("RU", "UA-40", (), "read")),  # vendor code
        ({"CF-IPCountry": "UA", "CF-Region-Code": "99"}, ("UA", None, (), "ignored")),  # no such region
        ({"CF-IPCountry": "ZZ"}, (None, None, (), "ignored")),
        ({"CF-IPCountry": "UA" * 500}, (None, None, (), "ignored")),
    ],
)
def test_cloudflare_values(headers: dict[str, str], expected: tuple[Any, ...] | None) -> None:
    got, outcome = said(PRESETS["cloudflare"], headers)
    if expected is None:
        assert (got, outcome) == (None, "unknown")
    else:
        assert got is not None
        assert (got.country, got.subdivision, got.anonymizers, outcome) == expected


def test_explicit_header_names_override_the_preset() -> None:
    assert headers_for("cloudflare", "X-Country", None) == CdnHeaders("X-Country", "CF-Region-Code")
    assert headers_for("none", None, "X-Region") == CdnHeaders(None, "X-Region")


def via_proxy(make_app: Callable[..., Flask], settings: Settings, **update: Any) -> Any:
    trusting = settings.model_copy(update={"trusted_proxies": parse_networks("10.0.0.0/8"), **update})
    client = make_app(trusting).test_client()

    def decide(headers: dict[str, str], peer: str = "10.1.2.3") -> dict[str, Any]:
        response = client.post(
            "/v1/decisions", json={"article": RFERL}, headers=headers, environ_base={"REMOTE_ADDR": peer}
        )
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    return decide


def where(body: dict[str, Any]) -> tuple[Any, ...]:
    reader = body["reader"]
    return reader["country"], reader["subdivision"], reader["source"], [n["id"] for n in body["notices"]]


def test_the_kerch_reader_behind_a_country_header_keeps_geoips_subdivision(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    """Issue 10, failure 1: CF-IPCountry UA used to erase UA-43 and the notice with it."""
    decide = via_proxy(make_app, settings, country_header="CF-IPCountry")
    body = decide({"X-Forwarded-For": "5.59.104.1", "CF-IPCountry": "UA"})
    assert where(body) == ("UA", "UA-43", "header", [NOTICE])
    assert [s["source"] for s in body["reader"]["said"]] == ["header", "geoip"]


@pytest.mark.parametrize("cdn", sorted(SEVASTOPOL))
def test_a_sevastopol_reader_behind_each_cdn_sees_the_notice(
    cdn: str, make_app: Callable[..., Flask], settings: Settings
) -> None:
    """Issue 10, failure 2: the CDN's region, with GeoIP saying Kyiv (UA-30) for the address."""
    decide = via_proxy(make_app, settings, cdn=cdn)
    body = decide({"X-Forwarded-For": "93.72.0.1", **SEVASTOPOL[cdn]})
    assert where(body) == ("UA", "UA-40", "header", [NOTICE])


def test_a_cdn_that_disagrees_with_geoip_wins_and_the_answer_says_so(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    decide = via_proxy(make_app, settings, cdn="cloudflare")
    body = decide({"X-Forwarded-For": "77.88.8.8", "CF-IPCountry": "UA"})
    assert where(body) == ("UA", None, "header", [NOTICE])  # UA alone: possibly occupied
    assert body["reader"]["said"][0]["note"] == "GeoIP said RU: the CDN's country is taken"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-For": "8.8.8.8", "CF-IPCountry": "T1"}, ("US", None, "geoip", [NOTICE])),  # Tor
        ({"X-Forwarded-For": "8.8.8.8", "CF-IPCountry": "XX"}, ("US", None, "geoip", [])),
        (
            {"X-Forwarded-For": "93.72.0.1", "CF-IPCountry": "UA", "CF-Region-Code": "99"},
            ("UA", "UA-30", "header", []),
        ),
        ({"CF-IPCountry": "UA", "CF-Region-Code": "30"}, ("UA", "UA-30", "header", [])),  # no XFF
    ],
)
def test_cloudflare_codes_through_the_api(
    headers: dict[str, str], expected: tuple[Any, ...], make_app: Callable[..., Flask], settings: Settings
) -> None:
    decide = via_proxy(make_app, settings, cdn="cloudflare")
    assert where(decide(headers)) == expected


def test_cdn_headers_from_an_untrusted_peer_change_nothing(
    make_app: Callable[..., Flask], settings: Settings
) -> None:
    decide = via_proxy(make_app, settings, cdn="cloudfront")
    spoofed = {"CloudFront-Viewer-Country": "UA", "CloudFront-Viewer-Country-Region": "43"}
    assert where(decide(spoofed, peer="8.8.8.8")) == ("US", None, "geoip", [])


def test_header_outcomes_are_counted(make_app: Callable[..., Flask], settings: Settings) -> None:
    trusting = settings.model_copy(
        update={"trusted_proxies": parse_networks("10.0.0.0/8"), "cdn": "cloudflare"}
    )
    client = make_app(trusting).test_client()
    for country in ("UA", "T1", "XX", "ZZ"):
        client.post(
            "/v1/decisions",
            json={"article": RFERL},
            headers={"CF-IPCountry": country},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
    text = client.get("/metrics").get_data(as_text=True)
    for outcome in ("read", "tor", "unknown", "ignored"):
        assert f'herald_cdn_headers_total{{outcome="{outcome}"}} 1.0' in text
