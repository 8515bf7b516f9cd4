"""The localhost bypass: a request from this machine may pass without a credential.

Decided on the socket's peer alone: ``Host``, ``X-Forwarded-For`` and friends are
written by the client and prove nothing. A request is local when all of these hold:

- its peer address is loopback;
- it carries no forwarding header (a proxy that adds one relays other people);
- the peer's socket belongs to authgate's own OS user, or to root, as the kernel's
  socket table says (``authgate.peercred``). A same-host proxy that adds no header,
  such as a plain nginx ``proxy_pass``, runs its workers as another user
  (``www-data``, ``nobody``): what it relays is not local. Where the owner cannot be
  found (not Linux, the table unreadable, the peer's port unknown) nobody is local.

Modes (setting ``localhost_bypass``): ``on``, ``off``, or ``auto`` (the default), which
turns the bypass on only when every address the server listens on is loopback, so
nobody else can reach it anyway. ``authgate serve`` knows its listeners (the ``host``
setting); middleware inside someone else's server does not, so there ``auto`` is off
unless the adapter is told where its server listens (``listen_host=``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address

from authgate.facts import RequestFacts
from authgate.peercred import SocketOwners, endpoint, supported
from authgate.principal import Principal
from authgate.proxy.client_headers import RELAYED
from authgate.settings import Settings

__all__ = [
    "FORWARDING_HEADERS",
    "LOCAL_PRINCIPAL",
    "LOCAL_UIDS",
    "SYSTEM_SOCKETS",
    "bypass_enabled",
    "describe_bypass",
    "has_forwarding_headers",
    "is_local_request",
    "is_loopback",
    "might_be_local",
]

# Headers that say a proxy relayed the request: the relay kinds of the one table of
# proxy-set names (authgate.proxy.client_headers), which the gateway drops from clients too.
FORWARDING_HEADERS = RELAYED

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


def might_be_local(facts: RequestFacts) -> bool:
    """The checks that need no I/O: a loopback peer and no forwarding header."""
    return is_loopback(facts.peer) and not has_forwarding_headers(facts)


def _own_uid() -> int | None:
    geteuid = getattr(os, "geteuid", None)  # absent on Windows
    return geteuid() if geteuid is not None else None


def _local_uids() -> frozenset[int]:
    own = _own_uid()
    return frozenset({0} if own is None else {0, own})


# Whose sockets are local: this process's effective user, and root (who could act as it
# anyway). Read once: a server that drops privileges later admits only root's sockets.
LOCAL_UIDS = _local_uids()
SYSTEM_SOCKETS = SocketOwners()


def is_local_request(
    facts: RequestFacts,
    sockets: SocketOwners = SYSTEM_SOCKETS,
    local_uids: frozenset[int] = LOCAL_UIDS,
) -> bool:
    """Whether ``facts`` came straight from a process of this user (or root) on this
    machine: the bypass may then apply. Reads the kernel's socket table (I/O)."""
    if not might_be_local(facts) or facts.peer is None or facts.peer_port is None:
        return False
    peer = endpoint(facts.peer, facts.peer_port)
    if peer is None:
        return False
    # A server that names its configured host (0.0.0.0) rather than the connection's
    # own address would match no socket: then only the peer's end is looked for.
    server = (
        endpoint(*facts.server)
        if facts.server is not None and is_loopback(facts.server[0])
        else None
    )
    owners = sockets.owners(peer, server)
    return bool(owners) and owners <= local_uids


def _user_name(uid: int) -> str | None:
    try:
        import pwd
    except ImportError:  # not a POSIX system
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _named(uid: int) -> str:
    name = _user_name(uid)
    return f"uid {uid} ({name})" if name else f"uid {uid}"


def describe_bypass(enabled: bool, local_uids: frozenset[int] = LOCAL_UIDS) -> str:
    """The start-up log's line: whether the bypass is on and whom it admits."""
    if not enabled:
        return "localhost bypass: off (every request needs a credential)"
    if not supported():
        return (
            "localhost bypass: on, but admits nobody: socket owners cannot be looked up "
            "on this platform (Linux only)"
        )
    owners = " or ".join(_named(uid) for uid in sorted(local_uids, reverse=True))
    return (
        "localhost bypass: on: requests without a credential from loopback peers owned by "
        f'{owners} pass as local admin (set localhost_bypass = "off" to require one)'
    )
