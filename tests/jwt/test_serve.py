"""A real ``authgate serve --upstream`` with ``[[jwt_issuers]]`` in its config file: the
gateway forwards a JWT's identity, forward auth (``/authgate/v1/verify``) answers for it,
both refuse what the middleware refuses, and the access log names the principal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.foundation.helpers import ServeProcess, clean_env, serve_process
from tests.gateway.serve_cli import make_key
from tests.gateway.upstream import make_upstream
from tests.jwt.issuer import AUDIENCE, ISSUER, TestIssuer, ec_key
from tests.support import free_port, live_server, wait_until

CONFIG = """
scopes = ["items:write"]

[[rules]]
method = "GET"
path = "/public/**"
public = true

[[rules]]
method = "POST"
path = "/items"
scopes = ["items:write"]

[[rules]]
method = "*"
path = "/**"
scopes = ["read"]

[[jwt_issuers]]
issuer = "{issuer}"
jwks_url = "{jwks_url}"
audiences = ["{audience}"]
algorithms = ["RS256", "ES256"]
scopes_claim = "scp"
scope_map = {{ "api.write" = ["items:write", "read"] }}
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer().serving() as running:
        yield running


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, issuer: TestIssuer
) -> Iterator[tuple[ServeProcess, str]]:
    workdir = tmp_path_factory.mktemp("jwt-serve")
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o700)
    config = workdir / "authgate.toml"
    config.write_text(CONFIG.format(issuer=ISSUER, jwks_url=issuer.url, audience=AUDIENCE))
    token, _ = make_key(data_dir, "reader", "read")
    with live_server(make_upstream()) as upstream:
        args = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", upstream]
        with serve_process(
            workdir, free_port(), *args, "--localhost-bypass", "off", env=clean_env()
        ) as process:
            yield process, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_gateway_forwards_a_jwt_principal(
    served: tuple[ServeProcess, str], issuer: TestIssuer
) -> None:
    process, _ = served
    response = httpx.get(f"{process.url}/api/items", headers=bearer(issuer.sign(scp=["read"])))
    assert response.status_code == 200, response.text
    seen = dict(response.json()["headers"])
    assert seen["x-authgate-key-id"] == "jwt:https://idp.example.test#user-42"
    assert seen["x-authgate-key-name"] == "user-42"
    assert seen["x-authgate-scopes"] == "read"
    assert "authorization" not in seen  # authgate's credential stays with authgate


def test_the_gateway_applies_scopes_and_refuses_bad_tokens(
    served: tuple[ServeProcess, str], issuer: TestIssuer
) -> None:
    process, key = served
    reader = bearer(issuer.sign(scp=["read"]))
    assert httpx.post(f"{process.url}/items", headers=reader).status_code == 403
    writer = bearer(issuer.sign(scp=["api.write"]))
    assert httpx.post(f"{process.url}/items", headers=writer).status_code == 200
    expired = bearer(issuer.sign(exp=int(time.time()) - 3600))
    response = httpx.get(f"{process.url}/api/items", headers=expired)
    assert response.status_code == 401 and response.json()["code"] == "jwt_expired"
    assert "x-upstream" not in response.headers
    # An authgate key works beside the issuer's tokens.
    assert httpx.get(f"{process.url}/api/items", headers={"X-API-Key": key}).status_code == 200


def test_verify_answers_for_a_jwt(served: tuple[ServeProcess, str], issuer: TestIssuer) -> None:
    process, _ = served
    headers = {"X-Original-Method": "GET", "X-Original-URI": "/api/items"}
    passed = httpx.get(
        f"{process.url}/authgate/v1/verify", headers={**headers, **bearer(issuer.sign(scp="read"))}
    )
    assert passed.status_code == 200, passed.text
    assert passed.headers["x-authgate-key-id"] == "jwt:https://idp.example.test#user-42"
    wrong_audience = bearer(issuer.sign(scp="read", aud="https://elsewhere.test"))
    refused = httpx.get(f"{process.url}/authgate/v1/verify", headers={**headers, **wrong_audience})
    assert refused.status_code == 401
    assert refused.json()["code"] == "jwt_wrong_audience"


def test_rotation_reaches_the_server(served: tuple[ServeProcess, str], issuer: TestIssuer) -> None:
    process, _ = served
    assert httpx.get(f"{process.url}/api/x", headers=bearer(issuer.sign(scp="read"))).is_success
    issuer.rotate(ec_key("ec-rotated"))
    token = issuer.sign(kid="ec-rotated", scp="read")
    assert httpx.get(f"{process.url}/api/x", headers=bearer(token)).status_code == 200


def test_the_access_log_names_the_jwt_principal(
    served: tuple[ServeProcess, str], issuer: TestIssuer
) -> None:
    process, _ = served
    token = issuer.sign(sub="logged-subject", scp="read")
    assert httpx.get(f"{process.url}/api/logged", headers=bearer(token)).status_code == 200

    def logged() -> list[str]:
        out, err = process.output()
        return [line for line in (out + err).splitlines() if "/api/logged" in line]

    assert wait_until(lambda: bool(logged()), timeout=10), process.output()
    assert "jwt:https://idp.example.test#logged-subject" in logged()[-1]
    assert token not in "".join(process.output())
