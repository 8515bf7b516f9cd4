"""The gateway: a pure ASGI app that forwards every request to one upstream.

It stands behind the authgate middleware, which has already decided who the caller is
and put the ``Principal`` in ``scope["authgate.principal"]``; the gateway only
translates. Bodies stream both ways (a 1 GB upload never sits in memory), the request
target goes upstream byte for byte (SigV4 signs the raw path), and the client's own
credential and identity headers are replaced by the identity authgate vouches for.

aiohttp's client carries the upstream side: as a pass-through proxy client it was about
ten times faster than httpx on the same machine. One ``ClientSession`` per gateway,
opened on first use in the serving event loop, closed by ``aclose()`` or at lifespan
shutdown.

What the upstream sees:

- method, raw path and query exactly as sent; headers as sent, minus hop-by-hop ones,
  ``Expect`` (the server in front already answered ``100 Continue``), every
  ``X-Authgate-*`` header the client sent, and the client's authgate credentials
  (``X-API-Key``, ``Authorization: Bearer``) unless ``forward_credentials`` is set.
  Other ``Authorization`` schemes (``AWS4-HMAC-SHA256``, ``Basic``) are the upstream's
  own and pass untouched.
- ``X-Authgate-Key-Id``, ``X-Authgate-Key-Name``, ``X-Authgate-Scopes`` when the request
  was authenticated.
- ``Host`` as the client sent it (``host_header="client"``, the default: virtual-host
  style S3 and signed ``host`` headers keep working), or the upstream's own
  (``host_header="upstream"``) for upstreams that route on their own name.
- ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` set from the socket; a client's own
  forwarding headers are kept (and appended to) only when its address is a trusted
  proxy, and dropped otherwise.

Failures: upstream unreachable → 502 ``bad_gateway``, no answer in time → 504
``gateway_timeout`` (both in the JSON error shape). An upstream that breaks off a
response already under way cannot be turned into a 502 any more; the client's connection
is then closed without completing the body, so the client sees a truncated response
rather than a short one that looks whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from authgate.errors import (
    AuthgateError,
    ConfigurationError,
    InvalidRequest,
    UpstreamError,
    UpstreamTimeout,
)
from authgate.http import json_error
from authgate.principal import Principal
from authgate.proxies import parse_networks
from authgate.proxyheaders import (
    HOP_BY_HOP,
    IDENTITY_PREFIX,
    connection_tokens,
    identity_headers,
    is_bearer,
    is_trusted_peer,
)
from authgate.s3access import SIGV4_SCOPE_KEY, render_s3
from authgate.settings import Settings

__all__ = [
    "BodyCheck",
    "BodyCheckFactory",
    "ErrorRenderer",
    "Gateway",
    "HostHeader",
    "gateway_from_settings",
    "render_for_client",
    "render_json",
]

log = logging.getLogger("authgate.gateway")

PRINCIPAL_SCOPE_KEY = "authgate.principal"

HostHeader = Literal["client", "upstream"]
# Turns an error into status, headers and body; it gets the request's scope so that, say,
# a SigV4 request can be answered in S3's XML with its request id.
ErrorRenderer = Callable[[Scope, AuthgateError], tuple[int, list[tuple[str, str]], bytes]]


class BodyCheck(Protocol):
    """Checks a request body as it streams past, e.g. a SigV4 payload signature.

    ``feed`` sees every chunk in order; ``finish`` runs once the client has sent the
    whole body. Either may raise an ``AuthgateError``: the upstream request is then
    abandoned before the upstream has the complete body (the last chunk is held back
    until ``finish`` returns), and the client gets the error.
    """

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> None: ...


BodyCheckFactory = Callable[[Scope], BodyCheck | None]

# Responses up to this size are read whole before the status line goes out, so a
# failure half-way through still becomes a clean 502; larger ones stream.
SMALL_BODY = 64 * 1024

_FORWARDING = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-proto",
        b"x-real-ip",
    }
)
_WEBSOCKET_HANDSHAKE = frozenset(
    {
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"sec-websocket-key",
        b"sec-websocket-protocol",
        b"sec-websocket-version",
    }
)
# Close codes that name a situation but may not travel in a close frame (RFC 6455 7.4.1).
_UNSENDABLE_CLOSE = {1005: 1000, 1006: 1001, 1015: 1001}
_BAD_GATEWAY_CLOSE = 1014

Network = IPv4Network | IPv6Network


class _PassThroughRequest(aiohttp.ClientRequest):
    """An aiohttp request that adds no header of its own: no ``Accept``,
    ``Accept-Encoding`` or ``User-Agent`` the client did not send, and (through the skip
    list aiohttp consults before it adds one) no invented ``Content-Type``.

    The session's ``skip_auto_headers`` would do the same by building a fresh skip list
    for every request; this does it once, on the hot path of every proxied request.
    """

    _NO_CONTENT_TYPE: CIMultiDict[None] = CIMultiDict({"Content-Type": None})

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        self._skip_auto_headers = self._NO_CONTENT_TYPE


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class _BodyState:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None


def _empty_body_check(_scope: Scope) -> BodyCheck | None:
    return None


def render_json(_scope: Scope, error: AuthgateError) -> tuple[int, list[tuple[str, str]], bytes]:
    return json_error(error)


def render_for_client(
    scope: Scope, error: AuthgateError
) -> tuple[int, list[tuple[str, str]], bytes]:
    """S3's XML for a request the middleware verified as SigV4 (an S3 client reads
    nothing else), JSON for every other."""
    if scope.get(SIGV4_SCOPE_KEY) is not None:
        return render_s3(error, scope.get("method", "GET"))
    return json_error(error)


class Gateway:
    """A pure ASGI app proxying HTTP and WebSocket requests to ``upstream_url``."""

    def __init__(
        self,
        upstream_url: str,
        *,
        forward_credentials: bool = False,
        host_header: HostHeader = "client",
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        max_connections: int = 1000,
        trusted_proxies: Sequence[Network] = (),
        ssl_context: ssl.SSLContext | None = None,
        body_check: BodyCheckFactory | None = None,
        render_error: ErrorRenderer = render_for_client,
    ) -> None:
        url = URL(upstream_url)
        if url.scheme not in {"http", "https"} or not url.host:
            raise ConfigurationError(
                f"upstream {upstream_url!r} must be an http:// or https:// URL with a host"
            )
        if url.query_string or url.fragment or url.user:
            raise ConfigurationError(
                f"upstream {upstream_url!r} must not carry a query, fragment or user"
            )
        if host_header not in ("client", "upstream"):
            raise ConfigurationError("host_header must be 'client' or 'upstream'")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ConfigurationError("upstream timeouts must be positive")
        self.upstream = url
        base_path = url.raw_path.rstrip("/")
        self._http_base = f"{url.scheme}://{url.raw_authority}{base_path}"
        ws_scheme = "wss" if url.scheme == "https" else "ws"
        self._ws_base = f"{ws_scheme}://{url.raw_authority}{base_path}"
        self.forward_credentials = forward_credentials
        self.host_header = host_header
        # Only the socket-level timeouts: each of the others arms a timer per request, and
        # that was a measurable share of a proxied request's cost. sock_connect bounds a
        # new connection, sock_read the wait for each byte of the answer.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._max_connections = max_connections
        self._trusted = tuple(trusted_proxies)
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._body_check = body_check or _empty_body_check
        self._has_body_check = body_check is not None
        self._render_error = render_error
        self._session: aiohttp.ClientSession | None = None

        # Precomputed once: the headers that never go upstream as the client sent them.
        always = HOP_BY_HOP | {b"expect", b"host"} | _FORWARDING
        if not forward_credentials:
            always = always | {b"x-api-key"}
        self._drop = always
        self._drop_ws = always | _WEBSOCKET_HANDSHAKE

    # -- the session ---------------------------------------------------------------
    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            ttl_dns_cache=60,
            # Shorter than common servers' own idle timeouts (uvicorn and Node keep 5 s), so
            # a pooled connection is not reused just as the upstream closes it.
            keepalive_timeout=4,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            # A proxy passes bodies as they are: no decompression, no cookie memory
            # shared between clients, no environment proxies, no headers of its own.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            request_class=_PassThroughRequest,
            read_bufsize=256 * 1024,
        )
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- ASGI ------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- headers -----------------------------------------------------------------------
    def upstream_headers(
        self, scope: Scope, *, websocket: bool = False
    ) -> tuple[list[tuple[str, str]], bytes | None, bool]:
        """The headers to send upstream, the client's Content-Length, and whether the
        client's body is chunked."""
        drop = self._drop_ws if websocket else self._drop
        strip_bearer = not self.forward_credentials
        peer = scope.get("client")
        peer_ip: str | None = peer[0] if peer else None
        trusted = bool(self._trusted) and is_trusted_peer(peer_ip, self._trusted)
        headers: list[tuple[str, str]] = []
        content_length: bytes | None = None
        chunked = False
        host: bytes | None = None
        connection: list[bytes] | None = None
        prior: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in drop:
                if name == b"host":
                    host = value
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    connection = [*(connection or ()), value]
                elif trusted and name in _FORWARDING:
                    prior[name] = prior[name] + b", " + value if name in prior else value
                continue
            if name.startswith(IDENTITY_PREFIX):
                continue
            if name == b"authorization" and strip_bearer and is_bearer(value):
                continue
            if name == b"content-length":
                content_length = value
            headers.append((name.decode("latin-1"), value.decode("latin-1")))

        if chunked and content_length is not None:
            # Both framings at once (RFC 9112 6.3): chunked wins, and a Content-Length
            # forwarded beside a de-chunked body would desynchronise the upstream.
            headers = [item for item in headers if item[0] != "content-length"]
            content_length = None
        if connection is not None:
            # Headers the client's Connection header made hop-by-hop stop here too.
            named = {token.decode("latin-1") for token in connection_tokens(connection)}
            headers = [item for item in headers if item[0] not in named]
        if host is not None and self.host_header == "client":
            headers.append(("host", host.decode("latin-1")))

        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        if isinstance(principal, Principal):
            headers.extend(identity_headers(principal))

        for name in (b"forwarded", b"x-real-ip", b"x-forwarded-port", b"x-forwarded-prefix"):
            if name in prior:
                headers.append((name.decode(), prior[name].decode("latin-1")))
        earlier = prior.get(b"x-forwarded-for")
        if peer_ip is not None:
            chain = f"{earlier.decode('latin-1')}, {peer_ip}" if earlier else peer_ip
            headers.append(("x-forwarded-for", chain))
        scheme = scope.get("scheme", "http")
        proto = prior.get(b"x-forwarded-proto")
        headers.append(
            (
                "x-forwarded-proto",
                proto.decode("latin-1")
                if proto
                else ("https" if scheme in ("https", "wss") else "http"),
            )
        )
        # X-Forwarded-Host only says something when the upstream's Host is not the
        # client's: with the client's Host passed through it would repeat it.
        forwarded_host = prior.get(b"x-forwarded-host")
        if forwarded_host is None and self.host_header == "upstream":
            forwarded_host = host
        if forwarded_host is not None:
            headers.append(("x-forwarded-host", forwarded_host.decode("latin-1")))
        return headers, content_length, chunked

    def _target(self, scope: Scope, base: str) -> URL:
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
        if not path.startswith("/"):
            raise InvalidRequest("The request target must be a path.")
        query: bytes = scope.get("query_string", b"")
        if query:
            path = f"{path}?{query.decode('latin-1')}"
        # encoded=True: the bytes the client sent are the bytes the upstream gets; a
        # re-quoted path would break SigV4 signatures and change what the upstream routes.
        return URL(base + path, encoded=True)

    # -- HTTP --------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            url = self._target(scope, self._http_base)
        except AuthgateError as exc:
            await self._send_error(scope, send, exc)
            return
        headers, content_length, chunked = self.upstream_headers(scope)
        check = self._body_check(scope) if self._has_body_check else None
        state = _BodyState()
        data: bytes | AsyncIterator[bytes] | None = None
        try:
            if chunked or (content_length is not None and content_length != b"0"):
                data = await self._request_body(receive, check, state)
            else:
                state.done = True
                if check is not None:
                    check.finish()
        except _ClientGone:
            return
        except AuthgateError as exc:
            await self._send_error(scope, send, exc)
            return

        session = self._session or self._open_session()
        started = False
        try:
            async with session.request(
                scope["method"], url, headers=headers, data=data, allow_redirects=False
            ) as response:
                start = {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": _response_headers(response.raw_headers),
                }
                length = response.content_length
                if length is not None and length <= SMALL_BODY:
                    body = await response.read()
                    started = True
                    await send(start)
                    await send({"type": "http.response.body", "body": body})
                    return
                started = True
                await send(start)
                await self._stream_response(response, receive, send, state)
        except _ClientGone:
            return
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if state.error is not None:
                if isinstance(state.error, _ClientGone):
                    return
                if isinstance(state.error, AuthgateError) and not started:
                    await self._send_error(scope, send, state.error)
                    return
            if started:
                # Too late for a 502: end the connection so the truncation shows.
                log.warning("upstream %s broke off a response: %r", url.raw_path, exc)
                return
            await self._send_error(scope, send, self._upstream_failure(exc, url))

    async def _request_body(
        self, receive: Receive, check: BodyCheck | None, state: _BodyState
    ) -> bytes | AsyncIterator[bytes]:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        first: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            state.done = True
            if check is not None:
                check.feed(first)
                check.finish()
            return first
        return self._stream_request(first, receive, check, state)

    async def _stream_request(
        self, first: bytes, receive: Receive, check: BodyCheck | None, state: _BodyState
    ) -> AsyncIterator[bytes]:
        # Errors are recorded before they propagate: aiohttp wraps whatever the body
        # iterator raises, and the handler needs the original to answer the client.
        try:
            if check is None:
                if first:
                    yield first
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunk = message.get("body", b"")
                    if chunk:
                        yield chunk
                    if not message.get("more_body", False):
                        break
            else:
                # One chunk held back: the upstream gets the last bytes only after the
                # check has accepted the whole body, so a bad body is never complete there.
                check.feed(first)
                held = first
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunk = message.get("body", b"")
                    if chunk:
                        check.feed(chunk)
                        if held:
                            yield held
                        held = chunk
                    if not message.get("more_body", False):
                        break
                check.finish()
                if held:
                    yield held
            state.done = True
        except BaseException as exc:
            state.error = exc
            raise

    async def _stream_response(
        self, response: aiohttp.ClientResponse, receive: Receive, send: Send, state: _BodyState
    ) -> None:
        gone = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        if state.done:
            # Once the request body is in, receive() only ever reports a disconnect:
            # watch for it so a client that hangs up does not keep a large download going.
            watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        try:
            count = 0
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if gone.is_set():
                    return
                count += 1
                if not count % _YIELD_EVERY:
                    # After a disconnect the server's send() returns without suspending,
                    # and a buffered upstream never makes iter_any() wait: yield now and
                    # then, or the watcher would not run until the download ran dry.
                    await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    def _upstream_failure(self, exc: BaseException, url: URL) -> AuthgateError:
        if isinstance(exc, TimeoutError):
            log.warning("upstream %s timed out: %r", url.raw_path, exc)
            return UpstreamTimeout()
        log.warning("upstream %s failed: %r", url.raw_path, exc)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return UpstreamError("The upstream service cannot be reached.")
        return UpstreamError()

    async def _send_error(self, scope: Scope, send: Send, error: AuthgateError) -> None:
        status, headers, body = self._render_error(scope, error)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    # -- WebSocket ---------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        try:
            url = self._target(scope, self._ws_base)
        except AuthgateError as exc:
            await self._deny_websocket(scope, send, exc)
            return
        headers, _length, _chunked = self.upstream_headers(scope, websocket=True)
        # The middleware has already taken a credential subprotocol out of this list.
        protocols = list(scope.get("subprotocols", ()))
        session = self._session or self._open_session()
        try:
            upstream = await session.ws_connect(
                url,
                headers=headers,
                protocols=protocols,
                autoclose=False,
                autoping=True,
                max_msg_size=0,
                compress=0,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await self._deny_websocket(scope, send, self._upstream_failure(exc, url))
            return
        try:
            await send({"type": "websocket.accept", "subprotocol": upstream.protocol})
            await _pump_websocket(upstream, receive, send)
        finally:
            await upstream.close()

    async def _deny_websocket(self, scope: Scope, send: Send, error: AuthgateError) -> None:
        if "websocket.http.response" in scope.get("extensions", {}):
            status, headers, body = self._render_error(scope, error)
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1014 if error.status == 502 else 1011})


# The server in front adds its own Date and Server to every answer (as nginx does, the
# upstream's are dropped rather than sent twice).
_RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server"}


def gateway_from_settings(settings: Settings, **options: Any) -> Gateway:
    """The gateway ``authgate serve --upstream`` runs, from the settings."""
    if settings.upstream_url is None:
        raise ConfigurationError("no upstream: set --upstream or upstream_url")
    ssl_context = None
    if settings.upstream_ca_file is not None:
        try:
            ssl_context = ssl.create_default_context(cafile=str(settings.upstream_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"upstream_ca_file {settings.upstream_ca_file}: {exc}"
            ) from None
    return Gateway(
        settings.upstream_url,
        forward_credentials=settings.forward_credentials,
        host_header=settings.upstream_host_header,
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=settings.upstream_max_connections,
        trusted_proxies=parse_networks(settings.trusted_proxies),
        ssl_context=ssl_context,
        **options,
    )


def _response_headers(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    connection: list[bytes] | None = None
    for name, value in raw:
        lower = name.lower()
        if lower in _RESPONSE_DROP:
            if lower == b"connection":
                connection = [*(connection or ()), value]
            continue
        headers.append((lower, value))
    if connection is not None:
        named = connection_tokens(connection)
        headers = [item for item in headers if item[0] not in named]
    return headers


_YIELD_EVERY = 16  # response chunks between two chances for the disconnect watcher


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


def _sendable(code: int | None) -> int:
    if code is None:
        return 1000
    return _UNSENDABLE_CLOSE.get(code, code)


async def _pump_websocket(
    upstream: aiohttp.ClientWebSocketResponse[Any], receive: Receive, send: Send
) -> None:
    """Frames both ways until either side closes; the close code travels across."""

    async def client_to_upstream() -> None:
        while True:
            message: Message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    await upstream.send_str(text)
                else:
                    await upstream.send_bytes(message.get("bytes") or b"")
            elif kind == "websocket.disconnect":
                code = _sendable(message.get("code"))
                reason = message.get("reason") or ""
                await upstream.close(code=code, message=reason.encode())
                return

    async def upstream_to_client() -> None:
        while True:
            msg = await upstream.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": msg.data})
            elif msg.type is aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": msg.data})
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                code = _sendable(msg.data)
                await send({"type": "websocket.close", "code": code, "reason": msg.extra or ""})
                # Echo the upstream's code back, as the closing handshake expects.
                await upstream.close(code=code)
                return
            else:
                # The upstream went away without a closing handshake.
                await send({"type": "websocket.close", "code": _BAD_GATEWAY_CLOSE})
                return

    tasks = {
        asyncio.create_task(client_to_upstream()),
        asyncio.create_task(upstream_to_client()),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.debug("websocket pump ended: %r", result)
