"""Real nginx (Debian's package) with ``auth_request`` in front of an upstream, asking a
live authgate server. The configuration is read from docs/gateway.md itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.authgate_server import authgate_server
from tests.gateway.documented import (
    Stack,
    documented_block,
    documented_nginx,
    nginx_check,
    upstream_saw,
)
from tests.gateway.upstream import make_upstream
from tests.support import free_port, live_server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("nginx")
    data_dir = tmp / "data"
    data_dir.mkdir(mode=0o700)
    with (
        live_server(make_upstream()) as upstream,
        authgate_server(data_dir, trusted_proxies=["127.0.0.1"]) as authgate,
        documented_nginx(tmp, free_port(), upstream, authgate.url) as url,
    ):
        yield Stack(url, authgate)


def test_the_printed_configuration_passes_nginx_t_unchanged(tmp_path: Path) -> None:
    # As docs/gateway.md prints it, in the http block Debian's nginx.conf includes it in.
    check = nginx_check(tmp_path, documented_block("nginx"))
    assert check.returncode == 0, check.stderr


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


def test_a_bearer_token_never_reaches_the_upstream(stack: Stack) -> None:
    response = httpx.get(
        f"{stack.url}/api/items", headers={"Authorization": f"Bearer {stack.authgate.reader}"}
    )
    assert response.status_code == 200
    seen = upstream_saw(response)
    assert seen["x-authgate-key-id"] == stack.authgate.reader_id
    assert "authorization" not in seen
    assert stack.authgate.reader not in str(response.json())


def test_a_refused_original_path_is_a_403_not_nginxs_500(stack: Stack) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(stack.url.rsplit(":", 1)[1]))
    try:
        conn.request("GET", "/api/a%2Fb", headers={"X-API-Key": stack.authgate.reader})
        assert conn.getresponse().status == 403
    finally:
        conn.close()


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
    assert response.status_code == 403


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
