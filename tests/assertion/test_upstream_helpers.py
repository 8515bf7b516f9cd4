"""Assertions end to end: a real ``authgate serve --upstream`` in front of a separate
upstream process (FastAPI with ``AssertionRequired``, Flask with ``AssertionMiddleware``)
that fetches authgate's JWKS over HTTP and refuses what authgate did not sign."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from authgate.assertion import AssertionVerifier
from authgate.errors import InvalidAssertion
from tests.foundation.helpers import clean_env, run_authgate, serve_process
from tests.gateway.serve_cli import make_key
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
LIFETIME = 5
CONFIG = f"""
assertion = true
assertion_lifetime_seconds = {LIFETIME}

[[rules]]
method = "*"
path = "/**"
scopes = ["read"]
"""


@dataclass
class Stack:
    authgate: str
    upstream: str
    token: str
    key_id: str
    data_dir: Path

    @property
    def jwks_url(self) -> str:
        return f"{self.authgate}/authgate/.well-known/jwks.json"

    def through_gateway(self, **headers: str) -> httpx.Response:
        return httpx.get(
            f"{self.authgate}/whoami", headers={"X-API-Key": self.token, **headers}, timeout=10
        )

    def verify(self, **headers: str) -> httpx.Response:
        forwarded = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/whoami"}
        return httpx.get(
            f"{self.authgate}/authgate/v1/verify", headers={**forwarded, **headers}, timeout=10
        )

    def assertion_from_verify(self) -> str:
        answer = self.verify(**{"X-API-Key": self.token})
        assert answer.status_code == 200, answer.text
        return answer.headers["x-authgate-assertion"]

    def direct(self, assertion: str | None = None) -> httpx.Response:
        headers = {} if assertion is None else {"X-Authgate-Assertion": assertion}
        return httpx.get(f"{self.upstream}/whoami", headers=headers, timeout=10)


def _wait_for_port(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the upstream exited"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not start")


@pytest.fixture(scope="module", params=["fastapi", "wsgi"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"assertion-{request.param}")
    authgate_port, upstream_port = free_port(), free_port()
    authgate = f"http://127.0.0.1:{authgate_port}"
    upstream = f"http://127.0.0.1:{upstream_port}"
    jwks_url = f"{authgate}/authgate/.well-known/jwks.json"
    # The audience the upstream expects is its own origin: authgate's default.
    upstream_process = subprocess.Popen(
        [sys.executable, "-m", "tests.assertion.upstream_apps", str(request.param),
         str(upstream_port), jwks_url, upstream],
        cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    try:
        _wait_for_port(upstream, upstream_process)
        data_dir = workdir / "data"
        data_dir.mkdir(mode=0o700)
        config = workdir / "authgate.toml"
        config.write_text(CONFIG)
        token, key_id = make_key(data_dir, "reader", "read")
        args = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", upstream]
        args += ["--localhost-bypass", "off"]
        with serve_process(workdir, authgate_port, *args, env=clean_env()):
            yield Stack(authgate, upstream, token, key_id, data_dir)
    finally:
        upstream_process.terminate()
        upstream_process.wait(timeout=10)


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    header: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def test_a_request_through_the_gateway_is_accepted_with_its_identity(stack: Stack) -> None:
    answer = stack.through_gateway()
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert said["sub"] == stack.key_id
    assert said["key_id"] == stack.key_id
    assert said["kind"] == "api_key"
    assert said["scopes"] == ["read"]
    assert said["aud"] == stack.upstream


def test_a_request_sent_straight_to_the_upstream_is_refused(stack: Stack) -> None:
    assert _refused(stack.direct())
    assert _refused(stack.direct(""))
    assert _refused(stack.direct("not-a-jwt"))


def _refused(answer: httpx.Response) -> bool:
    body = answer.json()
    code = body["detail"]["code"] if isinstance(body.get("detail"), dict) else body.get("code")
    return answer.status_code == 401 and code == "invalid_assertion"


def test_a_self_signed_assertion_is_refused_even_with_authgates_kid(stack: Stack) -> None:
    real = stack.assertion_from_verify()
    kid = _header(real)["kid"]
    mine = ECKey.generate_key("P-256", private=True)
    claims = {**_claims(real), "sub": "admin", "role": "admin"}
    for header in ({"alg": "ES256", "kid": kid}, {"alg": "ES256", "kid": "made-up"}):
        forged = jwt.encode(header, claims, mine)
        assert _refused(stack.direct(forged))


def test_alg_none_and_an_hmac_over_the_public_key_are_refused(stack: Stack) -> None:
    real = stack.assertion_from_verify()
    header, payload, _ = real.split(".")
    none_header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": _header(real)["kid"]}).encode())
        .rstrip(b"=")
        .decode()
    )
    assert _refused(stack.direct(f"{none_header}.{payload}."))
    assert _refused(stack.direct(f"{header}.{payload}."))
    # The classic confusion: HS256 keyed with the published public key.
    public = httpx.get(stack.jwks_url, timeout=10).json()["keys"][0]
    hmac_key = OctKey.import_key(json.dumps(public).encode())
    confused = jwt.encode(
        {"alg": "HS256", "kid": _header(real)["kid"]}, _claims(real), hmac_key, algorithms=["HS256"]
    )
    assert _refused(stack.direct(confused))


def test_a_tampered_assertion_is_refused(stack: Stack) -> None:
    real = stack.assertion_from_verify()
    header, _, signature = real.split(".")
    claims = {**_claims(real), "scopes": ["read", "write"]}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _refused(stack.direct(f"{header}.{payload}.{signature}"))


def test_an_assertion_from_verify_is_accepted_directly_until_it_expires(stack: Stack) -> None:
    real = stack.assertion_from_verify()
    assert stack.direct(real).status_code == 200
    expires = int(str(_claims(real)["exp"]))
    time.sleep(max(0.0, expires - time.time()) + 1.1)
    assert _refused(stack.direct(real))


def test_the_clients_own_assertion_header_never_reaches_the_upstream(stack: Stack) -> None:
    forged = jwt.encode({"alg": "ES256", "kid": "x"}, {"sub": "admin"}, ECKey.generate_key("P-256"))
    # Were the client's copy forwarded beside authgate's, the upstream would see two and
    # refuse; seen alone, it would fail to verify.
    names = ("X-Authgate-Assertion", "x-authgate-assertion", "X-AUTHGATE-ASSERTION")
    for name in (*names, "X-Authgate_Assertion"):
        answer = stack.through_gateway(**{name: forged})
        assert answer.status_code == 200, answer.text
        assert answer.json()["sub"] == stack.key_id


def test_verify_answers_with_authgates_assertion_not_the_clients(stack: Stack) -> None:
    answer = stack.verify(**{"X-API-Key": stack.token, "X-Authgate-Assertion": "forged.by.client"})
    assert answer.status_code == 200
    assert answer.headers.get_list("x-authgate-assertion") != ["forged.by.client"]
    assert len(answer.headers.get_list("x-authgate-assertion")) == 1
    assert stack.direct(answer.headers["x-authgate-assertion"]).status_code == 200


def test_a_refusal_of_verify_carries_no_assertion(stack: Stack) -> None:
    answer = stack.verify()
    assert answer.status_code == 401
    assert "x-authgate-assertion" not in answer.headers


def test_the_helper_refuses_another_audience_issuer_and_expiry(stack: Stack) -> None:
    real = stack.assertion_from_verify()
    good = AssertionVerifier(jwks_url=stack.jwks_url, audience=stack.upstream)
    assert good.verify(real).subject == stack.key_id
    other = AssertionVerifier(jwks_url=stack.jwks_url, audience="https://other.internal")
    with pytest.raises(InvalidAssertion, match="aud"):
        other.verify(real)
    issuer = AssertionVerifier(jwks_url=stack.jwks_url, audience=stack.upstream, issuer="x")
    with pytest.raises(InvalidAssertion, match="iss"):
        issuer.verify(real)
    expires = int(str(_claims(real)["exp"]))
    later = AssertionVerifier(
        jwks_url=stack.jwks_url, audience=stack.upstream, now=lambda: expires + 1
    )
    with pytest.raises(InvalidAssertion, match="expired"):
        later.verify(real)


def test_the_jwks_is_public_cacheable_and_holds_no_private_part(stack: Stack) -> None:
    answer = httpx.get(stack.jwks_url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=300"
    for key in answer.json()["keys"]:
        assert {"kid", "kty", "alg"} <= key.keys()
        assert "d" not in key


def test_the_key_file_is_private_from_the_start(stack: Stack) -> None:
    key_file = stack.data_dir / "assertion.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(stack.data_dir).st_mode) == 0o700


def test_rotation_keeps_old_assertions_valid_and_new_ones_accepted(stack: Stack) -> None:
    before = stack.assertion_from_verify()
    old_kid = _header(before)["kid"]
    rotated = run_authgate("--data-dir", str(stack.data_dir), "assertion-key", "rotate", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new_kid = json.loads(rotated.stdout)["kid"]
    assert new_kid != old_kid
    # The old key stays published: what it signed verifies for as long as it lives (the
    # clock is the assertion's own: the CLI may take longer to start than it lives).
    issued = int(str(_claims(before)["iat"]))
    then = AssertionVerifier(jwks_url=stack.jwks_url, audience=stack.upstream, now=lambda: issued)
    assert then.verify(before).subject == stack.key_id
    kids = {key["kid"] for key in httpx.get(stack.jwks_url, timeout=10).json()["keys"]}
    assert {old_kid, new_kid} <= kids
    # Within the reuse window the server may still hand out the old token; past it, the
    # new key signs.
    deadline = time.monotonic() + 10
    after = stack.assertion_from_verify()
    while _header(after)["kid"] != new_kid and time.monotonic() < deadline:
        time.sleep(0.2)
        after = stack.assertion_from_verify()
    assert _header(after)["kid"] == new_kid
    # The upstream meets the new kid and fetches the key set again (rate-limited).
    deadline = time.monotonic() + 10
    while stack.direct(after).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert stack.direct(after).status_code == 200
    assert stack.through_gateway().status_code == 200
