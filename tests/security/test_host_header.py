"""One Host a request (RFC 9112 §3.2), wherever authgate meets one: the ASGI middleware
(on its general path and on the remembered-token hot path), the WSGI middleware, the
gateway and forward auth. Every request here is written byte for byte on a socket to a
real server: two Host headers, a Host that two readers could split differently, an
absolute-form target naming another host than Host does."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.serving import make_server

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.adapters.wsgi import AuthgateWSGIMiddleware
from authgate.manage.keys import Actor
from authgate.policy import Rule
from authgate.proxy.gateway import Gateway
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.support import live_server

ACTOR = Actor("test", source="test")


def raw(url: str, head: str) -> tuple[int, bytes]:
    """Send ``head`` as written; the status and the whole answer."""
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def request(target: str, *headers: str) -> str:
    return "\r\n".join([f"GET {target} HTTP/1.1", *headers, "Connection: close", "", ""])


def code_of(answer: bytes) -> str:
    body = answer.partition(b"\r\n\r\n")[2]
    value: str = json.loads(body)["code"]
    return value


def refused_as_ambiguous(answer: bytes, server: str) -> bool:
    """authgate's 400, or (h11 only) the server's own 400 for repeated Host headers,
    which it gives before any app runs."""
    if server == "h11" and b"content-type: application/json" not in answer.lower():
        return answer.startswith(b"HTTP/1.1 400 ")
    return code_of(answer) == "ambiguous_host"


@dataclass
class Reached:
    hosts: list[bytes]


def asgi_app(reached: Reached) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        reached.hosts += [value for name, value in scope["headers"] if name == b"host"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    return app


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("hosts")
    rt = Runtime(load_settings(data_dir=root, localhost_bypass="off", access_log=False))
    rt.start()
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture(scope="module")
def token(runtime: Runtime) -> str:
    return runtime.keys.create(ACTOR, name="caller", scopes=["read"]).token


AMBIGUOUS = [
    pytest.param(["Host: app.example", "Host: admin.example"], id="two Host headers"),
    pytest.param(["Host: app.example", "Host: app.example"], id="the same Host twice"),
    pytest.param(["Host: app.example, admin.example"], id="two hosts in one header"),
    pytest.param(["Host: app.example@admin.example"], id="userinfo"),
    pytest.param(["Host: app.example/admin"], id="a path in Host"),
    pytest.param(["Host: app%2eexample"], id="percent-encoded"),
]


# -- the ASGI middleware ------------------------------------------------------------------


@pytest.mark.parametrize("server", ["httptools", "h11"])
@pytest.mark.parametrize("hosts", AMBIGUOUS)
def test_the_asgi_middleware_refuses_an_ambiguous_host(
    runtime: Runtime, token: str, server: str, hosts: list[str]
) -> None:
    reached = Reached([])
    app = AuthgateMiddleware(asgi_app(reached), rules=[Rule("*", "/**")], runtime=runtime)
    with live_server(app, proxy_headers=False, http=server) as url:
        good, _ = raw(url, request("/x", "Host: app.example", f"X-API-Key: {token}"))
        assert good == 200
        # Twice: the second request is the remembered-token hot path's.
        for _ in range(2):
            status, answer = raw(url, request("/x", *hosts, f"X-API-Key: {token}"))
            assert status == 400, answer
            assert refused_as_ambiguous(answer, server)
    assert reached.hosts == [b"app.example"]


def test_the_asgi_middleware_refuses_an_absolute_target_naming_another_host(
    runtime: Runtime, token: str
) -> None:
    reached = Reached([])
    app = AuthgateMiddleware(asgi_app(reached), rules=[Rule("*", "/**")], runtime=runtime)
    # h11 hands the target over as sent (httptools keeps only its path).
    with live_server(app, proxy_headers=False, http="h11") as url:
        for target, host in (
            ("http://admin.example/x", "app.example"),
            ("http://app.example@admin.example/x", "app.example"),
        ):
            status, answer = raw(url, request(target, f"Host: {host}", f"X-API-Key: {token}"))
            assert status == 400, answer
            assert code_of(answer) == "ambiguous_host"
    assert reached.hosts == []


# -- the WSGI middleware ------------------------------------------------------------------


def wsgi_app(reached: Reached) -> Any:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        reached.hosts.append(environ.get("HTTP_HOST", "").encode("latin-1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app"]

    return app


@pytest.fixture
def wsgi_url(runtime: Runtime) -> Iterator[tuple[str, Reached]]:
    reached = Reached([])
    app = AuthgateWSGIMiddleware(wsgi_app(reached), rules=[Rule("*", "/**")], runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", reached
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.mark.parametrize("hosts", AMBIGUOUS)
def test_the_wsgi_middleware_refuses_an_ambiguous_host(
    wsgi_url: tuple[str, Reached], token: str, hosts: list[str]
) -> None:
    url, reached = wsgi_url
    good, _ = raw(url, request("/x", "Host: app.example", f"X-API-Key: {token}"))
    assert good == 200
    status, answer = raw(url, request("/x", *hosts, f"X-API-Key: {token}"))
    assert status == 400, answer
    assert code_of(answer) == "ambiguous_host"
    assert reached.hosts == [b"app.example"]


def test_the_wsgi_middleware_refuses_an_absolute_target_naming_another_host(
    runtime: Runtime, token: str
) -> None:
    # gunicorn passes the target as sent in RAW_URI and keeps the client's Host.
    reached = Reached([])
    app = AuthgateWSGIMiddleware(wsgi_app(reached), rules=[Rule("*", "/**")], runtime=runtime)
    answers: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "RAW_URI": "http://admin.example/x",
        "HTTP_HOST": "app.example",
        "HTTP_X_API_KEY": token,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        answers.append(status)
        return lambda _data: None

    body = b"".join(app(environ, start_response))
    assert answers == ["400 Bad Request"]
    assert json.loads(body)["code"] == "ambiguous_host"
    assert reached.hosts == []


# -- the gateway --------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["httptools", "h11"])
@pytest.mark.parametrize("hosts", AMBIGUOUS)
def test_the_gateway_refuses_an_ambiguous_host(server: str, hosts: list[str]) -> None:
    reached = Reached([])
    with live_server(asgi_app(reached), proxy_headers=False) as upstream:
        gateway = Gateway(upstream)
        with live_server(gateway, proxy_headers=False, http=server) as url:
            good, _ = raw(url, request("/x", "Host: app.example"))
            assert good == 200
            status, answer = raw(url, request("/x", *hosts))
            assert status == 400, answer
            assert refused_as_ambiguous(answer, server)
            if server == "h11":
                status, answer = raw(url, request("http://admin.example/x", "Host: app.example"))
                assert status == 400
                assert code_of(answer) == "ambiguous_host"
    assert reached.hosts == [b"app.example"]


# -- forward auth -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def verify_url(runtime: Runtime) -> Iterator[str]:
    with live_server(build_root_app(runtime), proxy_headers=False) as url:
        yield url


def verify(*headers: str) -> str:
    return request("/authgate/v1/verify", "X-Forwarded-Method: GET", *headers)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(["Host: auth", "Host: other"], id="two Host headers on verify's request"),
        pytest.param(
            ["Host: auth", "X-Forwarded-Host: app.example", "X-Forwarded-Host: admin.example"],
            id="two X-Forwarded-Host",
        ),
        pytest.param(
            ["Host: auth", "X-Forwarded-Host: app.example, admin.example"],
            id="two hosts in X-Forwarded-Host",
        ),
        pytest.param(
            ["Host: auth", "X-Forwarded-Host: app.example@admin.example"],
            id="userinfo in X-Forwarded-Host",
        ),
    ],
)
def test_forward_auth_refuses_an_ambiguous_original_host(
    verify_url: str, token: str, headers: list[str]
) -> None:
    status, answer = raw(verify_url, verify("X-Forwarded-Uri: /x", *headers, f"X-API-Key: {token}"))
    # verify's own Host is refused as any request's (400); the original's, as the proxy
    # reports it, with a 403 that nginx passes on instead of turning it into a 500.
    own = "Host: other" in headers
    assert status == (400 if own else 403), answer
    assert code_of(answer) == "ambiguous_host"


def test_forward_auth_refuses_an_absolute_uri_naming_another_host(
    verify_url: str, token: str
) -> None:
    good, answer = raw(
        verify_url,
        verify(
            "X-Forwarded-Uri: http://app.example/x",
            "Host: auth",
            "X-Forwarded-Host: app.example",
            f"X-API-Key: {token}",
        ),
    )
    assert good == 200, answer
    for headers in (
        ["X-Forwarded-Uri: http://admin.example/x", "Host: auth", "X-Forwarded-Host: app.example"],
        ["X-Forwarded-Uri: http://admin.example/x", "Host: app.example"],
    ):
        status, answer = raw(verify_url, verify(*headers, f"X-API-Key: {token}"))
        assert status == 403, answer
        assert code_of(answer) == "ambiguous_host"


def test_the_request_without_a_host_still_passes(runtime: Runtime, token: str) -> None:
    # HTTP/1.0 needs no Host: one reading (none), nothing to refuse.
    reached = Reached([])
    app = AuthgateMiddleware(asgi_app(reached), rules=[Rule("*", "/**")], runtime=runtime)
    with live_server(app, proxy_headers=False) as url:
        head = "\r\n".join(["GET /x HTTP/1.0", f"X-API-Key: {token}", "", ""])
        status, _ = raw(url, head)
    assert status == 200
