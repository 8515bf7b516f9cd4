"""Forward auth: ``/authgate/v1/verify`` answers nginx ``auth_request``, Traefik
ForwardAuth, Caddy ``forward_auth`` and Envoy's ``ext_authz`` HTTP service.

The proxy asks before it forwards a request, in one of two forms:

- **headers** (nginx, Traefik, Caddy): a request to ``/authgate/v1/verify`` naming the
  original method and URI in ``X-Forwarded-Method`` / ``X-Forwarded-Uri`` (Traefik and
  Caddy) or ``X-Original-Method`` / ``X-Original-URI`` (as nginx configurations usually
  name them);
- **path** (Envoy ``ext_authz`` with ``path_prefix: /authgate/v1/verify``): the original
  request itself, its method, its headers and its path appended to the prefix
  (``GET /authgate/v1/verify/api/items?page=2``).

The credential is the client's own ``X-API-Key`` or ``Authorization`` header, which the
proxy passes along. The answer is 200 with the identity headers
(``authgate.proxy.header_rules.identity_headers``) for the proxy to copy upstream (none
for an anonymous request to a public route), else the error the middleware would give,
in the JSON shape, with a status every one of these proxies shows its client (below).

The same rules as the middleware decide (a ``Gate`` over the same runtime, so the same
memory of keys), with three differences that follow from the request coming from a proxy:

- the localhost bypass never applies: the socket peer is the proxy, not the client;
- the original method and URI must read one way: when a request carries both header
  spellings of either, or the path form carries a header naming another method or URI
  (``X-Forwarded-Uri``, ``X-Original-URI``, ``X-Envoy-Original-Path``), they must agree.
  A client can send these headers itself, and a proxy overwrites only the one it sets;
  refusing a disagreement means a client-written ``X-Forwarded-Uri: /public`` can never
  stand in for the URI nginx put in ``X-Original-URI``;
- the path form's suffix is made canonical on its own, from the raw target: its dot
  segments can never climb into authgate's prefix and land on another of its routes.

Refusals use a status the proxy can pass on. nginx passes 401 and 403 to its client and
turns any other answer into a 500, so what forward auth alone refuses (the original
request's path, method or host cannot be read one way; the proxy left the original out)
is a 403 whose ``code`` names the reason. A proxy that sends no original method or URI is
misconfigured: that is logged once, with the fix.

Pure ASGI, in front of the middleware: verify is called once for every request the proxy
serves, so it skips the service's routing and request models, and writes its own
access-log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from authgate.accesslog import AccessLog
from authgate.adapters.asgi import GateRequest
from authgate.adapters.scope import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    closing_if_unread,
    encode_headers,
    host_problem_of,
    peer_of,
    send_error,
)
from authgate.errors import AuthgateError, Forbidden
from authgate.gate import Gate
from authgate.hosts import host_problem
from authgate.pipeline import run_async
from authgate.policy import CanonicalPath, Rule, canonical_path
from authgate.principal import Principal
from authgate.proxy.header_rules import identity_headers
from authgate.ratelimit import RateDecision
from authgate.runtime import Runtime
from authgate.s3.access import forward_auth_refusal
from authgate.trusted_proxies import normalise_address

__all__ = ["VERIFY_PATH", "ForwardAuth", "OriginalRefused", "ProxyMisconfigured"]

log = logging.getLogger("authgate.forward_auth")

# Under the reserved prefix.
VERIFY_PATH = "/v1/verify"

_METHODS = (b"x-forwarded-method", b"x-original-method")
_URIS = (b"x-forwarded-uri", b"x-original-uri")
# Envoy's name for a path before its router rewrote it: in the path form, a second
# reading of the original path.
_ENVOY_ORIGINAL_PATH = b"x-envoy-original-path"
_ROUTE_CACHE_SIZE = 4096

_MISSING_FIX = (
    "Forward auth needs the original request: send X-Forwarded-Method and X-Forwarded-Uri "
    "(or X-Original-Method and X-Original-URI), or append the original path to "
    "/authgate/v1/verify with the original method (Envoy ext_authz path_prefix)."
)


class ProxyMisconfigured(Forbidden):
    """The proxy did not say which request it asks about: its configuration is wrong."""

    code = "proxy_misconfigured"
    default_detail = _MISSING_FIX


class OriginalRefused(Forbidden):
    """The original request cannot be read one way: a 403, which every proxy passes on,
    keeping the code of the reason (``invalid_path``, ``ambiguous_host``,
    ``ambiguous_original``)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _ambiguous(detail: str) -> OriginalRefused:
    return OriginalRefused("ambiguous_original", detail)


def _one_value(headers: Iterable[tuple[bytes, bytes]], names: tuple[bytes, ...]) -> str | None:
    values = [value for name, value in headers if name in names]
    if not values:
        return None
    if any(value != values[0] for value in values[1:]):
        spelled = " and ".join(name.decode() for name in names)
        raise _ambiguous(f"{spelled} disagree: refusing to guess.")
    return values[0].decode("latin-1")


def _method(value: str) -> str:
    method = value.strip().upper()
    if not method.isalpha() or len(method) > 20:
        raise _ambiguous("The original method is not an HTTP method.")
    return method


class _Original:
    __slots__ = ("canon", "method", "query", "rule")

    def __init__(self, method: str, canon: CanonicalPath, query: str, rule: Rule) -> None:
        self.method = method
        self.canon = canon
        self.query = query
        self.rule = rule


class ForwardAuth:
    """ASGI app answering ``<prefix>/v1/verify`` (and the path form under it) with the
    verdict of ``rules``; every other request goes to ``app``. ``access_log``: one line
    per verify call, as the middleware writes for its requests."""

    def __init__(
        self,
        app: ASGIApp,
        runtime: Runtime,
        rules: Iterable[Rule],
        *,
        prefix: str,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.path = prefix.rstrip("/") + VERIFY_PATH
        self._exact = self.path.encode("latin-1")
        self._under = self._exact + b"/"
        self.gate = Gate(runtime, rules, reserved_prefix=prefix)
        # The peer is the proxy: "local" would describe the proxy, never the client.
        self.gate.bypass = False
        # Signs X-Authgate-Assertion for every 2xx when ``assertion`` is on, else None.
        self.assertions = runtime.assertions
        self.access_log = access_log
        self._warned = False
        # (method, original target) -> canonical path and rule: most traffic repeats.
        self._routes: dict[tuple[str, str], tuple[CanonicalPath, Rule]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw: bytes | None = scope.get("raw_path")
            if raw is None:
                raw = scope["path"].encode("utf-8")
            if raw == self._exact or raw.startswith(self._under):
                await self.verify(scope, send, raw)
                return
        await self.app(scope, receive, send)

    async def verify(self, scope: Scope, send: Send, raw: bytes) -> None:
        access_log = self.access_log
        started = time.perf_counter() if access_log is not None and access_log.enabled() else None
        principal: Principal | None = None
        request: GateRequest | None = None
        try:
            original = self._original(scope, raw)
        except AuthgateError as exc:
            status = await send_error(scope, send, exc)
        else:
            request = GateRequest(
                {
                    "type": "http",
                    "query_string": original.query.encode("latin-1", "replace"),
                    "raw_path": original.canon.raw_path.encode("latin-1"),
                    "client": scope.get("client"),
                    "server": scope.get("server"),
                    "scheme": scope.get("scheme", "http"),
                },
                original.method,
                original.canon.path,
                scope["headers"],
            )
            step = self.gate.decide(request, original.rule, original.canon.match)
            verdict = await run_async(step)
            principal = verdict.principal
            error = verdict.error
            if error is None and verdict.s3 is not None:
                error = forward_auth_refusal(verdict.s3)
            if error is not None:
                status = await send_error(scope, send, error, method=original.method)
            else:
                status = await self._allow(scope, send, verdict.principal, verdict.rate)
        if started is not None:
            self._log(scope, request, raw, status, principal, started)

    async def _allow(
        self, scope: Scope, send: Send, principal: Principal | None, rate: RateDecision | None
    ) -> int:
        headers = [("cache-control", "no-store"), ("content-length", "0")]
        if principal is not None:
            headers.extend(identity_headers(principal, self.assertions))
        if rate is not None:
            headers.extend(rate.headers().items())
        encoded = closing_if_unread(scope, encode_headers(headers))
        await send({"type": "http.response.start", "status": 200, "headers": encoded})
        await send({"type": "http.response.body", "body": b""})
        return 200

    # -- reading the original request --------------------------------------------------
    def _original(self, scope: Scope, raw: bytes) -> _Original:
        problem = host_problem_of(scope)
        if problem is not None:
            raise problem  # verify's own request: a 400, as for any request to authgate
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if raw == self._exact:
            method_header = _one_value(headers, _METHODS)
            uri = _one_value(headers, _URIS)
            if method_header is None or uri is None:
                self._warn_misconfigured()
                raise ProxyMisconfigured()
            method = _method(method_header)
        else:
            method = _method(scope["method"])
            suffix = raw[len(self._exact) :].decode("latin-1")
            query: bytes = scope.get("query_string") or b""
            uri = suffix + ("?" + query.decode("latin-1") if query else "")
            self._agree(headers, method, uri)
        reported = [v.decode("latin-1") for n, v in headers if n == b"x-forwarded-host"]
        if not reported:
            reported = [v.decode("latin-1") for n, v in headers if n == b"host"]
        problem = host_problem(reported, uri)
        if problem is not None:
            raise OriginalRefused(problem.code, problem.detail)
        return self._route(method, uri)

    def _agree(self, headers: list[tuple[bytes, bytes]], method: str, uri: str) -> None:
        """In the path form, a header naming the original request must name this one."""
        named = _one_value(headers, _METHODS)
        if named is not None and _method(named) != method:
            raise _ambiguous("X-Forwarded-Method disagrees with the request's method.")
        for names in (_URIS, (_ENVOY_ORIGINAL_PATH,)):
            named = _one_value(headers, names)
            if named is not None and named != uri:
                spelled = names[0].decode()
                raise _ambiguous(f"{spelled} disagrees with the path after {self.path}.")

    def _route(self, method: str, uri: str) -> _Original:
        path, _, query = uri.partition("?")
        key = (method, path)
        found = self._routes.get(key)
        if found is None:
            if "://" in path:
                # An absolute-form URI (its host was checked against the reported one).
                parts = urlsplit(uri)
                path, query = parts.path or "/", parts.query
            try:
                canon = canonical_path(path)
                found = (canon, self.gate.rule_for(method, canon.match))
            except AuthgateError as exc:
                raise OriginalRefused(exc.code, exc.detail) from None
            if "://" not in key[1]:
                if len(self._routes) >= _ROUTE_CACHE_SIZE:
                    self._routes.clear()
                self._routes[key] = found
        canon, rule = found
        return _Original(method, canon, query, rule)

    def _warn_misconfigured(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "forward auth was asked without the original request; every such call is "
                "refused with 403 proxy_misconfigured. %s",
                _MISSING_FIX,
            )

    def _log(
        self,
        scope: Scope,
        request: GateRequest | None,
        raw: bytes,
        status: int,
        principal: Principal | None,
        started: float,
    ) -> None:
        assert self.access_log is not None
        if self.gate.proxies and request is not None:
            client = self.gate.client_address(request.facts())
        else:
            client = normalise_address(peer_of(scope))
        auth = "no" if principal is None else "yes"
        self.access_log.record(
            method=scope["method"],
            path=raw.decode("latin-1"),
            status=status,
            auth=auth,
            key_id=principal.id if principal is not None else None,
            duration_ms=(time.perf_counter() - started) * 1000,
            client=client,
        )
