"""One reader location from what each source said: merged, never overwritten, with its evidence.

The rules, in order of trust (docs/location.md says why):
- a CDN region (a subdivision from a trusted proxy's header) wins over GeoIP's subdivision;
- a CDN country that agrees with GeoIP's country keeps GeoIP's subdivision;
- a CDN country that disagrees with GeoIP's wins, without a subdivision, and the disagreement
  is noted in the header's evidence;
- any source that says "anonymized" makes the reader anonymized; kinds are kept.
"""

from __future__ import annotations

from dataclasses import replace

from service.inputs import UNKNOWN, Location, LocationSource, Said


def merge(header: Said | None, geoip: Said | None, anonymous: Said | None = None) -> Location:
    """The reader's location from a CDN header, a GeoIP lookup and an anonymizer lookup (any of
    them absent), with what each said kept in `said`."""
    country: str | None = None
    subdivision: str | None = None
    source: LocationSource = "unknown"
    if header is not None and header.country is not None:
        country, source = header.country, "header"
        if header.subdivision is not None:
            subdivision = header.subdivision
        elif geoip is not None and geoip.country == country:
            subdivision = geoip.subdivision
        elif geoip is not None and geoip.country is not None:
            header = replace(
                header,
                note=_joined(header.note, f"GeoIP said {geoip.country}: the CDN's country is taken"),
            )
    elif geoip is not None and geoip.country is not None:
        country, subdivision, source = geoip.country, geoip.subdivision, "geoip"
    said = tuple(s for s in (header, geoip, anonymous) if s is not None)
    kinds = tuple(dict.fromkeys(kind for s in said for kind in s.anonymizers))
    if country is None and not kinds:
        return replace(UNKNOWN, said=said) if said else UNKNOWN
    return Location(country, subdivision, source, bool(kinds), kinds, said)


def _joined(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second
