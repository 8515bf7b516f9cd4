"""Who owns the other end of a TCP connection on this machine: the kernel's socket table.

The localhost bypass admits a loopback peer only when the peer's socket belongs to
authgate's own OS user (or root). The peer's socket is the client end of the loopback
connection: the one whose local address and port are the peer's, and whose remote is
the address and port the peer connected to. Its ``uid`` is the user whose process made
the socket: for a request relayed by nginx, the worker's user (``www-data``), not ours.

Two readers, both Linux only:

- ``sock_diag`` (netlink), asked for the one socket with that exact address pair: the
  kernel finds it in its connection hash, so the cost does not grow with the number of
  sockets on the host. Used when the address the peer connected to is known (ASGI
  servers give it as ``scope["server"]``).
- ``/proc/net/tcp`` and ``/proc/net/tcp6``, every row whose local end is the peer's
  (and whose remote end is ours, when known). The kernel prints every socket on the
  host to produce them, which costs milliseconds even on a quiet machine: the fallback,
  for when netlink is refused or the server's address is unknown (WSGI).

Only sockets that a process still holds count: a row in TIME_WAIT, or one whose socket
no file refers to any more (inode 0), has no owner, and its ``uid`` column reads 0,
which would otherwise pass for root. A listening socket is never the peer's.

No answer is cached. A connection's owner cannot change while it stays open, but a cache
keyed by (address, port) would outlive the connection: once the first owner's socket
closes, another user can bind the same port (the table is world-readable, so the port
is known) and inherit the earlier verdict for as long as the entry lives. The exact
netlink lookup is cheap enough to ask the kernel every time.

Written by hand: no library on PyPI reads one socket's owner without pulling in a whole
netlink stack (pyroute2) or every process's file table (psutil).
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

__all__ = [
    "PROC_TABLES",
    "Endpoint",
    "SocketOwners",
    "SocketRow",
    "endpoint",
    "parse_row",
    "supported",
]

IPAddress = IPv4Address | IPv6Address
Endpoint = tuple[IPAddress, int]

PROC_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))

# TCP states as the kernel numbers them (include/net/tcp_states.h).
_TIME_WAIT = 6
_LISTEN = 10
_NEW_SYN_RECV = 12
_OWNERLESS_STATES = frozenset({_TIME_WAIT, _LISTEN, _NEW_SYN_RECV})

# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NO_COOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF
_NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_DIAG_REQUEST = struct.Struct("=BBBBI")  # family, protocol, extensions, pad, states
_SOCKID_PORTS = struct.Struct("!HH")  # source and destination port, network order
_SOCKID_TAIL = struct.Struct("=III")  # interface, cookie (two words)
_DIAG_MESSAGE = struct.Struct("=BBBB")  # family, state, timer, retransmits
_SOCKID_SIZE = 48
_OWNER = struct.Struct("=II")  # uid, inode, after expires, rqueue and wqueue
_OWNER_OFFSET = _NLMSG_HEADER.size + _DIAG_MESSAGE.size + _SOCKID_SIZE + 12
_REPLY_DEADLINE_SECONDS = 1.0


def supported() -> bool:
    """Whether this platform has the socket table the lookup reads (Linux)."""
    return sys.platform.startswith("linux")


def endpoint(address: str, port: int) -> Endpoint | None:
    """An address and port as the table compares them (IPv4-mapped IPv6 as IPv4), or
    ``None`` when they do not parse."""
    try:
        parsed = ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if not 0 < port < 65536:
        return None
    return parsed, port


@dataclass(frozen=True, slots=True)
class SocketRow:
    """One row of ``/proc/net/tcp{,6}``."""

    local: Endpoint
    remote: Endpoint
    state: int
    uid: int
    inode: int

    @property
    def owned(self) -> bool:
        """Held by a process, so its ``uid`` names a real owner."""
        return self.inode != 0 and self.state not in _OWNERLESS_STATES


def _parse_address(text: str) -> Endpoint:
    """``0100007F:1F90`` or the 32-digit IPv6 form: the kernel prints each 32-bit word
    of the address in the host's byte order, the port in hex."""
    address_hex, port_hex = text.split(":")
    raw = bytes.fromhex(address_hex)
    if len(raw) not in (4, 16):
        raise ValueError(f"not an address: {text!r}")
    words = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    if sys.byteorder == "little":
        words = [word[::-1] for word in words]
    parsed: IPAddress = ip_address(b"".join(words))
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed, int(port_hex, 16)


def parse_row(line: str) -> SocketRow:
    """One data row; ``ValueError`` for anything else (the header, a truncated line)."""
    fields = line.split()
    if len(fields) < 10 or not fields[0].endswith(":"):
        raise ValueError(f"not a socket row: {line!r}")
    return SocketRow(
        local=_parse_address(fields[1]),
        remote=_parse_address(fields[2]),
        state=int(fields[3], 16),
        uid=int(fields[7]),
        inode=int(fields[9]),
    )


class SocketOwners:
    """``owners(peer, server)``: the uids owning the peer's socket; empty when unknown.

    ``tables`` are the ``/proc`` files to read; ``netlink=False`` reads only those (the
    tests point them at a missing path to see the lookup fail closed).
    """

    def __init__(self, tables: Sequence[Path] = PROC_TABLES, *, netlink: bool = True) -> None:
        self.tables = tuple(tables)
        self.netlink = netlink and supported()

    def owners(self, peer: Endpoint, server: Endpoint | None) -> frozenset[int]:
        if not supported():
            return frozenset()
        if server is not None and self.netlink:
            try:
                found = _diag_lookup(peer, server)
            except OSError:
                pass  # netlink refused here (a sandbox): the /proc table still answers
            else:
                return frozenset() if found is None else frozenset({found})
        return self._scan(peer, server)

    def _scan(self, peer: Endpoint, server: Endpoint | None) -> frozenset[int]:
        port_hex = f":{peer[1]:04X} "
        uids: set[int] = set()
        for table in self.tables:
            try:
                text = table.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError):
                # One table unreadable: the peer may be in it, so nobody is known.
                return frozenset()
            for row in _rows_with_port(text.splitlines()[1:], port_hex):
                if row.local != peer or not row.owned:
                    continue
                if server is not None and row.remote != server:
                    continue
                uids.add(row.uid)
        return frozenset(uids)


def _rows_with_port(lines: Iterable[str], port_hex: str) -> Iterable[SocketRow]:
    for line in lines:
        if port_hex not in line:  # most rows, without splitting them
            continue
        try:
            yield parse_row(line)
        except ValueError:
            continue


def _packed(address: IPAddress) -> bytes:
    return address.packed.ljust(16, b"\0")


def _diag_lookup(peer: Endpoint, server: Endpoint) -> int | None:
    """The uid of the socket whose local end is ``peer`` and remote end ``server``, asked
    of the kernel by that exact pair; ``None`` when no process holds such a socket."""
    peer_address, peer_port = peer
    server_address, server_port = server
    if peer_address.version != server_address.version:
        return None
    family = socket.AF_INET if peer_address.version == 4 else socket.AF_INET6
    sockid = (
        _SOCKID_PORTS.pack(peer_port, server_port)
        + _packed(peer_address)
        + _packed(server_address)
        + _SOCKID_TAIL.pack(0, _NO_COOKIE, _NO_COOKIE)
    )
    request = _DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES) + sockid
    header = _NLMSG_HEADER.pack(
        _NLMSG_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0
    )
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as link:
        link.settimeout(_REPLY_DEADLINE_SECONDS)
        link.send(header + request)
        reply = link.recv(8192)
    if len(reply) < _NLMSG_HEADER.size:
        raise OSError("short sock_diag reply")
    _length, kind, _flags, _seq, _port = _NLMSG_HEADER.unpack_from(reply)
    if kind == _NLMSG_ERROR:
        (errno,) = struct.unpack_from("=i", reply, _NLMSG_HEADER.size)
        if errno == -2:  # ENOENT: no socket has this address pair
            return None
        raise OSError(-errno, "sock_diag refused the lookup")
    if kind != _SOCK_DIAG_BY_FAMILY or len(reply) < _OWNER_OFFSET + _OWNER.size:
        raise OSError("unexpected sock_diag reply")
    _family, state, _timer, _retransmits = _DIAG_MESSAGE.unpack_from(reply, _NLMSG_HEADER.size)
    ports_at = _NLMSG_HEADER.size + _DIAG_MESSAGE.size
    if _SOCKID_PORTS.unpack_from(reply, ports_at) != (peer_port, server_port):
        return None  # not the socket asked about (a listener the lookup fell back on)
    uid, inode = _OWNER.unpack_from(reply, _OWNER_OFFSET)
    if inode == 0 or state in _OWNERLESS_STATES:
        return None
    return int(uid)
