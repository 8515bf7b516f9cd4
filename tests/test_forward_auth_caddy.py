"""Real Caddy (Debian's package) with ``forward_auth`` in front of an upstream, asking a
live authgate server. The Caddyfile is read from docs/gateway.md itself."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.authgate_server import authgate_server
from tests.gateway.documented import Stack, documented_caddy, upstream_saw
from tests.gateway.upstream import make_upstream
from tests.support import free_port, live_server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("caddy")
    data_dir = tmp / "data"
    data_dir.mkdir(mode=0o700)
    with (
        live_server(make_upstream()) as upstream,
        authgate_server(data_dir, trusted_proxies=["127.0.0.1"]) as authgate,
        documented_caddy(tmp, free_port(), upstream, authgate.url) as url,
    ):
        yield Stack(url, authgate)


def test_public_get_passes_without_identity(stack: Stack) -> None:
    response = httpx.get(f"{stack.url}/public/readme", headers={"X-Authgate-Key-Id": "key_x"})
    assert response.status_code == 200
    assert not [name for name in upstream_saw(response) if name.startswith("x-authgate-")]


def test_refusals_reach_the_client_as_authgate_wrote_them(stack: Stack) -> None:
    missing = httpx.get(f"{stack.url}/api/items")
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_credentials"
    assert missing.headers["www-authenticate"] == 'Bearer realm="authgate"'
    forbidden = httpx.post(
        f"{stack.url}/packages", headers={"X-API-Key": stack.authgate.reader}, content=b"x"
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"


def test_copy_headers_carry_the_identity_and_no_credential_goes_on(stack: Stack) -> None:
    for headers in (
        {"X-API-Key": stack.authgate.reader},
        {"Authorization": f"Bearer {stack.authgate.reader}"},
    ):
        response = httpx.get(f"{stack.url}/api/items?page=2", headers=headers)
        assert response.status_code == 200
        seen = upstream_saw(response)
        assert seen["x-authgate-key-id"] == stack.authgate.reader_id
        assert seen["x-authgate-key-name"] == "reader"
        assert seen["x-authgate-scopes"] == "read"
        assert "x-api-key" not in seen
        assert "authorization" not in seen
        assert response.json()["query"] == "page=2"


def test_writes_pass_with_the_scope_and_keep_their_body(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.url}/packages", headers={"X-API-Key": stack.authgate.writer}, content=b"pkg"
    )
    assert response.status_code == 200
    assert response.json()["method"] == "POST"
    assert response.json()["body"] == "pkg"


def test_a_client_cannot_name_another_uri(stack: Stack) -> None:
    # Caddy sets X-Forwarded-Uri itself; a client's X-Original-URI disagrees with it.
    response = httpx.get(
        f"{stack.url}/api/items",
        headers={"X-Original-URI": "/public/x", "X-Original-Method": "GET"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "ambiguous_original"


def test_path_tricks_through_caddy(stack: Stack) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(stack.url.rsplit(":", 1)[1]))
    try:
        conn.request("GET", "/public/%2e%2e/api/items")
        assert conn.getresponse().status == 401
    finally:
        conn.close()
