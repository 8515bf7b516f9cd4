"""``authgate serve --upstream``: the whole product in front of a live upstream."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.gateway.serve_cli import ServedGateway, served_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[ServedGateway]:
    with served_gateway(tmp_path_factory.mktemp("serve"), upstream_url) as served:
        yield served


def test_banner_names_the_upstream(gateway: ServedGateway, upstream_url: str) -> None:
    _out, err = gateway.process.output()
    assert f"Gateway: requests outside /authgate/ go to {upstream_url}" in err


def test_a_valid_key_reaches_the_upstream_with_identity(gateway: ServedGateway) -> None:
    response = httpx.get(
        f"{gateway.url}/api/items?page=2",
        headers={"X-API-Key": gateway.token, "X-Authgate-Key-Id": "admin"},
    )
    assert response.status_code == 200
    seen = {name: value for name, value in response.json()["headers"]}
    assert seen["x-authgate-key-id"] == gateway.key_id
    assert seen["x-authgate-key-name"] == "reader"
    assert seen["x-authgate-scopes"] == "read"
    assert "x-api-key" not in seen
    assert response.json()["query"] == "page=2"


def test_refusals_never_reach_the_upstream(gateway: ServedGateway) -> None:
    missing = httpx.get(f"{gateway.url}/api/items")
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_credentials"
    assert missing.headers["www-authenticate"] == 'Bearer realm="authgate"'
    assert "x-upstream" not in missing.headers
    bad = httpx.get(f"{gateway.url}/api/items", headers={"X-API-Key": "ag_" + "q" * 40})
    assert bad.status_code == 401
    assert bad.json()["code"] == "invalid_token"


def test_public_routes_pass_and_authgate_keeps_its_prefix(gateway: ServedGateway) -> None:
    public = httpx.get(f"{gateway.url}/public/readme")
    assert public.status_code == 200
    assert public.headers["x-upstream"] == "yes"
    health = httpx.get(f"{gateway.url}/authgate/v1/health")
    assert health.json() == {"status": "ok"}
    assert "x-upstream" not in health.headers
    whoami = httpx.get(f"{gateway.url}/authgate/v1/whoami", headers={"X-API-Key": gateway.token})
    assert whoami.json()["id"] == gateway.key_id


def test_streamed_upload_through_serve(gateway: ServedGateway) -> None:
    from tests.gateway.upstream import pattern, pattern_digest

    size = 20 * 1024 * 1024
    response = httpx.put(
        f"{gateway.url}/upload",
        headers={"X-API-Key": gateway.token, "content-length": str(size)},
        content=pattern(size),
        timeout=60,
    )
    assert response.json()["sha256"] == pattern_digest(size)


def test_websocket_through_serve(gateway: ServedGateway) -> None:
    ws_url = gateway.url.replace("http://", "ws://") + "/ws"
    with connect(ws_url, additional_headers={"X-API-Key": gateway.token}) as ws:
        ws.send("through the whole stack")
        assert ws.recv() == "through the whole stack"
    # Browsers send the credential as a subprotocol; it never reaches the upstream.
    with connect(
        ws_url,
        subprotocols=[Subprotocol("authgate"), Subprotocol(f"authgate.bearer.{gateway.token}")],
    ) as ws:
        ws.send("headers")
        seen = json.loads(ws.recv())
    assert not [p for p in seen["subprotocols"] if p.startswith("authgate.bearer.")]
    assert ["x-authgate-key-name", "reader"] in seen["headers"]
    with pytest.raises(InvalidStatus) as refused:
        with connect(ws_url):
            pass
    assert refused.value.response.status_code == 401


def test_upstream_down_through_serve(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with served_gateway(tmp_path, dead) as served:
        response = httpx.get(f"{served.url}/x", headers={"X-API-Key": served.token})
        assert response.status_code == 502
        assert response.json()["code"] == "bad_gateway"
        assert httpx.get(f"{served.url}/authgate/v1/health").status_code == 200
