"""The headers authgate adds, removes and rewrites when a request goes past it.

Shared by the gateway (which forwards the request itself) and forward auth (which tells
nginx, Traefik or Caddy what to add): the identity headers an upstream may trust, the
hop-by-hop headers a proxy must not forward, and the client's credential headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Protocol

from authgate.principal import Principal

__all__ = [
    "ASSERTION_HEADER",
    "HOP_BY_HOP",
    "AssertionSource",
    "IDENTITY_HEADERS",
    "IDENTITY_PREFIX",
    "connection_tokens",
    "identity_headers",
    "is_bearer",
    "is_trusted_peer",
]

# RFC 9110 7.6.1, plus the old Proxy-Connection some clients still send.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Every header with this prefix is authgate's to set: a client's copy is always dropped,
# so an upstream can trust what it finds there.
IDENTITY_PREFIX = b"x-authgate-"
IDENTITY_HEADERS = ("X-Authgate-Key-Id", "X-Authgate-Key-Name", "X-Authgate-Scopes")
# The signed copy of the identity (authgate.assertion), when ``assertion`` is on.
ASSERTION_HEADER = "X-Authgate-Assertion"


class AssertionSource(Protocol):
    """What signs the assertion (``authgate.assertion.issuer.AssertionIssuer``)."""

    def assertion_for(self, principal: Principal) -> str: ...


Network = IPv4Network | IPv6Network


def _header_safe(value: str) -> str:
    # Names and ids are validated where they are created, but a header value must never
    # carry a line break or a byte outside latin-1 whatever reached the store.
    if value.isprintable() and value.isascii():
        return value
    return "".join(ch if ch.isprintable() and ch.isascii() else "?" for ch in value)


def identity_headers(
    principal: Principal, assertions: AssertionSource | None = None
) -> list[tuple[str, str]]:
    """The identity an upstream receives: key id, key name, scopes (comma-separated, sorted),
    and with ``assertions`` the signed ``X-Authgate-Assertion``.

    Scopes are sent even when empty, so an upstream can tell "no scopes" from "header
    stripped by something in between".
    """
    headers = [
        ("X-Authgate-Key-Id", _header_safe(principal.id)),
        ("X-Authgate-Key-Name", _header_safe(principal.name)),
        ("X-Authgate-Scopes", _header_safe(",".join(sorted(principal.scopes)))),
    ]
    if assertions is not None:
        headers.append((ASSERTION_HEADER, assertions.assertion_for(principal)))
    return headers


def is_bearer(value: bytes) -> bool:
    """Whether an ``Authorization`` value is a Bearer credential (authgate's own kind).

    Other schemes (``AWS4-HMAC-SHA256``, ``Basic``) belong to the upstream and pass intact.
    """
    return value[:7].lower() == b"bearer " or value.strip().lower() == b"bearer"


def is_trusted_peer(peer: str | None, networks: Sequence[Network]) -> bool:
    if peer is None or not networks:
        return False
    try:
        address = ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def connection_tokens(values: Iterable[bytes]) -> frozenset[bytes]:
    """Header names a ``Connection`` header declares hop-by-hop for this one message."""
    return frozenset(
        token.strip().lower() for value in values for token in value.split(b",") if token.strip()
    )
