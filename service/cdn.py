"""What a CDN says of a reader in request headers: each CDN's header names, read into ISO codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.codes import read_codes
from service.inputs import Said

TOR = "T1"  # Cloudflare's country code for a reader coming through Tor
UNKNOWN_COUNTRIES = {"XX", ""}  # Cloudflare's (and others') "we do not know"


@dataclass(frozen=True, slots=True)
class CdnHeaders:
    """Where a CDN puts the reader's country and region (the ISO 3166-2 part after the dash).
    `edgescape`: Akamai's one header of key=value pairs, read for country_code and region_code."""

    country: str | None = None
    region: str | None = None
    edgescape: str | None = None


PRESETS: dict[str, CdnHeaders] = {
    "none": CdnHeaders(),
    # Sent when the distribution's origin request policy includes them.
    "cloudfront": CdnHeaders("CloudFront-Viewer-Country", "CloudFront-Viewer-Country-Region"),
    # CF-IPCountry is always sent; cf-region-code with "visitor location headers" on.
    "cloudflare": CdnHeaders("CF-IPCountry", "CF-Region-Code"),
    # Fastly sends nothing by itself: the README gives the VCL that sets these two from
    # client.geo.country_code and client.geo.region.
    "fastly": CdnHeaders("X-Fastly-Country-Code", "X-Fastly-Region"),
    # Akamai's EdgeScape header, e.g. "georegion=246,country_code=UA,region_code=43,city=KERCH".
    "akamai": CdnHeaders(edgescape="X-Akamai-Edgescape"),
}


def headers_for(cdn: str, country: str | None = None, region: str | None = None) -> CdnHeaders:
    """The preset of `cdn`, with the country and region header names given explicitly on top."""
    preset = PRESETS[cdn]
    return CdnHeaders(country or preset.country, region or preset.region, preset.edgescape)


def _edgescape(value: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in value.split(",")[:64])
    return {key.strip().lower(): text.strip() for key, _, text in pairs}


def read_headers(names: CdnHeaders, header: Callable[[str], str | None]) -> tuple[Said | None, str]:
    """What the CDN said (None when it said nothing we can use), and the outcome to count: read,
    tor (Tor makes the reader anonymized), unknown (nothing sent, or XX) or ignored (an invalid
    country or region, left out and named in the note). `header` gets a header's value by name."""
    country = (header(names.country) or "") if names.country else ""
    region = (header(names.region) or "") if names.region else ""
    data = names.country or names.region
    if names.edgescape and (raw := header(names.edgescape)):
        fields = _edgescape(raw)
        country, region = fields.get("country_code", country), fields.get("region_code", region)
        data = names.edgescape
    country, region = country.strip().upper()[:16], region.strip().upper()[:16]
    if country == TOR:
        return Said("header", anonymizers=("tor",), data=data), "tor"
    if country in UNKNOWN_COUNTRIES:
        return None, "unknown"
    codes = read_codes(country, region)
    ignored = codes.country is None or codes.stale
    return Said(
        "header", codes.country, codes.subdivision, (), data, codes.note
    ), "ignored" if ignored else "read"
