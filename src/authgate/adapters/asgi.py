"""``AuthgateMiddleware``: authgate in any ASGI app (FastAPI, Starlette, ...).

Pure ASGI, on purpose: ``BaseHTTPMiddleware`` never sees WebSockets and cost about 80 %
of throughput in our measurements. HTTP and WebSocket scopes are checked; the lifespan
scope passes through and, when the middleware owns its runtime, starts it on
``lifespan.startup`` and stops it after ``lifespan.shutdown.complete``. Until the runtime
is ready every request gets 503 (fail closed).

For each request: the path is made canonical (``authgate.policy``; the app then sees the
canonical path, so the rule that matched and the route that runs agree), the first
matching rule is found and the gate decides (``authgate.gate``): from memory on the event
loop, or with the I/O it asks for run in a worker thread. The principal lands in
``scope["authgate.principal"]`` and ``scope["state"]["authgate_principal"]`` (that is,
``request.state.authgate_principal``); ``None`` on a public route called anonymously.

WebSockets are checked at the handshake. Browsers cannot set headers on a WebSocket, so
the credential may also come as a subprotocol, ``authgate.bearer.<token>``; it is taken
out of the list the app sees and never echoed back. A browser that offers subprotocols
needs one echoed, so offer ``authgate`` beside it
(``new WebSocket(url, ["authgate", "authgate.bearer." + token])``): when the app accepts
without choosing one, the middleware answers with ``authgate``. A refused handshake never
reaches the app: it gets the HTTP error (the ``websocket.http.response`` extension) or,
on servers without it, ``websocket.close`` before accept (HTTP 403).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

import anyio.to_thread

from authgate.accesslog import AccessLog
from authgate.adapters.post_form import FormReplay, form_candidate, read_form_head
from authgate.adapters.s3 import AsgiS3
from authgate.adapters.scope import (
    PRINCIPAL_SCOPE_KEY,
    STATE_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    encode_headers,
    ends_connection,
    host_problem_of,
    peer_of,
    peer_port_of,
    send_error,
    server_of,
)
from authgate.credentials.headers import choose_token
from authgate.credentials.tokens import digest_bytes
from authgate.credentials.verifiers import Request, Verifier, VerifierFactory
from authgate.errors import AuthgateError, ConfigurationError, InvalidCredentials
from authgate.facts import RequestFacts
from authgate.gate import Gate, Verdict
from authgate.hosts import AmbiguousHost, host_problem
from authgate.http import Rendered, json_error, render_error
from authgate.localhost import describe_bypass
from authgate.pipeline import Step, run_async
from authgate.policy import CanonicalPath, InvalidPath, Rule, canonical_path, rules_from_config
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.s3.access import SIGV4_SCOPE_KEY
from authgate.s3.post_form import PostForm
from authgate.settings import Settings, load_settings
from authgate.trusted_proxies import normalise_address

__all__ = [
    "PRINCIPAL_SCOPE_KEY",
    "STATE_KEY",
    "WEBSOCKET_PROTOCOL",
    "WEBSOCKET_TOKEN_PREFIX",
    "AuthgateMiddleware",
    "GateRequest",
    "default_rules",
    "principal_from_scope",
]

ErrorRenderer = Callable[[AuthgateError], Rendered]

WEBSOCKET_PROTOCOL = "authgate"
WEBSOCKET_TOKEN_PREFIX = "authgate.bearer."  # noqa: S105 - a marker, not a secret

log = logging.getLogger("authgate.middleware")

_SAFE_PATH_CHARS = "/:@!$&'()*+,;=-._~"


def default_rules(settings: Settings) -> list[Rule]:
    """The config file's rules, else one rule: every request needs a valid credential."""
    return rules_from_config(settings.rules) or [Rule("*", "/**")]


def principal_from_scope(scope: MutableMapping[str, Any]) -> Principal | None:
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    return principal if isinstance(principal, Principal) else None


_ROUTE_CACHE_SIZE = 4096
_HOST_CACHE_SIZE = 256


class GateRequest(Request):
    """What the gate needs of one ASGI request, read from the raw headers in one pass:
    the first ``X-API-Key``, ``Authorization`` and ``Host`` values, and whether any of
    them is repeated. The request's facts, and the credential when it is not one plain
    header, are worked out when something asks (a verifier that reads other headers, the
    bypass, a failure, the log)."""

    __slots__ = ("_facts", "headers", "host", "method", "path", "repeated", "scope")

    def __init__(
        self, scope: Scope, method: str, path: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.scope = scope
        self.method = method
        self.path = path
        self.headers = headers
        api_key: bytes | None = None
        authorization: bytes | None = None
        host: bytes | None = None
        repeated = False
        # ASGI header names are lower-case; a server that sent them otherwise would only
        # make its credentials look missing (a refusal), never let anything through.
        for name, value in headers:
            if name == b"x-api-key":
                repeated = repeated or api_key is not None
                api_key = value
            elif name == b"authorization":
                repeated = repeated or authorization is not None
                authorization = value
            elif name == b"host":
                repeated = repeated or host is not None
                host = value
        query: bytes = scope.get("query_string") or b""
        # Presigned URLs: X-Amz-* (SigV4), or AWSAccessKeyId (SigV2, refused in S3's words).
        may_sign = b"X-Amz-" in query or b"AWSAccessKeyId=" in query
        # Request.__init__, written out: this runs for every request. One plain credential
        # header: its token is hashed as sent. A token memory knows is one
        # ``choose_token`` returns unchanged; any other misses memory, and the API key
        # verifier then reads the credential the long way.
        token_digest = None
        if authorization is not None:
            if authorization[:7].lower() != b"bearer ":
                may_sign = True
            elif api_key is None and not repeated:
                token_digest = digest_bytes(authorization[7:])
        elif api_key is not None and not repeated:
            token_digest = digest_bytes(api_key)
        self._digest = token_digest
        self.may_sign = may_sign
        self.form = None
        self._credential = None
        self.detail = None
        self.host = host
        self.repeated = repeated
        self._facts: RequestFacts | None = None

    def _choose_credential(self) -> str | AuthgateError:
        api_keys: list[str] = []
        authorizations: list[str] = []
        for name, value in self.headers:
            if name == b"x-api-key":
                api_keys.append(value.decode("latin-1"))
            elif name == b"authorization":
                authorizations.append(value.decode("latin-1"))
        return choose_token(api_keys, authorizations)

    def facts(self) -> RequestFacts:
        if self._facts is None:
            scope = self.scope
            self._facts = RequestFacts.from_asgi_headers(
                self.method,
                self.path,
                self.headers,
                query_string=scope.get("query_string", b""),
                raw_path=scope.get("raw_path"),
                peer=peer_of(scope),
                scheme=scope.get("scheme", "http"),
                peer_port=peer_port_of(scope),
                server=server_of(scope),
            )
        return self._facts


class _Route:
    """What the middleware remembers of one (method, raw path): the canonical path and
    the rule that matched."""

    __slots__ = ("canon", "rule")

    def __init__(self, canon: CanonicalPath, rule: Rule) -> None:
        self.canon = canon
        self.rule = rule


def _credential_from_subprotocols(
    headers: list[tuple[bytes, bytes]], tokens: list[str]
) -> tuple[list[tuple[bytes, bytes]], AuthgateError | None]:
    """Headers with the subprotocol's token added as one more credential header, so the
    core's ambiguity rules apply: a different token in a header is refused, not guessed."""
    if not tokens:
        return headers, None
    if len(tokens) > 1:
        return headers, InvalidCredentials("Send one credential subprotocol, once.")
    token = tokens[0][len(WEBSOCKET_TOKEN_PREFIX) :].encode("latin-1")
    names = {name.lower() for name, _ in headers}
    if b"authorization" not in names:
        return [*headers, (b"authorization", b"Bearer " + token)], None
    if b"x-api-key" not in names:
        return [*headers, (b"x-api-key", token)], None
    return headers, InvalidCredentials("Send one credential, not three.")


def _without_token_protocols(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    prefix = WEBSOCKET_TOKEN_PREFIX.encode()
    kept = []
    for name, value in headers:
        if name.lower() == b"sec-websocket-protocol":
            parts = [p.strip() for p in value.split(b",")]
            value = b", ".join(p for p in parts if p and not p.startswith(prefix))
            if not value:
                continue
        kept.append((name, value))
    return kept


def _rewritten(scope: Scope, canon: CanonicalPath) -> Scope:
    """A copy of ``scope`` carrying the canonical path. Servers that put ``root_path`` in
    front of ``path`` (but not of ``raw_path``) keep it in front."""
    scope = dict(scope)
    root = scope.get("root_path") or ""
    raw = scope.get("raw_path")
    in_path = root and scope["path"].startswith(root)
    in_raw = raw is None or raw.startswith(root.encode("latin-1"))
    prefix = root if in_path and root and not in_raw else ""
    scope["path"] = prefix + canon.path
    scope["raw_path"] = canon.raw_path.encode("latin-1")
    return scope


class _StartupFailed(Exception):
    """The runtime did not start; the server has been told."""


class AuthgateMiddleware:
    """Protect an ASGI app with authgate.

    ``AuthgateMiddleware(app, rules=[...])`` builds ``Runtime(load_settings())`` and owns
    it; pass ``settings=`` to build it from those, or ``runtime=`` to share one that the
    caller starts and stops (``manage_runtime=True`` hands its life to the middleware).
    ``rules=None`` takes the config file's ``rules``, else requires a credential
    everywhere. ``reserved_prefix`` names authgate's own routes (the server passes
    ``/authgate``): the localhost bypass never applies under it. ``listen_host`` is where
    the server listens, for ``localhost_bypass = "auto"``: unknown by default, and then
    ``auto`` leaves the bypass off (``"on"`` turns it on regardless). ``verifiers`` adds
    custom credential verifiers to the ``verifiers`` setting's (``authgate.credentials.verifiers``).
    ``local_routes`` names paths under ``reserved_prefix`` that the bypass admits all the
    same (the server's ``/authgate/metrics``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rules: Iterable[Rule] | None = None,
        settings: Settings | None = None,
        runtime: Runtime | None = None,
        manage_runtime: bool | None = None,
        reserved_prefix: str | None = None,
        listen_host: str | None = None,
        access_log: bool | None = None,
        error_renderer: ErrorRenderer = json_error,
        verifiers: Sequence[Verifier | VerifierFactory | str] = (),
        local_routes: Iterable[str] = (),
    ) -> None:
        if runtime is not None and settings is not None:
            raise ConfigurationError("give AuthgateMiddleware settings or a runtime, not both")
        built = runtime is None
        if runtime is None:
            runtime = Runtime(settings if settings is not None else load_settings())
        self.app = app
        self.runtime = runtime
        self.manage_runtime = built if manage_runtime is None else manage_runtime
        settings = runtime.settings
        self.gate = Gate(
            runtime,
            default_rules(settings) if rules is None else rules,
            reserved_prefix=reserved_prefix,
            listen_host=listen_host,
            verifiers=verifiers,
            local_routes=local_routes,
        )
        enabled = settings.access_log if access_log is None else access_log
        self.access_log = AccessLog(settings.access_log_format) if enabled else None
        self.render = error_renderer
        self.post_forms = settings.s3_post_policy
        self._handle_errors_of(app)
        self._lifespan_seen = False
        self._warned_not_started = False
        # (method, raw path) -> canonical path and rule: most traffic repeats a few paths.
        # A scope without raw_path is never remembered: (method, None) is never a key.
        self._routes: dict[tuple[str, bytes | None], _Route] = {}
        # Host values already found to read one way, so the hot path checks with a lookup.
        self._hosts: set[bytes] = set()

    def _handle_errors_of(self, app: Any) -> None:
        """Wrapped around a Starlette or FastAPI app from outside, the middleware would only
        see its dependencies' errors after Starlette turned them into 500s: so it renders
        them inside the app, the same way. (Added with ``app.add_middleware``, it sits
        inside Starlette's error handling and renders them itself.)"""
        add_handler = getattr(app, "add_exception_handler", None)
        handlers = getattr(app, "exception_handlers", None)
        if not callable(add_handler) or not isinstance(handlers, dict):
            return
        if AuthgateError in handlers:
            return
        from starlette.responses import Response

        def render(request: Any, exc: Exception) -> Response:
            assert isinstance(exc, AuthgateError)
            status, headers, body = render_error(exc, request.method, self.render)
            return Response(body, status_code=status, headers=dict(headers))

        add_handler(AuthgateError, render)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            # The hot path is inlined here: each coroutine less is a measurable share of
            # what the middleware costs a request. The clock is read only for the log.
            access_log = self.access_log
            started = (
                time.perf_counter() if access_log is not None and access_log.enabled() else None
            )
            if self.post_forms and scope["method"] == "POST":
                form = form_candidate(scope)
                if form is not None:
                    await self._form_upload(scope, receive, send, started, form)
                    return
            route = self._routes.get((scope["method"], scope.get("raw_path")))
            if route is None or route.canon.changed:
                await self._http(scope, receive, send, started)
                return
            canon = route.canon
            request = GateRequest(scope, scope["method"], canon.path, scope["headers"])
            host = request.host
            if request.repeated or (host is not None and not self._host_reads_one_way(host)):
                await self._http(scope, receive, send, started)
                return
            step = self.gate.decide(request, route.rule, canon.match)
            if type(step) is not Verdict or step.error or step.rate or step.s3:
                await self._decided(scope, receive, send, started, canon, request, step)
                return
            principal = step.principal
            scope[PRINCIPAL_SCOPE_KEY] = principal
            state = scope.get("state")
            if state is None:
                scope["state"] = state = {}
            state[STATE_KEY] = principal
            if started is not None:
                await self._call_logged(
                    scope, receive, send, request, canon.path, principal, started
                )
                return
            try:
                await self.app(scope, receive, send)
            except AuthgateError as exc:
                # Raised by a dependency such as RequireScopes, before the app answers.
                # (After it started answering, the server refuses this second start
                # and aborts the response: the same end as re-raising, without the
                # bookkeeping on every send.)
                await self._send_error(scope, send, exc, scope["method"])
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            log.info(describe_bypass(self.gate.bypass))
            if self.manage_runtime:
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- the shared first half: path, rule, verdict -------------------------------------
    def _canonical(self, scope: Scope) -> CanonicalPath:
        raw = scope.get("raw_path")
        if raw is None:
            return canonical_path(quote(scope["path"], safe=_SAFE_PATH_CHARS))
        return canonical_path(raw.decode("latin-1"))

    def _route(self, scope: Scope, method: str) -> _Route:
        raw = scope.get("raw_path")
        key = (method, raw) if raw is not None else None
        if key is not None:
            found = self._routes.get(key)
            if found is not None:
                return found
        canon = self._canonical(scope)
        found = _Route(canon, self.gate.rule_for(method, canon.match))
        if key is not None:
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[key] = found
        return found

    async def _verdict(self, step: Step[Verdict]) -> Verdict:
        verdict = await run_async(step)
        if verdict.error is not None and verdict.error.status == 503:
            self._warn_if_never_started()
        return verdict

    def _warn_if_never_started(self) -> None:
        if self.manage_runtime and not self._lifespan_seen and not self._warned_not_started:
            self._warned_not_started = True
            log.warning(
                "authgate answers 503: its runtime starts with the ASGI lifespan, which this "
                "server has not run (enable lifespan, or pass a started runtime=)"
            )

    def _log(
        self,
        scope: Scope,
        request: GateRequest | None,
        method: str,
        path: str,
        status: int,
        principal: Principal | None,
        started: float,
        protocol: str = "http",
    ) -> None:
        assert self.access_log is not None
        if self.gate.proxies:
            if request is None:
                request = GateRequest(scope, method, path, scope["headers"])
            client = self.gate.client_address(request.facts())
        else:
            client = normalise_address(peer_of(scope))
        auth = "no" if principal is None else ("local" if principal.kind == "local" else "yes")
        self.access_log.record(
            method=method,
            path=path,
            status=status,
            auth=auth,
            key_id=principal.id if principal is not None else None,
            duration_ms=(time.perf_counter() - started) * 1000,
            client=client,
            protocol=protocol,
        )

    # -- HTTP ----------------------------------------------------------------------------
    async def _form_upload(
        self, scope: Scope, receive: Receive, send: Send, started: float | None, form: PostForm
    ) -> None:
        """A form POST that may carry an S3 POST policy: its fields are read first, for
        the gate (``authgate.adapters.post_form``)."""
        held = await read_form_head(receive, form)
        claimed = form if "policy" in form.fields else None
        replay = FormReplay(receive, held, claimed, scope["method"], ends_connection(scope))
        await self._http(scope, replay.receive, replay.send(send), started, form=claimed)

    async def _http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        started: float | None,
        form: PostForm | None = None,
    ) -> None:
        """The general path; ``started`` is when the request came, when it is logged;
        ``form`` the fields of a POST policy upload, read ahead."""
        method: str = scope["method"]
        try:
            problem = host_problem_of(scope)
            if problem is not None:
                raise problem
            route = self._route(scope, method)
        except (InvalidPath, AmbiguousHost) as exc:
            status = await self._send_error(scope, send, exc)
            if started is not None:
                raw = scope.get("raw_path")
                shown = raw.decode("latin-1") if raw is not None else scope.get("path", "")
                self._log(scope, None, method, shown, status, None, started)
            return
        canon = route.canon
        request = GateRequest(scope, method, canon.path, scope["headers"])
        request.form = form
        step = self.gate.decide(request, route.rule, canon.match)
        await self._decided(scope, receive, send, started, canon, request, step)

    async def _decided(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        started: float | None,
        canon: CanonicalPath,
        request: GateRequest,
        step: Step[Verdict],
    ) -> None:
        """The rest of the general path, once the gate has been asked."""
        method: str = scope["method"]
        verdict = await self._verdict(step)
        principal = verdict.principal
        passed = verdict.s3
        s3 = AsgiS3(passed, method, ends_connection(scope)) if passed is not None else None
        error = verdict.error
        if error is None and s3 is not None:
            error = s3.refusal(scope["headers"])
        if error is not None:
            status = await self._send_error(scope, send, error, method)
            if started is not None:
                self._log(scope, request, method, canon.path, status, principal, started)
            return

        if passed is not None:
            # SigV4 signed the path as sent, and S3 reads it as sent: it goes on unchanged.
            scope[SIGV4_SCOPE_KEY] = passed.result
        elif canon.changed:
            scope = _rewritten(scope, canon)
        scope[PRINCIPAL_SCOPE_KEY] = principal
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state[STATE_KEY] = principal

        status = 500
        response_started = False
        extra = encode_headers(verdict.rate.headers().items()) if verdict.rate else None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        app_receive: Receive = receive
        app_send: Send = send_wrapper
        if s3 is not None:
            app_receive, app_send = s3.receive(receive), s3.send(send_wrapper)
        try:
            await self.app(scope, app_receive, app_send)
        except AuthgateError as exc:
            # Raised by a dependency such as RequireScopes: rendered here, once.
            if response_started:
                raise
            status = await self._send_error(scope, send, exc, method)
        finally:
            if started is not None:
                self._log(scope, request, method, canon.path, status, principal, started)

    def _host_reads_one_way(self, host: bytes) -> bool:
        if host in self._hosts:
            return True
        if host_problem([host.decode("latin-1")]) is not None:
            return False
        if len(self._hosts) >= _HOST_CACHE_SIZE:
            self._hosts.clear()
        self._hosts.add(host)
        return True

    async def _call_logged(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request: GateRequest,
        path: str,
        principal: Principal | None,
        started: float,
    ) -> None:
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        try:
            await self.app(scope, receive, send_wrapper)
        except AuthgateError as exc:
            status = await self._send_error(scope, send, exc, method)
        finally:
            self._log(scope, request, method, path, status, principal, started)

    async def _send_error(
        self, scope: Scope, send: Send, error: AuthgateError, method: str = "GET"
    ) -> int:
        # The app never ran, or raised before answering: the body may be unread.
        return await send_error(scope, send, error, method=method, render=self.render)

    # -- WebSocket -----------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        logging_on = self.access_log is not None and self.access_log.enabled()
        request: GateRequest | None = None
        principal: Principal | None = None
        error: AuthgateError | None = None
        path = scope.get("path", "")
        offered = list(scope.get("subprotocols") or ())
        tokens = [p for p in offered if p.startswith(WEBSOCKET_TOKEN_PREFIX)]
        try:
            problem = host_problem_of(scope)
            if problem is not None:
                raise problem
            canon = self._canonical(scope)
            rule = self.gate.rule_for("GET", canon.match)
        except (InvalidPath, AmbiguousHost) as exc:
            error = exc
        else:
            path = canon.path
            headers, error = _credential_from_subprotocols(list(scope["headers"]), tokens)
            if error is None:
                request = GateRequest(scope, "GET", canon.path, headers)
                verdict = await self._verdict(self.gate.decide(request, rule, canon.match))
                principal, error = verdict.principal, verdict.error
        if error is not None:
            status = await self._refuse_websocket(scope, receive, send, error)
            if logging_on:
                self._log(scope, request, "WS", path, status, principal, started, "websocket")
            return

        scope = _rewritten(scope, canon) if canon.changed else dict(scope)
        if tokens:
            # The app never sees the credential, neither in the list nor in the header.
            scope["subprotocols"] = [p for p in offered if p not in tokens]
            scope["headers"] = _without_token_protocols(scope["headers"])
        scope[PRINCIPAL_SCOPE_KEY] = principal
        state = scope.get("state")
        scope["state"] = state = {} if state is None else state
        state[STATE_KEY] = principal

        status = 403  # an app that closes before accepting refuses the handshake
        offered_marker = WEBSOCKET_PROTOCOL in offered

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "websocket.accept":
                status = 101
                chosen = message.get("subprotocol")
                if chosen is not None and chosen.startswith(WEBSOCKET_TOKEN_PREFIX):
                    chosen = None  # a credential is never echoed back
                if chosen is None and offered_marker:
                    chosen = WEBSOCKET_PROTOCOL
                if chosen != message.get("subprotocol"):
                    message = {**message, "subprotocol": chosen}
            elif message["type"] == "websocket.http.response.start" and status != 101:
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if logging_on:
                self._log(scope, request, "WS", canon.path, status, principal, started, "websocket")

    async def _refuse_websocket(
        self, scope: Scope, receive: Receive, send: Send, error: AuthgateError
    ) -> int:
        message = await receive()
        if message["type"] != "websocket.connect":
            return error.status
        if "websocket.http.response" in (scope.get("extensions") or {}):
            return await send_error(scope, send, error, render=self.render, websocket=True)
        await send({"type": "websocket.close", "code": 1008, "reason": error.code})
        return 403

    # -- lifespan ------------------------------------------------------------------------
    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._lifespan_seen = True
        startup_seen = False
        runtime = self.runtime

        async def receive_wrapper() -> Message:
            nonlocal startup_seen
            message = await receive()
            if message["type"] == "lifespan.startup":
                startup_seen = True
                # Before the app's own start-up, so that it may already use the runtime.
                try:
                    await anyio.to_thread.run_sync(runtime.start)
                except Exception as exc:
                    await anyio.to_thread.run_sync(runtime.close)
                    # Reported to the server here: the app never saw its start-up begin.
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    raise _StartupFailed from exc
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(runtime.close)
            elif message["type"] == "lifespan.startup.failed" and runtime.authenticator.ready:
                await anyio.to_thread.run_sync(runtime.close)
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except _StartupFailed:
            return
        except Exception:
            if startup_seen:
                raise
            # The app does not speak lifespan at all: the runtime still needs one.
            await self._serve_lifespan(receive, send)

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await anyio.to_thread.run_sync(self.runtime.start)
                except Exception as exc:
                    await anyio.to_thread.run_sync(self.runtime.close)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await anyio.to_thread.run_sync(self.runtime.close)
                await send({"type": "lifespan.shutdown.complete"})
                return
