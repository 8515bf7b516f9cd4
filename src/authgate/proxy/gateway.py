"""The gateway: a pure ASGI app that forwards every request to one upstream.

It stands behind the authgate middleware, which has already decided who the caller is
and put the ``Principal`` in ``scope["authgate.principal"]``; the gateway only
translates. Bodies stream both ways (a 1 GB upload never sits in memory), the request
target goes upstream byte for byte (SigV4 signs the raw path), and the client's own
credential and identity headers are replaced by the identity authgate vouches for.

aiohttp's client carries the upstream side: chosen over httpx by measurement as a
pass-through proxy client (``bench/bench_http.py``). One ``ClientSession`` per gateway,
opened on first use in the serving event loop, closed by ``aclose()`` or at lifespan
shutdown.

What the upstream sees:

- method, raw path and query exactly as sent; headers as sent, minus hop-by-hop ones,
  ``Expect`` (the server in front already answered ``100 Continue``), every
  ``X-Authgate-*`` header the client sent, and the client's authgate credentials
  (``X-API-Key``, ``Authorization: Bearer``) unless ``forward_credentials`` is set.
  Other ``Authorization`` schemes (``AWS4-HMAC-SHA256``, ``Basic``) are the upstream's
  own and pass untouched.
- never a client's copy of a proxy-set header (``authgate.proxy.client_headers``: client
  address, original scheme/host/URL, a proxy's user, method overrides) unless kept by
  ``keep_headers``, nor a name with ``_`` (an upstream may fold it into one of those, or
  into ``X-Authgate-*``) unless ``underscore_headers``, nor a name that is no token.
- ``X-Authgate-Key-Id``, ``X-Authgate-Key-Name``, ``X-Authgate-Scopes`` when the request
  was authenticated, and ``X-Authgate-Assertion`` (a signed JWT, ``authgate.assertion``)
  with ``assertion`` on.
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
from functools import partial
from ipaddress import IPv4Network, IPv6Network
from time import perf_counter
from typing import Any, Literal, Protocol
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from authgate.adapters.scope import (
    PRINCIPAL_SCOPE_KEY,
    Receive,
    Scope,
    Send,
    closing_if_unread,
    host_problem_of,
    send_error,
)
from authgate.assertion import assertions_from_settings
from authgate.errors import (
    AuthgateError,
    ConfigurationError,
    InvalidRequest,
    UpstreamError,
    UpstreamTimeout,
)
from authgate.http import json_error
from authgate.metrics import record_upstream, record_upstream_failure
from authgate.principal import Principal
from authgate.proxy.client_headers import (
    PROXY_FACTS,
    RELAYED,
    REWRITTEN,
    is_token,
    normal_form,
    normal_forms,
)
from authgate.proxy.header_rules import (
    HOP_BY_HOP,
    IDENTITY_PREFIX,
    AssertionSource,
    connection_tokens,
    identity_headers,
    is_bearer,
    is_trusted_peer,
)
from authgate.proxy.websocket import pump_websocket
from authgate.s3.access import SIGV4_SCOPE_KEY, render_s3
from authgate.settings import Settings
from authgate.trusted_proxies import parse_networks

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

_FORWARDING = frozenset(name.encode() for name in REWRITTEN)
# Proxy-set facts a client may have written (the one table, authgate.proxy.client_headers).
_PROXY_FACTS = frozenset(name.encode() for name in PROXY_FACTS)
_RELAYED = frozenset(name.encode() for name in RELAYED)
# Gateway._verdict's answers: a client's header goes upstream as it is, is dropped, or
# needs the full look (its value or the peer decides).
_FORWARD, _DROP, _JUDGE = 0, 1, 2
_VERDICTS_KEPT = 4096
_WEBSOCKET_HANDSHAKE = frozenset(
    {
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"sec-websocket-key",
        b"sec-websocket-protocol",
        b"sec-websocket-version",
    }
)

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
        keep_headers: Iterable[str] = (),
        underscore_headers: bool = False,
        assertions: AssertionSource | None = None,
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
        self.assertions = assertions
        # Only the socket-level timeouts: each of the others arms a timer per request, which
        # every proxied request pays for. sock_connect bounds a new connection, sock_read
        # the wait for each byte of the answer.
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
        # Names an upstream that folds case and "_" could read as one authgate handles.
        self._reserved = (
            always
            | _WEBSOCKET_HANDSHAKE
            | _PROXY_FACTS
            | {b"x-api-key", b"authorization", b"content-length", b"content-type"}
        )
        # As the operator spelled them (lowercase), so that "x_user" keeps only that name.
        kept = frozenset(name.strip().lower().encode() for name in keep_headers)
        invalid = sorted(name.decode() for name in kept if not is_token(name))
        if invalid:
            raise ConfigurationError(f"forward_headers_keep: {invalid} are not header names")
        own = (self._reserved - _PROXY_FACTS) | _FORWARDING
        refused = sorted(
            name.decode()
            for name in normal_forms(keep_headers)
            if name in own or name.startswith(IDENTITY_PREFIX)
        )
        if refused:
            raise ConfigurationError(
                f"forward_headers_keep: authgate sets or handles {', '.join(refused)} itself"
            )
        # A kept relay fact is believed only from a trusted proxy, like X-Forwarded-For.
        self._keep_trusted = frozenset(name for name in kept if normal_form(name) in _RELAYED)
        self._keep_any = kept - self._keep_trusted
        self._underscores = underscore_headers
        self._verdicts: dict[bytes, int] = {}

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
        verdicts = self._verdicts
        for raw_name, value in scope["headers"]:
            verdict = verdicts.get(raw_name)
            if verdict is None:
                verdict = self._verdict(raw_name)
            if verdict == _FORWARD:
                headers.append((raw_name.decode("latin-1"), value.decode("latin-1")))
                continue
            if verdict == _DROP:
                continue
            # ASGI servers send names lowercase; one that does not must not slip past.
            name = raw_name.lower()
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
            if name in self._keep_any or (trusted and name in self._keep_trusted):
                headers.append((name.decode("latin-1"), value.decode("latin-1")))
                continue
            if name in _PROXY_FACTS or not self._forwardable_name(name):
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
            headers.extend(identity_headers(principal, self.assertions))

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

    def _verdict(self, raw_name: bytes) -> int:
        """What becomes of a header name whatever its value and the peer: remembered, as
        the same few names come with every request (up to a bound, as clients choose
        them); a name whose fate depends on either is judged in full each time."""
        name = raw_name.lower()
        if (
            name != raw_name
            or name in self._drop_ws
            or name in (b"authorization", b"content-length")
            or name in self._keep_any
            or name in self._keep_trusted
        ):
            verdict = _JUDGE
        elif (
            name.startswith(IDENTITY_PREFIX)
            or name in _PROXY_FACTS
            or not self._forwardable_name(name)
        ):
            verdict = _DROP
        else:
            verdict = _FORWARD
        if len(self._verdicts) < _VERDICTS_KEPT:
            self._verdicts[raw_name] = verdict
        return verdict

    def _forwardable_name(self, name: bytes) -> bool:
        """Whether a client's header name can reach the upstream without being read as
        another: a token, and no "_" unless allowed, and then none that folds into a name
        authgate sets or handles (WSGI reads ``X_Api_Key`` as ``X-API-Key``)."""
        if not is_token(name):
            return False
        if b"_" not in name:
            return True
        if not self._underscores:
            return False
        folded = normal_form(name)
        return folded not in self._reserved and not folded.startswith(IDENTITY_PREFIX)

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
            problem = host_problem_of(scope)
            if problem is not None:
                raise problem
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
            await self._send_error(scope, send, exc, body_read=state.done)
            return

        session = self._session or self._open_session()
        started = False
        sent = perf_counter()
        try:
            async with session.request(
                scope["method"], url, headers=headers, data=data, allow_redirects=False
            ) as response:
                record_upstream(response.status, perf_counter() - sent)
                response_headers = _response_headers(response.raw_headers)
                if not state.done:
                    # The upstream answered before the client's body was all in.
                    response_headers = closing_if_unread(scope, response_headers)
                start = {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": response_headers,
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
                    await self._send_error(scope, send, state.error, body_read=state.done)
                    return
            if started:
                # Too late for a 502: end the connection so the truncation shows.
                log.warning("upstream %s broke off a response: %r", url.raw_path, exc)
                return
            failure = self._upstream_failure(exc, url)
            await self._send_error(scope, send, failure, body_read=state.done)

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
        record_upstream_failure("timeout" if isinstance(exc, TimeoutError) else "error")
        if isinstance(exc, TimeoutError):
            log.warning("upstream %s timed out: %r", url.raw_path, exc)
            return UpstreamTimeout()
        log.warning("upstream %s failed: %r", url.raw_path, exc)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return UpstreamError("The upstream service cannot be reached.")
        return UpstreamError()

    async def _send_error(
        self, scope: Scope, send: Send, error: AuthgateError, *, body_read: bool = False
    ) -> None:
        render = partial(self._render_error, scope)
        await send_error(scope, send, error, render=render, body_read=body_read)

    # -- WebSocket ---------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        try:
            problem = host_problem_of(scope)
            if problem is not None:
                raise problem
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
            await pump_websocket(upstream, receive, send)
        finally:
            await upstream.close()

    async def _deny_websocket(self, scope: Scope, send: Send, error: AuthgateError) -> None:
        if "websocket.http.response" in scope.get("extensions", {}):
            render = partial(self._render_error, scope)
            await send_error(scope, send, error, render=render, websocket=True)
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
        keep_headers=settings.forward_headers_keep,
        underscore_headers=settings.forward_underscore_headers,
        assertions=assertions_from_settings(settings),
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
