"""Real nginx (Debian's package) with ``auth_request`` in front of an upstream, asking a
live authgate server. The configuration is the one docs/gateway.md shows."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.gateway.authgate_server import LiveAuthgate, authgate_server
from tests.gateway.upstream import make_upstream
from tests.support import free_port, live_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONFIG = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 128; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    server {{
        listen 127.0.0.1:{port};

        location / {{
            auth_request /_authgate;
            # What authgate vouches for goes upstream; a client's own copies never do.
            auth_request_set $authgate_key_id $upstream_http_x_authgate_key_id;
            auth_request_set $authgate_key_name $upstream_http_x_authgate_key_name;
            auth_request_set $authgate_scopes $upstream_http_x_authgate_scopes;
            proxy_set_header X-Authgate-Key-Id $authgate_key_id;
            proxy_set_header X-Authgate-Key-Name $authgate_key_name;
            proxy_set_header X-Authgate-Scopes $authgate_scopes;
            # The upstream needs no authgate credential.
            proxy_set_header X-API-Key "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_pass {upstream};
        }}

        location = /_authgate {{
            internal;
            proxy_pass {authgate}/authgate/v1/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@dataclass
class Stack:
    url: str
    authgate: LiveAuthgate


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not Path(NGINX).is_file():
        # A failure, not a skip: these tests are part of the suite. ./scripts/test (the
        # README's test command, and CI's) installs nginx before it runs pytest.
        pytest.fail(f"nginx is not installed ({NGINX}); run ./scripts/test, which installs it")
    tmp = tmp_path_factory.mktemp("nginx")
    data_dir = tmp / "data"
    data_dir.mkdir(mode=0o700)
    port = free_port()
    with (
        live_server(make_upstream()) as upstream,
        authgate_server(data_dir, trusted_proxies=["127.0.0.1"]) as authgate,
    ):
        conf = tmp / "nginx.conf"
        conf.write_text(CONFIG.format(tmp=tmp, port=port, upstream=upstream, authgate=authgate.url))
        check = subprocess.run(
            [NGINX, "-t", "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    httpx.get(url)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"nginx did not start: {(tmp / 'error.log').read_text()}"
                        ) from None
                    time.sleep(0.05)
            yield Stack(url, authgate)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            if proc.stderr is not None:
                proc.stderr.close()


def upstream_saw(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.json()["headers"]}


def test_public_get_passes_without_identity(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/public/readme", headers={"X-Authgate-Key-Id": "key_spoofed"})
    assert response.status_code == 200
    seen = upstream_saw(response)
    assert response.json()["raw_path"] == "/public/readme"
    assert not [name for name in seen if name.startswith("x-authgate-")]


def test_missing_key_is_401(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/api/items")
    assert response.status_code == 401
    # nginx hands the client the WWW-Authenticate challenge authgate answered with.
    assert response.headers["www-authenticate"] == 'Bearer realm="authgate"'


def test_bad_key_is_401(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/api/items", headers={"X-API-Key": "ag_" + "z" * 40})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_valid_key_passes_and_the_upstream_sees_the_identity(stack: Stack) -> None:
    response = httpx.get(
        f"{stack.url}/api/items?page=2",
        headers={"X-API-Key": stack.authgate.reader, "X-Authgate-Key-Id": "key_spoofed"},
    )
    assert response.status_code == 200
    seen = upstream_saw(response)
    assert seen["x-authgate-key-id"] == stack.authgate.reader_id
    assert seen["x-authgate-key-name"] == "reader"
    assert seen["x-authgate-scopes"] == "read"
    assert "x-api-key" not in seen
    assert response.json()["query"] == "page=2"


def test_forbidden_scope_is_403(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.url}/packages", headers={"X-API-Key": stack.authgate.reader}, content=b"{}"
    )
    assert response.status_code == 403


def test_writes_pass_with_the_scope(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.url}/packages", headers={"X-API-Key": stack.authgate.writer}, content=b"pkg"
    )
    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert response.json()["body"] == "pkg"
    assert upstream_saw(response)["x-authgate-key-name"] == "writer"


def test_a_client_cannot_name_another_uri(stack: Stack) -> None:
    # The client claims the request is for a public path; nginx says what it really is,
    # authgate sees the two disagree and refuses, and nginx never forwards the request.
    response = httpx.get(
        f"{stack.url}/api/items",
        headers={"X-Forwarded-Uri": "/public/x", "X-Forwarded-Method": "GET"},
    )
    assert response.status_code >= 400
    assert response.status_code not in (200, 404)


def test_path_tricks_through_nginx(stack: Stack) -> None:
    # nginx passes the URI as the client sent it; authgate makes it canonical itself.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(stack.url.rsplit(":", 1)[1]))
    try:
        conn.request("GET", "/public/%2e%2e/api/items")
        assert conn.getresponse().status in (400, 401)
    finally:
        conn.close()


def test_still_serving_after_the_refusals(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/api/x", headers={"X-API-Key": stack.authgate.writer})
    assert response.status_code == 200
