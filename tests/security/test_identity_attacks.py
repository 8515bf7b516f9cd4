"""Attacks on the identity features: external JWTs (token memory, issuer confusion,
identity smuggling), leak alerts and the Envoy form of forward auth."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from tests.api import conftest as api_fixtures
from tests.api.github_alerts import SigningKey, alert_body, signed_headers, write_key_list
from tests.api.service import Service
from tests.jwt import conftest as jwt_fixtures
from tests.jwt.conftest import issuer_table
from tests.jwt.issuer import TestIssuer, rsa_key
from tests.jwt.test_verifier import call, refused

JwtRuntime = Callable[..., Runtime]

settings_for = jwt_fixtures.settings_for
runtime_for = jwt_fixtures.runtime_for
issuer = jwt_fixtures.issuer
jwt_runtime = jwt_fixtures.jwt_runtime
make_service = api_fixtures.make_service


def test_a_remembered_token_falls_once_its_key_leaves_the_jwks(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    # The attacker holds a stolen, long-lived token and replays only it: the memory must
    # not keep it alive past the key set's lifetime after the issuer dropped its key.
    rt = jwt_runtime(jwks_cache_min_seconds=0.5, jwks_cache_max_seconds=0.5)
    stolen = issuer.sign(exp=int(time.time()) + 3600)
    assert call(rt, token=stolen).status_code == 200
    assert call(rt, token=stolen).status_code == 200  # from memory
    issuer.rotate(rsa_key("rsa-2"), drop="rsa-1")
    time.sleep(1.0)  # past the key set's whole lifetime
    refused(call(rt, token=stolen), "jwt_unknown_key")


def test_one_issuer_cannot_speak_for_another_sharing_its_kid(
    runtime_for: Callable[..., Runtime], issuer: TestIssuer
) -> None:
    # Two issuers, each with a key named rsa-1: a token signed by the second's key but
    # naming the first as iss must fail, whatever the memory of either holds.
    with TestIssuer().serving() as other:
        tables: list[dict[str, Any]] = [
            issuer_table(issuer),
            {**issuer_table(other), "issuer": "https://other.example.test"},
        ]
        rt = runtime_for(jwt_issuers=tables, scopes=["items:write"], failure_rate_limit="off")
        own = other.sign(iss="https://other.example.test")
        assert call(rt, token=own).status_code == 200
        forged = other.sign()  # iss is the first issuer's, key the second's
        refused(call(rt, token=forged), "jwt_bad_signature")


@pytest.mark.parametrize("exp", [1e300, 253402300800, 10**20, float("inf"), float("nan")])
def test_an_exp_beyond_the_calendar_is_a_401_not_a_500(
    jwt_runtime: JwtRuntime, issuer: TestIssuer, exp: float
) -> None:
    refused(call(jwt_runtime(), token=issuer.sign(exp=exp)), "jwt_invalid_claim")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", 123),  # never the same principal as the subject "123"
        ("sub", ""),
        ("sub", ["user-42"]),
        ("iss", ["https://idp.example.test"]),
        ("iss", "https://idp.example.test/"),
        ("aud", []),
        ("aud", "https://api.example.test "),
        ("exp", "9999999999"),
        ("exp", True),
    ],
)
def test_claims_of_the_wrong_type_or_spelling_are_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer, claim: str, value: object
) -> None:
    response = call(jwt_runtime(), token=issuer.sign({claim: value}))
    assert response.status_code == 401, response.text


# -- leak alerts ---------------------------------------------------------------------


@pytest.fixture
def github() -> SigningKey:
    return SigningKey()


@pytest.fixture
def leaks(make_service: Callable[..., Service], tmp_path: Path, github: SigningKey) -> Service:
    keys = write_key_list(tmp_path / "github-keys.json", github)
    return make_service(leak_alert_keys_file=keys, login_rate_limit="1000/minute")


def _works(service: Service, token: str) -> bool:
    return service.client.get("/whoami", headers={"X-API-Key": token}).status_code == 200


def test_an_admins_login_token_reported_is_revoked_and_named_nowhere(
    leaks: Service, github: SigningKey
) -> None:
    leaks.user("root@example.com", role="admin")
    login = leaks.login("root@example.com", name="laptop")
    body = alert_body(login["token"])
    response = leaks.client.post("/leaks", content=body, headers=signed_headers(github, body))
    assert response.status_code == 200, response.text
    assert [entry["label"] for entry in response.json()] == ["true_positive"]
    assert not _works(leaks, login["token"])
    for secret_or_owner in (login["token"], login["id"], "root@example.com", "laptop"):
        assert secret_or_owner not in response.text


def test_a_signed_alert_with_a_repeated_member_revokes_nothing(
    leaks: Service, github: SigningKey
) -> None:
    # Signed over these exact bytes, but two readers could take either "token": refused.
    decoy = leaks.runtime.keys.create(Actor("test"), name="decoy").token
    victim = leaks.runtime.keys.create(Actor("test"), name="victim").token
    body = json.dumps([{"token": decoy, "type": "authgate_api_key"}]).encode()
    body = body.replace(b'"type"', b'"token": "' + victim.encode() + b'", "type"')
    response = leaks.client.post("/leaks", content=body, headers=signed_headers(github, body))
    assert response.status_code == 400, response.text
    assert _works(leaks, decoy) and _works(leaks, victim)


def test_signature_headers_in_another_spelling_are_no_signature(
    leaks: Service, github: SigningKey
) -> None:
    token = leaks.runtime.keys.create(Actor("test"), name="ci").token
    body = alert_body(token)
    spelled = {
        name.upper().replace("-", "_"): value
        for name, value in signed_headers(github, body).items()
    }
    response = leaks.client.post("/leaks", content=body, headers=spelled)
    assert response.status_code == 401, response.text
    mixed = {name.swapcase(): value for name, value in signed_headers(github, body).items()}
    mixed["X-Api-Key"] = leaks.admin_key
    assert leaks.client.post("/leaks", content=body, headers=mixed).status_code == 422
    assert _works(leaks, token)


def test_a_body_over_the_cap_is_refused_before_it_is_read(leaks: Service) -> None:
    port = int(leaks.base_url.rsplit(":", 1)[1])
    head = (
        f"POST /authgate/v1/leaks HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"X-API-Key: {leaks.admin_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {1 << 30}\r\n\r\n["
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer
