"""Which address is the client's, when trusted proxies relay requests.

Used for the access log and for rate limits, and for nothing else: the localhost
bypass looks only at the socket (see ``authgate.localhost``), and no decision about who
may pass ever rests on a header.

Without trusted proxies (the default) the client is the socket's peer. When the peer is
a trusted proxy, ``Forwarded: for=`` (RFC 7239), else ``X-Forwarded-For``, else
``X-Real-IP`` is read from the right: each address a trusted proxy appended is skipped,
and the first one that is not trusted is the client. The leftmost entries are whatever
the client wrote, so they are only reached when every hop after them is trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from authgate.errors import ConfigurationError
from authgate.facts import RequestFacts

__all__ = ["TrustedProxies", "normalise_address", "parse_networks"]

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"trusted_proxies: {cidr!r} is not an address or CIDR"
            ) from None
    return tuple(networks)


def _parse(value: str) -> Address | None:
    text = value.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def normalise_address(value: str | None) -> str | None:
    """An address as logs and rate limits key it (IPv4-mapped IPv6 as plain IPv4)."""
    if value is None:
        return None
    address = _parse(value)
    return str(address) if address is not None else value


def _forwarded_for(values: list[str]) -> list[str]:
    hops = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, hop = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    hops.append(hop)
    return hops


class TrustedProxies:
    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks = parse_networks(cidrs)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self.networks)

    def client_address(self, facts: RequestFacts) -> str | None:
        """The client's address for logs and rate limits."""
        if not self.networks:
            return normalise_address(facts.peer)
        peer = _parse(facts.peer) if facts.peer else None
        if peer is None or not self.trusts(peer):
            return normalise_address(facts.peer)
        hops = _forwarded_for(facts.header_all("forwarded"))
        if not hops:
            hops = [h for v in facts.header_all("x-forwarded-for") for h in v.split(",")]
        if not hops:
            hops = facts.header_all("x-real-ip")[-1:]
        client = peer
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                break  # garbage written before a trusted hop: keep the last hop we trust
            client = address
            if not self.trusts(address):
                break
        return str(client)
