"""TRUSTED_PROXIES: parsing, and the rightmost-untrusted-hop rule."""

from __future__ import annotations

import pytest
from twisted.web.http_headers import Headers

from opencue_gateway.proxies import MAX_HOPS, TrustedProxies, parse_networks

PROXIES = TrustedProxies(parse_networks("10.0.0.0/8, 192.168.1.1, ::1"))


def headers(**values: str) -> Headers:
    return Headers({name.replace("_", "-").encode(): [value.encode()]
                    for name, value in values.items()})


@pytest.mark.parametrize(("peer", "given", "client"), [
    ("10.0.0.2", {"x_forwarded_for": "198.51.100.4"}, "198.51.100.4"),
    ("10.0.0.2", {"x_forwarded_for": "1.1.1.1, 198.51.100.4, 10.2.2.2"}, "198.51.100.4"),
    ("10.0.0.2", {"x_forwarded_for": "10.3.3.3, 10.2.2.2"}, "10.3.3.3"),
    ("10.0.0.2", {}, "10.0.0.2"),
    ("::ffff:10.0.0.2", {"x_forwarded_for": "198.51.100.4"}, "198.51.100.4"),
    ("::1", {"forwarded": 'for="[2001:db8::5]:443", for=192.168.1.1'}, "2001:db8::5"),
    ("10.0.0.2", {"x_forwarded_for": "198.51.100.4:5555"}, "198.51.100.4"),
    ("10.0.0.2", {"forwarded": "for=unknown"}, "unknown"),
    ("10.0.0.2", {"x_forwarded_for": "evil\u001b[31m"}, "unknown"),
    ("203.0.113.9", {"x_forwarded_for": "127.0.0.1"}, "203.0.113.9"),
    (None, {"x_forwarded_for": "127.0.0.1"}, None),
])
def test_the_client_is_the_rightmost_untrusted_hop(peer, given, client):
    """Headers count only from trusted peers; trusted hops are skipped from the right."""
    assert PROXIES.client(peer, headers(**given)) == client


def test_without_trusted_proxies_headers_never_count():
    """The default trusts nobody: the peer is the client, whatever it claims."""
    assert TrustedProxies(()).client("10.0.0.2", headers(x_forwarded_for="1.2.3.4")) == "10.0.0.2"


def test_a_huge_chain_costs_a_bounded_walk():
    """Thousands of hops: only the last MAX_HOPS are looked at; all trusted -> the leftmost of
    those."""
    chain = ", ".join(["10.9.9.9"] * 5000)
    assert PROXIES.client("10.0.0.2", headers(x_forwarded_for=chain)) == "10.9.9.9"
    assert MAX_HOPS < 5000


@pytest.mark.parametrize("text", ["10.0.0.0/33", "proxy.example", "10.0.0.0/8, nope"])
def test_bad_networks_are_named(text):
    """A value that is not an address or CIDR block is refused naming it."""
    with pytest.raises(ValueError, match="expected addresses or CIDR blocks"):
        parse_networks(text)


def test_the_setting_reaches_the_config():
    """TRUSTED_PROXIES is read and parsed by the settings model."""
    from opencue_gateway.config import ConfigError
    from tests.conftest import make_config

    assert [str(n) for n in make_config(TRUSTED_PROXIES="10.0.0.0/8").trusted_proxies] == [
        "10.0.0.0/8"]
    assert make_config().trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"^TRUSTED_PROXIES: expected addresses"):
        make_config(TRUSTED_PROXIES="everyone")
