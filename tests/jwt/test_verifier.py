"""Bearer JWTs from a configured issuer, through the middleware (in-process ASGI with
httpx): what passes, each refusal and its code, rotation, outages, the failure limit,
and the principal meeting the rules like any other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate.adapters.asgi import PRINCIPAL_SCOPE_KEY, AuthgateMiddleware
from authgate.errors import ConfigurationError
from authgate.policy import Rule
from authgate.runtime import Runtime
from tests.jwt.issuer import AUDIENCE, ISSUER, TestIssuer, ec_key, rsa_key

RULES = [
    Rule("GET", "/public/**", public=True),
    Rule("*", "/private/**"),
    Rule("POST", "/items", scopes=["items:write"]),
    Rule("*", "/admin/**", role="admin"),
]


async def _whoami(request: Request) -> JSONResponse:
    principal = request.scope[PRINCIPAL_SCOPE_KEY]
    return JSONResponse(principal.as_dict() if principal is not None else None)


APP = Starlette(routes=[Route("/{path:path}", _whoami, methods=["GET", "POST"])])


def call(
    runtime: Runtime,
    path: str = "/private/x",
    token: str | None = None,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    app = AuthgateMiddleware(APP, rules=RULES, runtime=runtime)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=sent)

    return asyncio.run(go())


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


JwtRuntime = Callable[..., Runtime]


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_a_token_of_the_issuer_passes_as_a_jwt_principal(
    jwt_runtime: JwtRuntime, issuer: TestIssuer, kid: str
) -> None:
    response = call(jwt_runtime(), token=issuer.sign(kid=kid, scope="read chat openid"))
    assert response.status_code == 200, response.text
    who = response.json()
    assert who["kind"] == "jwt"
    assert who["id"] == "jwt:https://idp.example.test#user-42"
    assert (who["issuer"], who["subject"]) == (ISSUER, "user-42")
    # "openid" is not in the catalogue: dropped, not an error.
    assert who["scopes"] == ["chat", "read"]
    assert who["role"] is None


def test_the_keys_are_fetched_once_and_then_served_from_memory(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    for _ in range(5):
        assert call(rt, token=issuer.sign()).status_code == 200
    assert issuer.fetches == 1


def test_scopes_meet_the_rules(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    rt = jwt_runtime()
    reader = issuer.sign(scope="read")
    assert call(rt, "/items", reader, method="POST").status_code == 403
    # scope_map: "api.write" stands for items:write and read.
    writer = issuer.sign(scope="api.write")
    response = call(rt, "/items", writer, method="POST")
    assert response.status_code == 200
    assert response.json()["scopes"] == ["items:write", "read"]


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scp": ["read", "chat", 7]}, ["chat", "read"]),  # a list; a non-string is skipped
        ({"scp": "read chat"}, ["chat", "read"]),
        ({"scp": {"read": True}}, []),  # neither string nor list: nothing
        ({"scp": ["tokens:manage", "users:manage", "*"]}, []),  # never management, never *
    ],
)
def test_scopes_from_another_claim(
    jwt_runtime: JwtRuntime, issuer: TestIssuer, claims: dict[str, Any], scopes: list[str]
) -> None:
    rt = jwt_runtime(issuer_table={"scopes_claim": "scp"})
    response = call(rt, token=issuer.sign(claims))
    assert response.status_code == 200
    assert response.json()["scopes"] == scopes


def test_a_role_comes_only_through_the_role_map(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    admin = call(rt, "/admin/x", issuer.sign(groups=["staff", "platform-admins"]))
    assert admin.status_code == 200 and admin.json()["role"] == "admin"
    # A role's name in the claim is not a role: only the mapping makes one.
    assert call(rt, "/admin/x", issuer.sign(groups=["admin"])).status_code == 403
    assert call(rt, "/admin/x", issuer.sign(groups="admin")).status_code == 403


def test_mapping_to_unknown_scopes_or_roles_is_refused_at_start(
    runtime_for: Callable[..., Runtime], issuer: TestIssuer
) -> None:
    from tests.jwt.conftest import issuer_table

    bad_scope = issuer_table(issuer, scope_map={"x": ["nope"]})
    with pytest.raises(ConfigurationError, match="not in the catalogue"):
        build_gate(runtime_for(jwt_issuers=[bad_scope]))
    bad_role = issuer_table(issuer, scope_map={}, role_map={"x": "root"})
    with pytest.raises(ConfigurationError, match="unknown role"):
        build_gate(runtime_for(jwt_issuers=[bad_role]))


def build_gate(runtime: Runtime) -> None:
    AuthgateMiddleware(APP, rules=RULES, runtime=runtime)


@pytest.mark.parametrize("alg", ["HS256", "none", "RS1", "PS256"])
def test_algorithms_other_than_the_allowed_ones_are_refused_in_the_config(
    runtime_for: Callable[..., Runtime], issuer: TestIssuer, alg: str
) -> None:
    from tests.jwt.conftest import issuer_table

    table = issuer_table(issuer, algorithms=["RS256", alg])
    if alg == "PS256":  # a public-key algorithm: allowed when asked for
        runtime_for(jwt_issuers=[table])
        return
    with pytest.raises(ConfigurationError, match="algorithms"):
        runtime_for(jwt_issuers=[table])


def test_an_algorithm_the_issuer_does_not_allow_is_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime(issuer_table={"algorithms": ["ES256"]})
    refused(call(rt, token=issuer.sign(kid="rsa-1")), "jwt_algorithm_refused")
    # PS256 with the same RSA key: another algorithm, also not allowed.
    refused(call(rt, token=issuer.sign(kid="rsa-1", alg="PS256")), "jwt_algorithm_refused")
    assert call(rt, token=issuer.sign(kid="ec-1")).status_code == 200


def test_expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()  # leeway 30 s
    now = int(time.time())
    refused(call(rt, token=issuer.sign(exp=now - 120)), "jwt_expired")
    assert call(rt, token=issuer.sign(exp=now - 5)).status_code == 200  # within the leeway
    refused(call(rt, token=issuer.sign(nbf=now + 600)), "jwt_not_yet_valid")
    refused(call(rt, token=issuer.sign(iat=now + 600)), "jwt_not_yet_valid")
    assert call(rt, token=issuer.sign(nbf=now + 5)).status_code == 200


def test_the_clock_is_the_runtimes(settings_for: Callable[..., Any], issuer: TestIssuer) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.jwt.conftest import issuer_table

    later = datetime.now(UTC) + timedelta(hours=1)
    rt = Runtime(
        settings_for(jwt_issuers=[issuer_table(issuer)], scopes=["items:write"]),
        clock=lambda: later,
    )
    rt.start()
    try:
        refused(call(rt, token=issuer.sign()), "jwt_expired")
    finally:
        rt.close()


def test_wrong_issuer_audience_and_missing_claims_are_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    refused(call(rt, token=issuer.sign(iss="https://evil.example.test")), "jwt_unknown_issuer")
    refused(call(rt, token=issuer.sign(iss=ISSUER + "/")), "jwt_unknown_issuer")
    refused(call(rt, token=issuer.sign(aud="https://other.example.test")), "jwt_wrong_audience")
    assert call(rt, token=issuer.sign(aud=["https://other.test", AUDIENCE])).status_code == 200
    no_exp = issuer.sign()
    refused(call(rt, token=_without(issuer, "exp")), "jwt_missing_claim")
    refused(call(rt, token=_without(issuer, "sub")), "jwt_missing_claim")
    refused(call(rt, token=_without(issuer, "aud")), "jwt_missing_claim")
    refused(call(rt, token=issuer.sign(exp="never")), "jwt_invalid_claim")
    refused(call(rt, token=issuer.sign(sub=42)), "jwt_invalid_claim")
    assert call(rt, token=no_exp).status_code == 200


def _without(issuer: TestIssuer, claim: str) -> str:
    from joserfc import jwt

    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "exp": now + 300,
    }
    del claims[claim]
    return jwt.encode({"alg": "RS256", "kid": "rsa-1"}, claims, issuer.key("rsa-1"))


def test_a_bad_signature_is_refused(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    rt = jwt_runtime()
    header, payload, signature = issuer.sign().split(".")
    other = issuer.sign(sub="admin").split(".")[1]
    refused(call(rt, token=f"{header}.{other}.{signature}"), "jwt_bad_signature")
    # Signed by a key that is not the issuer's, under the issuer's kid.
    forged = issuer.sign(key=rsa_key("rsa-1"), kid="rsa-1")
    refused(call(rt, token=forged), "jwt_bad_signature")
    refused(call(rt, token=f"{header}.{payload}.{signature[:-4]}AAAA"), "jwt_bad_signature")


def test_an_unknown_kid_gets_one_rate_limited_refresh_then_is_refused(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime(jwks_unknown_kid_seconds=3600)
    assert call(rt, token=issuer.sign()).status_code == 200
    stranger = rsa_key("stranger")
    for index in range(5):
        token = issuer.sign(key=stranger, kid=f"stranger-{index}")
        refused(call(rt, token=token), "jwt_unknown_key")
    assert issuer.fetches == 2  # the first fetch, and one refresh for all five


def test_rotation_a_new_key_is_accepted_after_one_refresh(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime()
    assert call(rt, token=issuer.sign()).status_code == 200
    issuer.rotate(ec_key("ec-2"), drop="ec-1")
    response = call(rt, token=issuer.sign(kid="ec-2"))
    assert response.status_code == 200, response.text
    assert issuer.fetches == 2
    assert call(rt, token=issuer.sign(kid="ec-2")).status_code == 200
    assert issuer.fetches == 2


def test_a_jwks_outage_keeps_serving_the_known_keys(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime(jwks_unknown_kid_seconds=0)
    assert call(rt, token=issuer.sign()).status_code == 200
    issuer.status = 503
    assert call(rt, token=issuer.sign()).status_code == 200
    # An unknown kid during the outage: the refresh fails, the token is refused.
    refused(call(rt, token=issuer.sign(key=rsa_key("new"), kid="new")), "jwt_unknown_key")
    assert call(rt, token=issuer.sign(kid="ec-1")).status_code == 200


def test_keys_never_fetched_are_a_503(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    issuer.status = 500
    response = call(jwt_runtime(), token=issuer.sign())
    assert response.status_code == 503
    assert response.json()["code"] == "keys_unavailable"


def test_refusals_count_toward_the_failure_limit(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    rt = jwt_runtime(failure_rate_limit="3/day")
    rt.limiter.reset()
    expired = issuer.sign(exp=int(time.time()) - 3600)
    for _ in range(3):
        refused(call(rt, token=expired), "jwt_expired")
    assert call(rt, token=expired).status_code == 429
    # A valid credential from that address still passes.
    assert call(rt, token=issuer.sign()).status_code == 200
    rt.limiter.reset()


def test_a_public_route_ignores_a_bad_jwt(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    response = call(jwt_runtime(), "/public/x", issuer.sign(exp=int(time.time()) - 3600))
    assert response.status_code == 200 and response.json() is None


def test_per_key_limits_count_per_subject(jwt_runtime: JwtRuntime, issuer: TestIssuer) -> None:
    rt = jwt_runtime(key_rate_limit="2/day")
    rt.limiter.reset()
    alice, bob = issuer.sign(sub="alice"), issuer.sign(sub="bob")
    assert [call(rt, token=alice).status_code for _ in range(3)] == [200, 200, 429]
    assert call(rt, token=bob).status_code == 200
    rt.limiter.reset()


def test_a_subject_is_percent_encoded_in_the_id(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    response = call(jwt_runtime(), token=issuer.sign(sub="a b\r\nX-Evil: 1#é"))
    assert response.status_code == 200
    who = response.json()
    assert who["id"] == "jwt:https://idp.example.test#a%20b%0D%0AX-Evil:%201%23%C3%A9"
    assert who["subject"] == "a b\r\nX-Evil: 1#é"


def test_a_jwks_file_is_an_issuer_too(
    runtime_for: Callable[..., Runtime], issuer: TestIssuer, tmp_path: Any
) -> None:
    import json

    from tests.jwt.conftest import issuer_table
    from tests.jwt.issuer import jwks_document

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_document(issuer.keys)))
    table = issuer_table(issuer, jwks_url=None, jwks_file=str(path))
    rt = runtime_for(jwt_issuers=[table], scopes=["items:write"])
    assert call(rt, token=issuer.sign()).status_code == 200
    assert issuer.fetches == 0


def test_a_remembered_token_still_expires_and_falls_with_its_key(
    settings_for: Callable[..., Any], issuer: TestIssuer
) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.jwt.conftest import issuer_table

    now = [datetime.now(UTC)]
    settings = settings_for(
        jwt_issuers=[issuer_table(issuer)], scopes=["items:write"], jwks_unknown_kid_seconds=0
    )
    rt = Runtime(settings, clock=lambda: now[0])
    rt.start()
    try:
        token = issuer.sign()
        assert call(rt, token=token).status_code == 200
        assert call(rt, token=token).status_code == 200  # from memory
        now[0] += timedelta(minutes=10)  # past exp and the leeway
        refused(call(rt, token=token), "jwt_expired")
        now[0] -= timedelta(minutes=10)
        ec_token = issuer.sign(kid="ec-1")
        assert call(rt, token=ec_token).status_code == 200
        # The issuer drops the key; a refresh (here for an unknown kid) learns it.
        issuer.rotate(rsa_key("rsa-9"), drop="ec-1")
        refused(call(rt, token=issuer.sign(key=rsa_key("x"), kid="x")), "jwt_unknown_key")
        refused(call(rt, token=ec_token), "jwt_unknown_key")
    finally:
        rt.close()


def test_the_wsgi_middleware_takes_jwts_and_fetches_in_place(
    jwt_runtime: JwtRuntime, issuer: TestIssuer
) -> None:
    from collections.abc import Iterable

    from authgate.adapters.wsgi import AuthgateWSGIMiddleware

    def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    app = AuthgateWSGIMiddleware(hello, rules=RULES, runtime=jwt_runtime())
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver") as c:
        assert c.get("/private/x", headers={"Authorization": f"Bearer {issuer.sign()}"}).text == (
            "hello"
        )
        issuer.rotate(ec_key("ec-wsgi"))
        rotated = {"Authorization": f"Bearer {issuer.sign(kid='ec-wsgi')}"}
        assert c.get("/private/x", headers=rotated).status_code == 200
        expired = {"Authorization": f"Bearer {issuer.sign(exp=int(time.time()) - 3600)}"}
        assert c.get("/private/x", headers=expired).json()["code"] == "jwt_expired"
    assert issuer.fetches == 2
