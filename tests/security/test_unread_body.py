"""A refusal that leaves the announced request body unread ends the connection.

The attack (and the everyday failure): a request announces a body (``Content-Length``,
often with ``Expect: 100-continue``) and is refused before authgate reads it. The client
never sends the body; an HTTP/1 server that kept the connection would read the client's
next request as that body (a pooled boto3 connection then answers its next call with
``400``), or hold the socket waiting for bytes that never come. Every such refusal must
say ``Connection: close`` and the server must close.

The servers here keep idle connections for a minute, so a connection that closes within
the socket timeout was closed by the refusal, not by an idle timer.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.adapters.wsgi import AuthgateWSGIMiddleware
from authgate.manage.keys import Actor
from authgate.policy import Rule
from authgate.proxy.gateway import Gateway
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.foundation.helpers import clean_env, serve_process
from tests.s3.support import create_access_key, moto_server, s3_client
from tests.support import free_port, live_server

IDLE_KEEP_ALIVE = 60  # seconds uvicorn keeps an idle connection in these tests
SOCKET_TIMEOUT = 10.0  # every read below ends by then: a failure, never a hang


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after this answer


def _read_answer(sock: socket.socket) -> Answer:
    """One response (final, after any 100 Continue), then whether the server closes."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response: {data!r}"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 100:
            break
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(data) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the response body"
        data += chunk
    body, rest = data[:length], data[length:]
    try:
        more = sock.recv(65536)
    except TimeoutError:
        return Answer(status, headers, body, closed=False)
    return Answer(status, headers, body + rest + more, closed=more == b"" and not rest)


def _exchange(base_url: str, request: bytes) -> Answer:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(request)
        return _read_answer(sock)


def _post(path: str, *header_lines: str, length: int = 999_999, body: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", f"Content-Length: {length}"]
    lines += header_lines
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- the middleware, in front of any ASGI app -------------------------------------------------


async def _echo_length(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # no lifespan of its own
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def protected_app(tmp_path: Path) -> Iterator[tuple[str, str]]:
    settings = load_settings(data_dir=tmp_path, access_log=False, localhost_bypass="off")
    runtime = Runtime(settings)
    runtime.start()
    try:
        created = runtime.keys.create(Actor("test", source="test"), name="k", scopes=["read"])
        app = AuthgateMiddleware(
            _echo_length, rules=[Rule("*", "/**", scopes=("read",))], runtime=runtime
        )
        with live_server(app, proxy_headers=False, timeout_keep_alive=IDLE_KEEP_ALIVE) as url:
            yield url, created.token
    finally:
        runtime.close()


@pytest.mark.parametrize(
    "extra",
    [
        ["Expect: 100-continue"],  # no credential: 401
        ["Expect: 100-continue", "X-API-Key: ag_wrong_wrong_wrong_wrong_wrong_wrong"],
    ],
    ids=["anonymous", "bad-key"],
)
def test_middleware_refusal_of_an_unread_body_closes(
    protected_app: tuple[str, str], extra: list[str]
) -> None:
    url, _token = protected_app
    answer = _exchange(url, _post("/upload", *extra))
    assert answer.status == 401
    assert answer.headers.get("connection") == "close"
    assert answer.closed


def test_middleware_path_refusal_of_an_unread_body_closes(protected_app: tuple[str, str]) -> None:
    url, token = protected_app
    answer = _exchange(url, _post("/a/%2e%2e/%2e%2e/etc", f"X-API-Key: {token}"))
    assert answer.status == 400
    assert answer.headers.get("connection") == "close"
    assert answer.closed


def test_a_refusal_keeps_the_connection_when_no_body_was_announced(
    protected_app: tuple[str, str],
) -> None:
    url, token = protected_app
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = _read_answer_keeping(sock)
        assert first.status == 401
        assert "connection" not in first.headers
        # The same connection serves the next request.
        sock.sendall(f"GET /x HTTP/1.1\r\nHost: localhost\r\nX-API-Key: {token}\r\n\r\n".encode())
        second = _read_answer_keeping(sock)
        assert second.status == 200


def test_a_body_the_app_read_keeps_the_connection(protected_app: tuple[str, str]) -> None:
    url, token = protected_app
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(_post("/u", f"X-API-Key: {token}", length=5, body=b"hello"))
        first = _read_answer_keeping(sock)
        assert (first.status, first.body) == (200, b"5")
        assert "connection" not in first.headers
        sock.sendall(_post("/u", f"X-API-Key: {token}", length=3, body=b"abc"))
        assert _read_answer_keeping(sock).body == b"3"


def _read_answer_keeping(sock: socket.socket) -> Answer:
    """One response on a connection that is meant to stay open (nothing read past it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the response body"
        body += chunk
    return Answer(int(head.split(b" ", 2)[1]), headers, body, closed=False)


# -- the root app: token service, gateway ------------------------------------------------------


@pytest.fixture
def root_app(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``build_root_app`` (what ``authgate serve`` runs) with a gateway to a closed port."""
    settings = load_settings(
        data_dir=tmp_path,
        access_log=False,
        localhost_bypass="off",
        rules=[{"method": "*", "path": "/**", "scopes": ["read"]}],
    )
    runtime = Runtime(settings)
    runtime.start()
    try:
        created = runtime.keys.create(Actor("test", source="test"), name="k", scopes=["read"])
        gateway = Gateway(f"http://127.0.0.1:{free_port()}", connect_timeout=5)
        app = build_root_app(runtime, downstream=gateway)
        with live_server(app, proxy_headers=False, timeout_keep_alive=IDLE_KEEP_ALIVE) as url:
            yield url, created.token
    finally:
        runtime.close()


def test_login_route_413_for_a_declared_huge_body_closes(root_app: tuple[str, str]) -> None:
    url, _token = root_app
    request = _post("/authgate/v1/tokens", "Content-Type: application/json", length=999_999)
    answer = _exchange(url, request)
    assert answer.status == 413
    assert answer.headers.get("connection") == "close"
    assert answer.closed


def test_service_route_refusal_of_an_unread_body_closes(root_app: tuple[str, str]) -> None:
    url, _token = root_app
    # Under the prefix a credential is required: refused before the route reads anything.
    answer = _exchange(url, _post("/authgate/v1/keys", "Expect: 100-continue", length=50))
    assert answer.status == 401
    assert answer.headers.get("connection") == "close"
    assert answer.closed


def test_gateway_failure_with_the_body_half_sent_closes(root_app: tuple[str, str]) -> None:
    url, token = root_app
    # 1000 of 100,000 bytes sent: the upstream cannot be reached, the rest is never read.
    request = _post("/api/put", f"X-API-Key: {token}", length=100_000, body=b"x" * 1000)
    answer = _exchange(url, request)
    assert answer.status == 502
    assert answer.headers.get("connection") == "close"
    assert answer.closed


def test_gateway_route_refusal_of_an_unread_body_closes(root_app: tuple[str, str]) -> None:
    url, _token = root_app
    answer = _exchange(url, _post("/api/put", "Expect: 100-continue", length=4096))
    assert answer.status == 401
    assert answer.headers.get("connection") == "close"
    assert answer.closed


# -- boto3 through the real gateway, in front of moto -----------------------------------------


def test_boto3_denied_put_then_next_call_on_the_same_connection(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    admin = create_access_key(data_dir, "admin", "bucket=admin")
    reader = create_access_key(data_dir, "reader", "bucket=read")
    with moto_server(tmp_path / "moto", free_port()) as moto:
        args = ["--data-dir", str(data_dir), "--upstream", moto, "--localhost-bypass", "off"]
        with serve_process(tmp_path / "serve", free_port(), *args, env=clean_env()) as served:
            owner = s3_client(served.url, admin)
            owner.create_bucket(Bucket="bucket")
            owner.put_object(Bucket="bucket", Key="seed.txt", Body=b"seed")
            # One pooled connection, no retries: the second call must use the connection
            # the refusal answered on, and its answer is not smoothed over by a retry.
            client = s3_client(
                served.url, reader, max_pool_connections=1, read_timeout=SOCKET_TIMEOUT
            )
            sent: list[dict[str, bytes]] = []
            client.meta.events.register(
                "before-send.s3.PutObject",
                lambda request, **_: sent.append(dict(request.headers)),
            )
            assert client.get_object(Bucket="bucket", Key="seed.txt")["Body"].read() == b"seed"
            with pytest.raises(client.exceptions.ClientError) as denied:
                client.put_object(Bucket="bucket", Key="new.txt", Body=io.BytesIO(b"x" * 64))
            assert denied.value.response["Error"]["Code"] == "AccessDenied"
            assert sent and sent[0].get("Expect") == b"100-continue"
            listed = client.list_objects_v2(Bucket="bucket")
            assert [item["Key"] for item in listed["Contents"]] == ["seed.txt"]
            assert client.get_object(Bucket="bucket", Key="seed.txt")["Body"].read() == b"seed"


# -- the WSGI middleware: the WSGI server decides -----------------------------------------
#
# A WSGI app may not set hop-by-hop headers (PEP 3333; wsgiref asserts it, gunicorn drops
# them), so the WSGI middleware cannot say Connection: close itself. These pin down that
# the servers it runs under end or drain such a connection on their own.


def _wsgi_hello(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@contextmanager
def _wsgi_server(kind: str, app: Any) -> Iterator[str]:
    if kind == "wsgiref":
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        server: Any = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    else:
        from werkzeug.serving import make_server as werkzeug_server

        server = werkzeug_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("kind", ["wsgiref", "werkzeug"])
def test_wsgi_refusal_of_an_unread_body_ends_the_connection(tmp_path: Path, kind: str) -> None:
    settings = load_settings(data_dir=tmp_path, access_log=False, localhost_bypass="off")
    app = AuthgateWSGIMiddleware(_wsgi_hello, rules=[Rule("*", "/**")], settings=settings)
    try:
        with _wsgi_server(kind, app) as url:
            answer = _exchange(url, _post("/upload", "Expect: 100-continue"))
    finally:
        app.close()
    assert answer.status == 401
    assert answer.closed
