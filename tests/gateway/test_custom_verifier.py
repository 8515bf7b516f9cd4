"""A custom verifier registered with one setting, in a real ``authgate serve --upstream``:
the gateway and forward auth (``/authgate/v1/verify``) take it unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from examples.hmac_verifier import SECRETS_VARIABLE, sign

from tests.foundation.helpers import ServeProcess, clean_env, serve_process
from tests.gateway.serve_cli import CONFIG, make_key
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "a shared secret of the toy verifier"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[ServeProcess]:
    workdir = tmp_path_factory.mktemp("custom-verifier")
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o700)
    config = workdir / "authgate.toml"
    # The one line that registers it, above the rules the gateway tests use.
    config.write_text('verifiers = ["examples.hmac_verifier:HmacHeader"]\n' + CONFIG)
    make_key(data_dir, "reader", "read")
    env = clean_env(
        **{SECRETS_VARIABLE: f"robot={SECRET}"},
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    args = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", upstream_url]
    with serve_process(workdir, free_port(), *args, "--localhost-bypass", "off", env=env) as p:
        yield p


def signed(method: str, path: str, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hmac-Key": "robot", "X-Hmac-Signature": sign(secret, method, path)}


def test_the_gateway_forwards_a_signed_request_with_its_identity(served: ServeProcess) -> None:
    response = httpx.get(f"{served.url}/api/items", headers=signed("GET", "/api/items"))
    assert response.status_code == 200
    seen = dict(response.json()["headers"])
    assert seen["x-authgate-key-id"] == "hmac:robot"
    assert seen["x-authgate-key-name"] == "robot"
    assert "x-hmac-signature" in seen  # not an authgate credential header: passed on


def test_the_gateway_refuses_a_bad_signature_before_the_upstream(served: ServeProcess) -> None:
    response = httpx.get(f"{served.url}/api/items", headers=signed("GET", "/api/items", "wrong"))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert "x-upstream" not in response.headers
    # Signed for another path: the rules' path, not the signature's, is what is judged.
    other = httpx.get(f"{served.url}/api/items", headers=signed("GET", "/api/other"))
    assert other.status_code == 401


def test_forward_auth_takes_the_custom_credential(served: ServeProcess) -> None:
    headers = {"X-Original-Method": "GET", "X-Original-URI": "/api/items"}
    passed = httpx.get(
        f"{served.url}/authgate/v1/verify", headers={**headers, **signed("GET", "/api/items")}
    )
    assert passed.status_code == 200
    assert passed.headers["x-authgate-key-id"] == "hmac:robot"
    assert passed.headers["x-authgate-scopes"] == "read"
    refused = httpx.get(
        f"{served.url}/authgate/v1/verify",
        headers={**headers, **signed("GET", "/api/items", "wrong")},
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


def test_authgate_own_routes_never_take_a_custom_credential(served: ServeProcess) -> None:
    whoami = httpx.get(
        f"{served.url}/authgate/v1/whoami", headers=signed("GET", "/authgate/v1/whoami")
    )
    assert whoami.status_code == 401
