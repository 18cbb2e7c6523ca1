"""Where the reader is, from the request: explicit fields, else the IP and a CDN's headers, merged."""

from __future__ import annotations

from flask import Request

from service.cdn import CdnHeaders, headers_for, read_headers
from service.geo import fast_is_locatable
from service.inputs import Location, Reader, Said
from service.languages import parse_accept_language
from service.location import merge
from service.network import IPAddress, client_address, is_trusted, parse_ip_cached
from service.web.runtime import Runtime
from service.web.schemas import ReaderIn


def locate(given: ReaderIn | None, request: Request, rt: Runtime) -> tuple[Reader, str | None]:
    """The reader, and the address it was located by (None when it was not located by address).

    An address the caller gives in the body is about the reader, while a CDN header on the call
    is about whoever made the call (a publisher's server, when servers call us). So: explicit
    country/subdivision alone; else the given IP alone; else the peer address (through trusted
    proxies only) merged with the CDN's location headers from a trusted proxy (`location.merge`).
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
    settings, headers, peer = rt.settings, request.headers, request.remote_addr
    trusted = settings.trusted_proxies
    header = None
    names = headers_for(settings.cdn, settings.country_header, settings.region_header)
    if (names.country or names.edgescape) and peer is not None and is_trusted(peer, trusted):
        header = _read_cdn(names, request, rt)
    if settings.proxy_header == "forwarded":
        address = client_address(peer, None, trusted, headers.get("Forwarded"))
    else:
        address = client_address(peer, headers.get("X-Forwarded-For"), trusted)
    if address is None:
        return Reader(merge(header, None), languages), None
    return Reader(_lookup(address, rt, header), languages), str(address)


def _read_cdn(names: CdnHeaders, request: Request, rt: Runtime) -> Said | None:
    """The CDN's headers, counted by outcome for /metrics."""
    said, outcome = read_headers(names, request.headers.get)
    rt.metrics.cdn_header(outcome)
    return said


def _lookup(ip: IPAddress, rt: Runtime, header: Said | None = None) -> Location:
    """The address's location merged with the CDN's word, counted by GeoIP outcome for /metrics.
    Without a CDN word or an anonymizer listing, the database's own answer is shared as it is."""
    anonymous = rt.anonymous.said(ip) if rt.anonymous is not None else None
    if rt.geo is None:
        rt.metrics.located("no_database")
        return merge(header, None, anonymous)
    location = rt.geo.lookup(ip)
    said = location.said[0] if location.said else None
    if header is not None or anonymous is not None:
        location = merge(header, said, anonymous)
    if said is not None and said.country is not None:
        rt.metrics.located("found_anonymizer" if location.anonymized else "found")
    elif said is None and not fast_is_locatable(ip) and not rt.settings.locate_private:
        rt.metrics.located("not_global")
    else:
        rt.metrics.located("anonymizer_no_country" if location.anonymized else "not_found")
    return location
