"""AuthgateWSGIMiddleware around a Flask app under a real WSGI server (wsgiref)."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from flask import Flask, request

from authgate.accesslog import ACCESS_LOGGER
from authgate.adapters.wsgi import AuthgateWSGIMiddleware, principal_of
from authgate.runtime import Runtime
from authgate.settings import Settings
from tests.middleware.apps import RULES
from tests.middleware.conftest import admin_key, new_key
from tests.support import wait_until


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "DELETE"])
    @app.route("/<path:path>", methods=["GET", "POST", "DELETE"])
    def echo(path: str) -> dict[str, Any]:
        principal = principal_of(request.environ)
        return {
            "path": request.path,
            "principal": principal.id if principal else None,
            "kind": principal.kind if principal else None,
        }

    return app


@pytest.fixture
def protected(runtime_for: Callable[..., Runtime]) -> Iterator[tuple[str, Runtime]]:
    rt = runtime_for(tokens="t" * 40)
    app = flask_app()
    app.wsgi_app = AuthgateWSGIMiddleware(app.wsgi_app, rules=RULES, runtime=rt)  # type: ignore[method-assign]
    with wsgi_server(app) as url:
        yield url, rt


def test_rule_outcomes_under_flask(protected: tuple[str, Runtime]) -> None:
    url, rt = protected
    writer = new_key(rt, "writer", "items:write")
    reader = new_key(rt, "reader", "other")
    with httpx.Client(base_url=url) as client:

        def call(method: str, path: str, token: str | None = None) -> httpx.Response:
            return client.request(method, path, headers={"X-API-Key": token} if token else {})

        assert call("GET", "/public/x").json()["principal"] is None
        assert call("GET", "/private/x").status_code == 401
        assert call("GET", "/private/x").json()["code"] == "missing_credentials"
        assert call("GET", "/private/x", "ag_" + "q" * 46).json()["code"] == "invalid_token"
        assert call("POST", "/items", reader).status_code == 403
        assert call("POST", "/items", writer).json()["principal"].startswith("key_")
        assert call("POST", "/items", "t" * 40).status_code == 200
        assert call("DELETE", "/admin/x", writer).status_code == 403
        assert call("DELETE", "/admin/x", admin_key(rt)).json()["kind"] == "admin_key"
        assert call("GET", "/nowhere", writer).status_code == 403


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("//admin/x", 401),
        ("/public/../admin/x", 401),
        ("/public/%2e%2e/admin/x", 401),
        ("/ADMIN/x", 401),
        ("/public/x/..;/x", 400),
        # wsgiref passes no raw target: the decoded path is what both rules and app see.
        ("/public/%2F..%2Fadmin", 401),
    ],
)
def test_path_tricks_under_wsgi(protected: tuple[str, Runtime], path: str, status: int) -> None:
    url, _ = protected
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == status
        assert "code" in json.loads(response.read())
    finally:
        conn.close()


def test_an_owned_runtime_starts_on_the_first_request(
    settings_for: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    app = flask_app()
    middleware = AuthgateWSGIMiddleware(app.wsgi_app, rules=RULES, settings=settings_for())
    app.wsgi_app = middleware  # type: ignore[method-assign]
    assert not middleware.runtime.authenticator.ready
    try:
        with wsgi_server(app) as url:
            responses: list[int] = []

            def fetch() -> None:
                responses.append(httpx.get(url + "/public/x").status_code)

            threads = [threading.Thread(target=fetch) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert responses == [200] * 4
            token = admin_key(middleware.runtime)
            assert httpx.get(url + "/admin/x", headers={"X-API-Key": token}).status_code == 200
            assert wait_until(lambda: len(caplog.records) >= 5)
    finally:
        middleware.close()
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert any('"GET /admin/x" 200 Auth: yes key=admin' in line for line in lines)
    assert all(token not in line for line in lines)


def test_failures_are_rate_limited_under_wsgi(runtime_for: Callable[..., Runtime]) -> None:
    rt = runtime_for(failure_rate_limit="2/day")
    rt.limiter.reset()
    app = flask_app()
    app.wsgi_app = AuthgateWSGIMiddleware(app.wsgi_app, rules=RULES, runtime=rt)  # type: ignore[method-assign]
    with wsgi_server(app) as url:
        bad = {"X-API-Key": "ag_" + "v" * 46}
        statuses = [httpx.get(url + "/private/x", headers=bad).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        last = httpx.get(url + "/private/x", headers=bad)
        assert last.headers["Retry-After"] and last.headers["RateLimit-Limit"] == "2"


def test_an_encoded_slash_is_refused_when_the_server_passes_the_raw_target(
    runtime_for: Callable[..., Runtime],
) -> None:
    reached: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        reached.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b""]

    middleware = AuthgateWSGIMiddleware(app, rules=RULES, runtime=runtime_for())
    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/public/a/../../admin",
        "RAW_URI": "/public/a%2F..%2F..%2Fadmin?x=1",
        "REMOTE_ADDR": "198.51.100.9",
    }

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        statuses.append(status)
        return lambda _data: None

    body = middleware(environ, start_response)
    assert statuses == ["400 Bad Request"]
    assert json.loads(b"".join(body))["code"] == "invalid_path"
    assert reached == []
