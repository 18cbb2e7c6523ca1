"""Where the reader is, from the request: explicit fields, then the IP, then a CDN header."""

from __future__ import annotations

from flask import Request

from service import iso
from service.geo import fast_is_locatable
from service.inputs import UNKNOWN, Location, Reader
from service.languages import parse_accept_language
from service.network import IPAddress, client_address, is_trusted, parse_ip_cached
from service.web.runtime import Runtime
from service.web.schemas import ReaderIn

# Values CDNs send when they do not know the country. Cloudflare: XX unknown, T1 Tor.
_TOR = {"T1"}  # Cloudflare's code for a reader coming through Tor


def locate(given: ReaderIn | None, request: Request, rt: Runtime) -> tuple[Reader, str | None]:
    """The reader, and the address it was located by (None when it was not located by address).

    Order, and why it differs a little from "header before IP": an address the caller gives in
    the body is about the reader, while a CDN header on the call is about whoever made the call
    (a publisher's server, when servers call us). So: explicit country/subdivision; else the
    given IP; else the CDN country header from a trusted proxy; else the peer address (through
    trusted proxies only).
    """
    languages = (
        given.languages
        if given is not None and given.languages is not None
        else parse_accept_language(request.headers.get("Accept-Language"))
    )
    if given is not None and (given.country or given.subdivision):
        return Reader(Location.explicit(given.country, given.subdivision), languages), None
    if given is not None and given.ip is not None:
        ip = parse_ip_cached(given.ip)  # checked by the schema already: this is the remembered answer
        return Reader(_lookup(ip, rt), languages), str(ip)
    trusted = rt.settings.trusted_proxies
    peer = request.remote_addr
    if rt.settings.country_header and peer is not None and is_trusted(peer, trusted):
        value = request.headers.get(rt.settings.country_header, "").strip().upper()
        if value in _TOR:
            return Reader(Location(anonymized=True), languages), None
        if iso.is_country(value):
            return Reader(Location(value, None, "header"), languages), None
    headers = request.headers
    address = client_address(peer, headers.get("X-Forwarded-For"), trusted, headers.get("Forwarded"))
    if address is None:
        return Reader(UNKNOWN, languages), None
    return Reader(_lookup(address, rt), languages), str(address)


def _lookup(ip: IPAddress, rt: Runtime) -> Location:
    """The address's location, counted by outcome for /metrics."""
    if rt.geo is None:
        rt.metrics.located("no_database")
        return UNKNOWN
    location = rt.geo.lookup(ip)
    if location.source == "geoip":
        rt.metrics.located("found_anonymizer" if location.anonymized else "found")
    elif not fast_is_locatable(ip) and not rt.settings.locate_private:
        rt.metrics.located("not_global")
    else:
        rt.metrics.located("anonymizer_no_country" if location.anonymized else "not_found")
    return location
