from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

import pytest

from service.network import client_address, is_locatable, parse_ip, parse_networks


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8.8.8.8", IPv4Address("8.8.8.8")),
        ("  8.8.8.8\n", IPv4Address("8.8.8.8")),
        ("2a02:6b8::feed:0ff", IPv6Address("2a02:6b8::feed:ff")),
        ("2A02:6B8::1", IPv6Address("2a02:6b8::1")),
        ("::ffff:1.2.3.4", IPv4Address("1.2.3.4")),
        ("::ffff:0102:0304", IPv4Address("1.2.3.4")),
        ("::1", IPv6Address("::1")),
    ],
)
def test_parse_ip(text: str, expected: IPv4Address | IPv6Address) -> None:
    assert parse_ip(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "1.2.3",
        "1.2.3.256",
        "010.1.1.1",  # leading zeros: octal or decimal? refuse to guess
        "fe80::1%eth0",  # zone id
        "[::1]",
        "1.2.3.4:80",
        "[2001:db8::1]:443",
        "1.2.3.4/32",
        "unknown",
        "1.2.3.4 5.6.7.8",
    ],
)
def test_parse_ip_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not an IP address$"):
        parse_ip(text)


def test_parse_ip_message_names_the_input() -> None:
    with pytest.raises(ValueError) as caught:
        parse_ip("1.2.3")
    assert str(caught.value) == "'1.2.3' is not an IP address"


def test_parse_ip_message_is_short_for_long_input() -> None:
    with pytest.raises(ValueError) as caught:
        parse_ip("x" * 10_000)
    assert len(str(caught.value)) < 100


@pytest.mark.parametrize(
    ("text", "locatable"),
    [
        ("8.8.8.8", True),
        ("2a02:6b8::1", True),
        ("::ffff:8.8.8.8", True),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("127.0.0.1", False),
        ("::1", False),
        ("169.254.1.1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("239.1.2.3", False),
        ("ff0e::1", False),
        ("::1.2.3.4", False),  # deprecated IPv4-compatible
        ("::ffff:10.0.0.1", False),
        ("192.0.2.1", False),
        ("198.51.100.1", False),
        ("203.0.113.1", False),
        ("2001:db8::1", False),
    ],
)
def test_is_locatable(text: str, locatable: bool) -> None:
    assert is_locatable(ip_address(text)) is locatable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("  ", ()),
        ("10.0.0.0/8", (IPv4Network("10.0.0.0/8"),)),
        (
            "10.0.0.0/8, 192.168.0.0/16",
            (IPv4Network("10.0.0.0/8"), IPv4Network("192.168.0.0/16")),
        ),
        (
            "10.0.0.0/8 fd00::/8\n127.0.0.1,,::1",
            (
                IPv4Network("10.0.0.0/8"),
                IPv6Network("fd00::/8"),
                IPv4Network("127.0.0.1/32"),
                IPv6Network("::1/128"),
            ),
        ),
        ("::ffff:10.0.0.0/104", (IPv4Network("10.0.0.0/8"),)),
        ("10.0.0.0/255.0.0.0", (IPv4Network("10.0.0.0/8"),)),
    ],
)
def test_parse_networks(text: str, expected: tuple[IPv4Network | IPv6Network, ...]) -> None:
    assert parse_networks(text) == expected


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("10.0.0.0/8, 10.0.0.1/8", "'10.0.0.1/8'"),  # host bits set: never widened silently
        ("10.0.0.0/33", "'10.0.0.0/33'"),
        ("10.0.0.0/8 proxy.internal", "'proxy.internal'"),
        ("fe80::%eth0/64", "'fe80::%eth0/64'"),
        ("010.0.0.0/8", "'010.0.0.0/8'"),
    ],
)
def test_parse_networks_names_the_bad_entry(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match=f"^{bad} is not a network"):
        parse_networks(text)


TRUSTED = parse_networks("10.0.0.0/8 fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # untrusted peer: the header is ignored, whatever it says
        ("8.8.8.8", None, "8.8.8.8"),
        ("8.8.8.8", "77.88.8.8", "8.8.8.8"),
        ("8.8.8.8", "10.0.0.5", "8.8.8.8"),
        ("::ffff:8.8.8.8", "77.88.8.8", "8.8.8.8"),
        # trusted peer: the rightmost untrusted hop
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        ("10.0.0.1", "77.88.8.8", "77.88.8.8"),
        ("10.0.0.1", "1.1.1.1, 77.88.8.8", "77.88.8.8"),  # 1.1.1.1 may be spoofed by the client
        ("fd00::1", "2a02:6b8::1", "2a02:6b8::1"),
        ("10.0.0.1", " ::ffff:77.88.8.8 ", "77.88.8.8"),
        # a chain of trusted proxies is skipped
        ("10.0.0.1", "1.1.1.1, 77.88.8.8, 10.0.0.3, fd00::2", "77.88.8.8"),
        # every hop trusted: the leftmost
        ("10.0.0.1", "10.0.0.9, 10.0.0.3", "10.0.0.9"),
        # garbage stops the walk at the last good hop
        ("10.0.0.1", "77.88.8.8, garbage", "10.0.0.1"),
        ("10.0.0.1", "garbage, 77.88.8.8", "77.88.8.8"),
        ("10.0.0.1", "77.88.8.8, 1.2.3.4:80, 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "77.88.8.8, , 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "unknown", "10.0.0.1"),
        # no usable peer
        (None, "77.88.8.8", None),
        ("", "77.88.8.8", None),
        ("not-an-ip", None, None),
        ("unix:/run/herald.sock", "77.88.8.8", None),
    ],
)
def test_client_address(peer: str | None, forwarded_for: str | None, expected: str | None) -> None:
    found = client_address(peer, forwarded_for, TRUSTED)
    assert found == (None if expected is None else ip_address(expected))


def test_client_address_without_trusted_proxies_is_the_peer() -> None:
    assert client_address("10.0.0.1", "77.88.8.8", ()) == IPv4Address("10.0.0.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "x_forwarded_for", "expected"),
    [
        ("8.8.8.8", "for=77.88.8.8", None, "8.8.8.8"),  # untrusted peer: ignored
        ("10.0.0.1", "for=77.88.8.8", None, "77.88.8.8"),
        ("10.0.0.1", 'for="[2a02:6b8::1]:4711";proto=https', None, "2a02:6b8::1"),
        ("10.0.0.1", "for=77.88.8.8:443", None, "77.88.8.8"),
        ("10.0.0.1", "for=1.1.1.1, for=77.88.8.8;by=10.0.0.1, for=10.0.0.3", None, "77.88.8.8"),
        ("10.0.0.1", "for=77.88.8.8, for=unknown", None, "10.0.0.1"),  # not an address: stop
        ("10.0.0.1", "for=77.88.8.8, for=_hidden", None, "10.0.0.1"),
        ("10.0.0.1", "proto=https", None, "10.0.0.1"),  # no for=
        ("10.0.0.1", "For=77.88.8.8", None, "77.88.8.8"),
        # the proxy writes X-Forwarded-For and passes the client's own Forwarded through: a reader
        # who sends Forwarded must not choose their address
        ("10.0.0.1", "for=8.8.8.8", "77.88.8.8", "77.88.8.8"),
    ],
)
def test_client_address_from_forwarded(
    peer: str, forwarded: str, x_forwarded_for: str | None, expected: str
) -> None:
    assert client_address(peer, x_forwarded_for, TRUSTED, forwarded) == ip_address(expected)
