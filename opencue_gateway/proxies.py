"""Who the client is behind reverse proxies (TRUSTED_PROXIES).

A proxy in front of the gateway connects from its own address and says whom
it serves in ``Forwarded`` (RFC 7239) or ``X-Forwarded-For``.  Those headers
are only believed from peers in TRUSTED_PROXIES: the client is the
rightmost address in the chain that is not a trusted proxy (what nginx's
``real_ip_recursive`` and Envoy's ``xff_num_trusted_hops`` compute), so a
client cannot claim another address by sending the header itself.  From
any other peer, the peer's own address is the client.

The result names the client in the access log, the audit log and the
per-address rate limit for failed logins.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from twisted.web.http_headers import Headers

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Hops examined at most: a header with thousands of entries costs no more than this.
MAX_HOPS = 32
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_FORWARDED_FOR = re.compile(r'(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]+)', re.IGNORECASE)


def parse_networks(text: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES: comma-separated addresses or CIDR blocks (``10.0.0.0/8, ::1``)."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"expected addresses or CIDR blocks like 10.0.0.0/8 or ::1; {item!r} is not one"
            ) from None
    return tuple(networks)


class TrustedProxies:
    """Decides the client address of a request from its peer and forwarding headers."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._networks = tuple(networks)

    def trusts(self, address: str | None) -> bool:
        """Is this address one of the trusted proxies?"""
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self._networks)

    def client(self, peer: str | None, headers: Headers) -> str | None:
        """The client's address: the peer, or from a trusted peer the rightmost untrusted hop."""
        if not self._networks or not self.trusts(peer):
            return peer
        chain = _forwarded_chain(headers)
        for hop in reversed(chain):
            if not self.trusts(hop):
                return hop
        return chain[0] if chain else peer


def _forwarded_chain(headers: Headers) -> list[str]:
    """The addresses a proxy chain reports, oldest first: Forwarded, else X-Forwarded-For."""
    forwarded = headers.getRawHeaders(b"forwarded")
    if forwarded:
        hops = [match.group(1).strip('"') for value in forwarded
                for match in _FORWARDED_FOR.finditer(value.decode("latin-1"))]
    else:
        hops = [hop.strip() for value in headers.getRawHeaders(b"x-forwarded-for") or []
                for hop in value.decode("latin-1").split(",")]
    return [_host_of(hop) for hop in hops if hop][-MAX_HOPS:]


def _shown(hop: str) -> str:
    """A hop that is not an address is kept if it is a plain token (RFC 7239's ``unknown``,
    obfuscated ``_hidden``), else replaced: it ends up in logs."""
    if _address(hop) is not None or _TOKEN.match(hop):
        return hop
    return "unknown"


def _host_of(hop: str) -> str:
    """An address without its port or brackets (``[2001:db8::1]:4711`` -> ``2001:db8::1``)."""
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    return _shown(hop)


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, IPv4-mapped IPv6 addresses as IPv4; None for anything else."""
    if not text:
        return None
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed
