"""What an attacker sends with a JWT: algorithm confusion, ``kid`` injection, a JWT in
the wrong header or beside another credential, oversized tokens, ``crit`` and
key-carrying headers, nested, encrypted and unsecured tokens, duplicate members."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import RSAKey

from authgate.runtime import Runtime
from tests.jwt.issuer import AUDIENCE, ISSUER, TestIssuer, jwks_document, rsa_key
from tests.jwt.test_verifier import call, refused
from tests.middleware.conftest import new_key

JwtRuntime = Callable[..., Runtime]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300, **extra}


def raw_segments(header: dict[str, Any] | str, body: dict[str, Any] | str) -> str:
    head = header if isinstance(header, str) else json.dumps(header)
    payload = body if isinstance(body, str) else json.dumps(body)
    return f"{b64(head.encode())}.{b64(payload.encode())}"


def rs256(key: RSAKey, header: dict[str, Any] | str, body: dict[str, Any] | str) -> str:
    """A token signed by hand, so that any header at all can be sent."""
    signing_input = raw_segments(header, body)
    private = key.private_key
    assert private is not None
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def test_hs256_signed_with_the_rsa_public_key_is_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    assert call(rt, token=issuer.sign()).status_code == 200  # the keys are known
    public_pem = issuer.rsa("rsa-1").as_pem(private=False)
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    signing_input = raw_segments(header, claims())
    mac = hmac.HMAC(public_pem, hashes.SHA256())
    mac.update(signing_input.encode())
    token = f"{signing_input}.{b64(mac.finalize())}"
    refused(call(rt, token=token), "jwt_algorithm_refused")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsecured_tokens_are_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer, alg: str
) -> None:
    rt = jwt_runtime()
    unsecured = raw_segments({"alg": alg, "kid": "rsa-1"}, claims()) + "."
    refused(call(rt, token=unsecured), "jwt_algorithm_refused")
    # The issuer's real signature pasted under an "alg: none" header does not help.
    signature = issuer.sign().split(".")[2]
    refused(call(rt, token=unsecured + signature), "jwt_algorithm_refused")


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../etc/passwd",
        "/dev/zero",
        "' OR '1'='1",
        "rsa-1\\u0000",
        "https://evil.example.test/jwks.json",
        "x" * 200,
    ],
)
def test_an_injected_kid_is_only_ever_compared_never_followed(
    jwt_runtime: JwtRuntime, issuer: TestIssuer, kid: str
) -> None:
    rt = jwt_runtime(jwks_unknown_kid_seconds=3600)
    assert call(rt, token=issuer.sign()).status_code == 200
    token = rs256(issuer.rsa("rsa-1"), {"alg": "RS256", "kid": kid}, claims())
    refused(call(rt, token=token), "jwt_unknown_key")
    assert issuer.fetches <= 2  # the issuer's own URL only, once more at most


def test_a_kid_that_is_not_a_string_or_too_long_is_malformed(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    token = rs256(issuer.rsa("rsa-1"), {"alg": "RS256", "kid": ["rsa-1"]}, claims())
    refused(call(rt, token=token), "jwt_malformed")
    # joserfc bounds the header's size: a header of kilobytes is no JWS it reads.
    token = rs256(issuer.rsa("rsa-1"), {"alg": "RS256", "kid": "x" * 4000}, claims())
    refused(call(rt, token=token), "jwt_malformed")


def test_the_kid_of_an_ec_key_with_an_rsa_algorithm_is_no_key(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    token = rs256(issuer.rsa("rsa-1"), {"alg": "RS256", "kid": "ec-1"}, claims())
    refused(call(rt, token=token), "jwt_unknown_key")


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"crit": ["https://example.test/ext"], "https://example.test/ext": True},
        {"b64": False, "crit": ["b64"]},
        {"b64": False},
    ],
)
def test_crit_and_b64_headers_are_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer, extra: dict[str, Any]
) -> None:
    header = {"alg": "RS256", "kid": "rsa-1", **extra}
    token = rs256(issuer.rsa("rsa-1"), header, claims())
    refused(call(jwt_runtime(), token=token), "jwt_header_refused")


def test_a_token_carrying_or_pointing_at_its_own_key_is_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    mine = rsa_key("rsa-1")  # the attacker's key, under the issuer's kid
    public = mine.as_dict(private=False)
    for extra in (
        {"jwk": public},
        {"jku": "https://evil.example.test/jwks.json"},
        {"x5u": "https://evil.example.test/cert.pem"},
        {"x5c": ["MIIB..."]},
    ):
        token = rs256(mine, {"alg": "RS256", "kid": "rsa-1", **extra}, claims())
        refused(call(rt, token=token), "jwt_header_refused")
    # And without those headers, the attacker's key is just a bad signature.
    refused(
        call(rt, token=rs256(mine, {"alg": "RS256", "kid": "rsa-1"}, claims())), "jwt_bad_signature"
    )


def test_nested_and_encrypted_tokens_are_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    inner = issuer.sign()
    nested = rs256(
        issuer.rsa("rsa-1"), {"alg": "RS256", "kid": "rsa-1", "cty": "JWT"}, claims(inner=inner)
    )
    refused(call(rt, token=nested), "jwt_header_refused")
    # A JWE (five segments) is no JWS: not taken as a JWT, refused as a bad token.
    jwe = raw_segments({"alg": "RSA-OAEP", "enc": "A256GCM"}, "x") + ".AAAA.AAAA.AAAA"
    response = call(rt, token=jwe)
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"
    odd_type = rs256(issuer.rsa("rsa-1"), {"alg": "RS256", "kid": "rsa-1", "typ": "JWE"}, claims())
    refused(call(rt, token=odd_type), "jwt_header_refused")
    accepted = rs256(
        issuer.rsa("rsa-1"), {"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}, claims()
    )
    assert call(rt, token=accepted).status_code == 200


def test_a_repeated_member_is_refused_whichever_copy_would_win(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    key = issuer.rsa("rsa-1")
    two_algs = '{"alg": "RS256", "kid": "rsa-1", "alg": "HS256"}'
    refused(call(rt, token=rs256(key, two_algs, claims())), "jwt_malformed")
    body = json.dumps(claims())[:-1] + ', "sub": "admin"}'
    refused(call(rt, token=rs256(key, {"alg": "RS256", "kid": "rsa-1"}, body)), "jwt_malformed")


def test_garbage_in_the_segments_is_malformed(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    rt = jwt_runtime()
    for token in (
        "eyJhbGciOi.eyJ.sig",
        "eyJ9.e30.",
        "eyJbXQ.e30.AAAA",
        "eyJ" + "A" * 40 + ".e30.AA",
    ):
        refused(call(rt, token=token), "jwt_malformed")


def test_an_oversized_token_is_refused_before_it_is_parsed(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    token = issuer.sign(padding="x" * 9000)
    response = call(jwt_runtime(), token=token)
    assert response.status_code in (401, 431)
    if response.status_code == 401:
        assert response.json()["code"] == "invalid_token"


def test_a_jwt_in_x_api_key_is_not_a_jwt_credential(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    response = call(jwt_runtime(), headers={"X-API-Key": issuer.sign()})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_a_jwt_beside_an_api_key_is_refused(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    rt = jwt_runtime()
    key = new_key(rt, "reader", "read")
    assert call(rt, headers={"X-API-Key": key}).status_code == 200
    both = call(rt, token=issuer.sign(), headers={"X-API-Key": key})
    assert both.status_code == 401 and both.json()["code"] == "invalid_token"
    same = issuer.sign()
    twice = call(rt, token=same, headers={"X-API-Key": same})
    assert twice.status_code == 401 and twice.json()["code"] == "invalid_token"


def test_two_authorization_headers_are_refused(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    import asyncio

    import httpx

    from authgate.adapters.asgi import AuthgateMiddleware
    from tests.jwt.test_verifier import APP, RULES

    app = AuthgateMiddleware(APP, rules=RULES, runtime=jwt_runtime())
    token = issuer.sign()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
            return await client.get("/private/x", headers=headers)

    response = asyncio.run(go())
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"


def test_symmetric_keys_published_in_the_jwks_never_verify(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey

    secret = OctKey.generate_key(256, parameters={"kid": "shared"})
    document = jwks_document(issuer.keys)
    document["keys"].append(secret.as_dict(private=True))
    issuer.body = json.dumps(document).encode()
    rt = jwt_runtime(issuer_table={"algorithms": ["RS256", "ES256"]})
    token = jwt.encode({"alg": "HS256", "kid": "shared"}, claims(), secret)
    refused(call(rt, token=token), "jwt_algorithm_refused")


def test_authgate_routes_never_take_a_jwt(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    import asyncio

    import httpx

    from authgate.server.compose import build_root_app

    rt = jwt_runtime()
    app = build_root_app(rt)
    admin = issuer.sign(groups=["platform-admins"], scope="read")

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(
                "/authgate/v1/keys", headers={"Authorization": f"Bearer {admin}"}
            )

    response = asyncio.run(go())
    assert response.status_code == 401
