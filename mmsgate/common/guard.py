"""No fetches to where the gateway's own network is: loopback, private, link-local, site-local, multicast,
reserved, and IPv6 addresses that wrap such an IPv4 address (IPv4-mapped, 6to4, NAT64).

A host is resolved once, every address it resolves to is checked, and the connection is made to the
checked address (the request keeps the host name for the Host header and TLS), so a DNS answer that
changes between the check and the connect cannot redirect the fetch.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddress(Exception):
    """The URL's host is (or resolves to) an address the gateway may not fetch from."""


class UnresolvedHost(Exception):
    """The URL's host could not be resolved now (DNS may answer later)."""


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
"""The well-known NAT64 prefix (RFC 6052): the IPv4 address is the last 32 bits."""
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
"""The local-use NAT64 prefix (RFC 8215). Where its IPv4 address sits depends on the local translator's
prefix length; only the /96 form (zeros between the prefix and the last 32 bits) is read, as an IPv4
address, and every other address in it is refused: it may wrap anything."""
_LOCAL_NAT64_96 = ipaddress.ip_network("64:ff9b:1::/96")


def parse_networks(spec: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """A comma-separated list (or iterable) of CIDRs, e.g. ``127.0.0.0/8,::1/128``."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _plain(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64 or address in _LOCAL_NAT64_96:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet; an IPv6 address that wraps an IPv4 one (mapped, 6to4,
    NAT64) is judged by the IPv4 address it wraps."""
    plain = _plain(address)
    if isinstance(plain, ipaddress.IPv6Address) and (plain.is_site_local or plain in _LOCAL_NAT64):
        # fec0::/10 is deprecated but still routed inside some sites; the standard library calls it global
        return False
    return plain.is_global and not plain.is_multicast and not plain.is_reserved


@dataclass(frozen=True, slots=True)
class AddressGuard:
    """Decides which resolved addresses may be fetched from."""

    allowed: tuple[IPNetwork, ...] = ()

    def permits(self, address: IPAddress) -> bool:
        plain = _plain(address)
        if any(plain in net or address in net for net in self.allowed):
            return True
        return is_public(address)

    async def resolve(self, host: str, port: int) -> IPAddress:
        """The address to connect to, after checking every address the host resolves to."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            candidates = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError) as exc:
                raise UnresolvedHost(f"cannot resolve {host}: {exc}") from exc
            candidates = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
            if not candidates:
                raise BlockedAddress(f"{host} resolves to no address")
        refused = [str(a) for a in candidates if not self.permits(a)]
        if refused:
            raise BlockedAddress(f"{host} resolves to a non-public address ({', '.join(refused)})")
        return candidates[0]
