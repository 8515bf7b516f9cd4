"""``AuthgateWSGIMiddleware``: authgate in any WSGI app (Flask, Django, ...).

The same gate as the ASGI middleware: canonical path, first matching rule, credential,
rate limits, access log; the principal lands in ``environ["authgate.principal"]``
(``principal_of(environ)``; ``None`` on a public route called anonymously).

WSGI has no lifespan, so an owned runtime starts on the first request (once, under a
lock; requests wait for it rather than get 503), or earlier with ``start()``. Call
``close()`` at shutdown to flush usage counters; without it up to one flush interval of
counts is lost, nothing else.

Rules match ``PATH_INFO``, the path the app routes on. The server has already
percent-decoded it, so it is not decoded again (``%252e`` stays ``%2e``); an encoded
slash (``%2F``) is refused when the server passes the raw target (``RAW_URI`` /
``REQUEST_URI``), since the app could not tell it from ``/``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from authgate.accesslog import AccessLog
from authgate.adapters.asgi import ErrorRenderer, default_rules
from authgate.adapters.s3 import WsgiS3, status_line
from authgate.adapters.scope import PRINCIPAL_SCOPE_KEY
from authgate.credentials.verifiers import FactsRequest, Verifier, VerifierFactory
from authgate.errors import AuthgateError, ConfigurationError
from authgate.facts import RequestFacts
from authgate.gate import Gate
from authgate.hosts import AmbiguousHost, host_problem
from authgate.http import json_error, render_error
from authgate.localhost import describe_bypass
from authgate.pipeline import run_sync
from authgate.policy import InvalidPath, Rule, canonical_path
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.s3.access import SIGV4_SCOPE_KEY
from authgate.settings import Settings, load_settings
from authgate.sigv4.canonical import uri_encode

__all__ = ["AuthgateWSGIMiddleware", "principal_of"]

log = logging.getLogger("authgate.middleware")

# The standard library's WSGI types, so that ``app.wsgi_app = AuthgateWSGIMiddleware(
# app.wsgi_app)`` type-checks against Flask's, Django's and anyone else's.
Environ = WSGIEnvironment
WSGIApp = WSGIApplication
ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


def principal_of(environ: Environ) -> Principal | None:
    principal = environ.get(PRINCIPAL_SCOPE_KEY)
    return principal if isinstance(principal, Principal) else None


def _raw_path(environ: Environ) -> str:
    """The path as the client sent it (SigV4 signs it): the server's raw target when it
    passes one, else the decoded path encoded again as the AWS SDKs encode it."""
    raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    if raw_uri.startswith("/"):
        return raw_uri.split("?", 1)[0]
    path = environ.get("SCRIPT_NAME", "") + (environ.get("PATH_INFO") or "/")
    return uri_encode(path.encode("latin-1"), keep_slash=True)


def _facts(environ: Environ, path: str) -> RequestFacts:
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower(), value))
    # Not HTTP_ variables in WSGI, yet headers a SigV4 client may sign.
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        value = environ.get(key)
        if value:
            headers.append((name, value))
    return RequestFacts(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=path,
        headers=tuple(headers),
        query_string=environ.get("QUERY_STRING", ""),
        raw_path=_raw_path(environ),
        peer=environ.get("REMOTE_ADDR") or None,
        scheme=environ.get("wsgi.url_scheme", "http"),
        # SERVER_NAME / SERVER_PORT may come from the Host header: never the server here.
        peer_port=_port(environ.get("REMOTE_PORT")),
    )


def _port(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


class _Logged:
    """The app's response iterable, logging when the server closes it (PEP 3333)."""

    def __init__(self, iterable: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._iterable = iterable
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


class AuthgateWSGIMiddleware:
    """Protect a WSGI app: ``app.wsgi_app = AuthgateWSGIMiddleware(app.wsgi_app, rules=[...])``.

    Arguments as for ``AuthgateMiddleware``.
    """

    def __init__(
        self,
        app: WSGIApp,
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
    ) -> None:
        if runtime is not None and settings is not None:
            raise ConfigurationError("give AuthgateWSGIMiddleware settings or a runtime, not both")
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
        )
        enabled = settings.access_log if access_log is None else access_log
        self.access_log = AccessLog(settings.access_log_format) if enabled else None
        self.render = error_renderer
        self._started = not self.manage_runtime
        self._start_lock = threading.Lock()
        # WSGI has no lifespan: an app is built once, at its server's start.
        log.info(describe_bypass(self.gate.bypass))

    def start(self) -> None:
        """Start the owned runtime now (otherwise the first request does)."""
        if self._started:
            return
        with self._start_lock:
            if not self._started:
                self.runtime.start()
                self._started = True

    def close(self) -> None:
        with self._start_lock:
            if self.manage_runtime and self._started:
                self.runtime.close()
                self._started = False

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        if not self._started:
            self.start()
        logging_on = self.access_log is not None and self.access_log.enabled()
        method = environ.get("REQUEST_METHOD", "GET")
        path_info = environ.get("PATH_INFO") or "/"
        facts: RequestFacts | None = None
        try:
            raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
            host = environ.get("HTTP_HOST")
            problem = host_problem([] if host is None else [host], raw_uri)
            if problem is not None:
                raise problem
            if "%2f" in raw_uri.split("?", 1)[0].lower():
                raise InvalidPath("Encoded '/' in the path is refused.")
            canon = canonical_path(path_info, encoded=False)
            rule = self.gate.rule_for(method, canon.match)
        except (InvalidPath, AmbiguousHost) as exc:
            return self._refuse(
                environ, start_response, exc, method, path_info, None, None, started
            )
        facts = _facts(environ, canon.match or "/")
        verdict = run_sync(self.gate.decide(FactsRequest(facts), rule, canon.match))
        principal = verdict.principal
        shown = canon.match or "/"
        passed = verdict.s3
        s3 = WsgiS3(passed, method) if passed is not None else None
        error = verdict.error
        if error is None and s3 is not None:
            error = s3.refusal(environ)
        if error is not None:
            return self._refuse(
                environ, start_response, error, method, shown, facts, principal, started
            )
        if passed is not None:
            # SigV4 signed the path as sent, and S3 reads it as sent: it goes on unchanged.
            environ[SIGV4_SCOPE_KEY] = passed.result
        elif canon.changed:
            environ["PATH_INFO"] = canon.path
        environ[PRINCIPAL_SCOPE_KEY] = principal
        extra = list(verdict.rate.headers().items()) if verdict.rate is not None else []
        status = 500
        response_started = False

        def start_wrapper(
            status_line: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            nonlocal status, response_started
            status = int(status_line[:3])
            response_started = True
            return start_response(status_line, headers + extra, exc_info)

        def log_line() -> None:
            if logging_on:
                self._log(facts, method, shown, status, principal, started)

        try:
            if s3 is not None:
                result = s3.call(self.app, environ, start_wrapper)
            else:
                result = self.app(environ, start_wrapper)
        except AuthgateError as exc:
            if response_started:
                log_line()
                raise
            return self._refuse(
                environ, start_response, exc, method, shown, facts, principal, started
            )
        except BaseException:
            log_line()
            raise
        return _Logged(result, log_line) if logging_on else result

    def _refuse(
        self,
        environ: Environ,
        start_response: StartResponse,
        error: AuthgateError,
        method: str,
        path: str,
        facts: RequestFacts | None,
        principal: Principal | None,
        started: float,
    ) -> list[bytes]:
        # No Connection: close for a body left unread, as the ASGI middleware sends: a WSGI
        # app may not set hop-by-hop headers (wsgiref refuses them, gunicorn drops them),
        # and the servers end or drain such a connection themselves.
        status, headers, body = render_error(error, method, self.render)
        start_response(status_line(status), headers)
        if self.access_log is not None and self.access_log.enabled():
            if facts is None:
                facts = _facts(environ, path)
            self._log(facts, method, path, status, principal, started)
        return [body]

    def _log(
        self,
        facts: RequestFacts,
        method: str,
        path: str,
        status: int,
        principal: Principal | None,
        started: float,
    ) -> None:
        assert self.access_log is not None
        auth = "no" if principal is None else ("local" if principal.kind == "local" else "yes")
        self.access_log.record(
            method=method,
            path=path,
            status=status,
            auth=auth,
            key_id=principal.id if principal is not None else None,
            duration_ms=(time.perf_counter() - started) * 1000,
            client=self.gate.client_address(facts),
        )
