"""The localhost bypass: a request from this machine may pass without a credential.

Decided on the socket's peer address alone: ``Host``, ``X-Forwarded-For`` and friends
are written by the client and prove nothing. A request that carries any forwarding
header is never local, because a reverse proxy on the same host would otherwise make
every visitor it relays look like localhost.

Modes (setting ``localhost_bypass``): ``on``, ``off``, or ``auto`` (the default), which
turns the bypass on only when every address the server listens on is loopback, so
nobody else can reach it anyway. ``authgate serve`` knows its listeners (the ``host``
setting); middleware inside someone else's server does not, so there ``auto`` is off
unless the adapter is told where its server listens (``listen_host=``).
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address

from authgate.facts import RequestFacts
from authgate.principal import Principal
from authgate.settings import Settings

__all__ = [
    "FORWARDING_HEADERS",
    "LOCAL_PRINCIPAL",
    "bypass_enabled",
    "has_forwarding_headers",
    "is_local_request",
    "is_loopback",
]

# Headers that say a proxy relayed the request (RFC 7239 and the de-facto ones).
FORWARDING_HEADERS = frozenset(
    {
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-real-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "via",
    }
)
FORWARDING_HEADERS_BYTES = frozenset(name.encode() for name in FORWARDING_HEADERS)

# The bypassed caller acts as the machine's owner: every application scope and the admin
# role. authgate's own management routes never honour the bypass (see the middleware).
LOCAL_PRINCIPAL = Principal(
    id="local", name="localhost", kind="local", scopes=frozenset({"*"}), role="admin"
)


@lru_cache(maxsize=4096)
def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped ::ffff:127.x; anything unparsable is not."""
    if not address:
        return False
    try:
        parsed = ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return isinstance(parsed, IPv4Address | IPv6Address) and parsed.is_loopback


def bypass_enabled(settings: Settings, listen_host: str | None) -> bool:
    """``listen_host``: where the server listens (comma-separated), ``None`` if unknown."""
    if settings.localhost_bypass == "auto":
        if listen_host is None:
            return False
        return settings.model_copy(update={"host": listen_host}).listens_on_loopback_only
    return settings.localhost_bypass == "on"


def has_forwarding_headers(facts: RequestFacts) -> bool:
    return any(name in FORWARDING_HEADERS for name, _ in facts.headers)


def is_local_request(facts: RequestFacts) -> bool:
    """Whether ``facts`` came straight from this machine (the bypass may then apply)."""
    return is_loopback(facts.peer) and not has_forwarding_headers(facts)
