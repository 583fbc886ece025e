"""The client's address: the TCP peer, or the X-Forwarded-For entry a trusted proxy added.

Only proxies listed in ``OFFICEFLOW_AUTH_TRUSTED_PROXIES`` are believed; otherwise anyone could rotate
a made-up header to dodge per-address login throttling.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _trusted() -> tuple[Network, ...]:
    from include.officeflow.settings import get_settings

    return _networks(tuple(get_settings().auth_trusted_proxies))


def _ip(value: str) -> str | None:
    """``value`` as a normalised IP address (``[::1]:443`` and ``10.0.0.1:80`` lose their port), or None."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _is_trusted(address: str) -> bool:
    ip = _ip(address)
    return ip is not None and any(ipaddress.ip_address(ip) in network for network in _trusted())


def from_scope(peer: str, forwarded_for: str | None) -> str:
    """Walk X-Forwarded-For from the right while the hop is a trusted proxy; the first other hop is the client.

    An entry that is no IP address ends the walk at the last trusted hop: only a client writes such a thing,
    and a made-up value must not become an address of its own (a fresh throttling budget per value)."""
    address = _ip(peer) or peer
    if forwarded_for and _is_trusted(address):
        for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
            ip = _ip(hop)
            if ip is None:
                break
            address = ip
            if not _is_trusted(ip):
                break
    return address[:64]


def client_address(connection: HTTPConnection) -> str:
    peer = connection.client.host if connection.client else ""
    return from_scope(peer, connection.headers.get("x-forwarded-for"))
