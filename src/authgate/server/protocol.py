"""Connection limits for ``authgate serve``: header size, header-read time, connections per
client address.

uvicorn offers none of these for its httptools protocol (the default): httptools keeps
a request head however large it grows, a connection that never finishes its head stays
open, and one address may open any number of connections. So they are written here, as
a small subclass of uvicorn's ``HttpToolsProtocol`` handed to ``uvicorn.run(http=...)``:

- a request head (request line and headers) larger than ``max_header_bytes`` gets 431
  and the connection closes; bytes are counted as they arrive, so an unfinished head
  never holds more than the limit plus one read;
- a head not complete within ``header_timeout`` of the connection's start (or of the end
  of the previous response) closes the connection, with 408 if part of it came;
- an address holding ``max_connections_per_client`` connections gets 503 on the next
  one, which closes at once; trusted proxies are not counted (every client behind one
  shares its address).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from authgate.settings import Settings
from authgate.trusted_proxies import TrustedProxies, normalise_address

__all__ = [
    "ConnectionLimits",
    "WorkerHttpProtocol",
    "connection_limits",
    "limited_http_protocol",
    "use_worker_limits",
]


@dataclass
class ConnectionLimits:
    max_header_bytes: int
    header_timeout: float
    max_connections_per_client: int  # 0: no cap
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # Open connections per client address, shared by every connection of one server.
    open_per_client: Counter[str] = field(default_factory=Counter)

    def counts(self, address: str) -> bool:
        """Whether connections from ``address`` count against the cap."""
        if self.max_connections_per_client == 0:
            return False
        try:
            return not self.trusted_proxies.trusts(ip_address(address))
        except ValueError:
            return True


def _answer(status: int, reason: str, code: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail, "code": code}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "cache-control: no-store\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


HEADERS_TOO_LARGE = 431
_TIMEOUT_ANSWER = _answer(408, "Request Timeout", "timeout", "The request headers came too slowly.")
_BUSY_ANSWER = _answer(
    503,
    "Service Unavailable",
    "too_many_connections",
    "Too many open connections from this address.",
)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with authgate's connection limits."""

    limits: ClassVar[ConnectionLimits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_bytes = 0  # of the request head being read
        self._reading_head = True  # False from a head's end to its request's end
        self._head_timer: asyncio.TimerHandle | None = None
        self._counted_as: str | None = None
        self._refused = False

    # -- the connection --------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = normalise_address(self.client[0]) if self.client else None
        limits = self.limits
        if address is not None and limits.counts(address):
            if limits.open_per_client[address] >= limits.max_connections_per_client:
                self._refuse(_BUSY_ANSWER)
                return
            limits.open_per_client[address] += 1
            self._counted_as = address
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._uncount()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        if self._refused:
            return
        # The WebSocket protocol takes the connection over; its end is not seen here.
        self._uncount()
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        # The rest of a refused read still passes the parser; its complaints go unsent.
        if not self._refused:
            super().send_400_response(msg)

    def _uncount(self) -> None:
        address, self._counted_as = self._counted_as, None
        if address is not None:
            remaining = self.limits.open_per_client[address] - 1
            if remaining > 0:
                self.limits.open_per_client[address] = remaining
            else:
                del self.limits.open_per_client[address]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still inside the head after this read: everything counted belongs to it.
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse_too_large()

    # -- parser callbacks ----------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        # The exact size of the complete head (a read may also carry body bytes).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse_too_large()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._reading_head and not self.pipeline and not self.transport.is_closing():
            self._arm_head_timer()

    # -- limits ----------------------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._reading_head:
            return
        if self._head_bytes:
            self._refuse(_TIMEOUT_ANSWER)
        else:
            self._refuse(b"")  # an idle connection: closed without a word

    def _refuse_too_large(self) -> None:
        limit = self.limits.max_header_bytes
        self._refuse(
            _answer(
                HEADERS_TOO_LARGE,
                "Request Header Fields Too Large",
                "headers_too_large",
                f"The request headers are larger than {limit} bytes.",
            )
        )

    def _refuse(self, answer: bytes) -> None:
        self._refused = True
        self._cancel_head_timer()
        if answer:
            self.transport.write(answer)
        self.transport.close()


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        settings.max_header_bytes,
        settings.header_timeout,
        settings.max_connections_per_client,
        TrustedProxies(settings.trusted_proxies),
    )


def limited_http_protocol(settings: Settings) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.run(http=...)`` with the settings' limits (one per
    server: its connections share the per-address counts)."""

    class ServerProtocol(LimitedHttpToolsProtocol):
        pass

    ServerProtocol.limits = connection_limits(settings)
    return ServerProtocol


class WorkerHttpProtocol(LimitedHttpToolsProtocol):
    """The protocol of each ``serve --workers`` process. uvicorn pickles its config to
    start a worker, so the class must be importable by name; each worker sets its limits
    with ``use_worker_limits`` while it builds its app, before its first connection."""


def use_worker_limits(settings: Settings) -> None:
    WorkerHttpProtocol.limits = connection_limits(settings)
