"""A real ``authgate serve --upstream`` trusting a test identity provider, attacked over
raw sockets: a JWT (even one the role map makes an admin) never acts on authgate's own
routes, whatever the path's spelling; the Envoy path form of verify never passes a
suffix that climbs or encodes its way elsewhere; a subject never smuggles a header."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.foundation.helpers import ServeProcess, clean_env, serve_process
from tests.gateway.upstream import make_upstream
from tests.jwt.issuer import AUDIENCE, ISSUER, TestIssuer, rsa_key
from tests.support import free_port, live_server

# The failure limit is off: these tests send many refused requests from one address.
CONFIG = """
scopes = ["items:write"]
failure_rate_limit = "off"

[[rules]]
method = "GET"
path = "/public/**"
public = true

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
role_claim = "groups"
role_map = {{ "platform-admins" = "admin" }}
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer().serving() as running:
        yield running


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, issuer: TestIssuer) -> Iterator[ServeProcess]:
    workdir = tmp_path_factory.mktemp("jwt-attacks")
    data_dir = workdir / "data"
    data_dir.mkdir(mode=0o700)
    config = workdir / "authgate.toml"
    config.write_text(CONFIG.format(issuer=ISSUER, jwks_url=issuer.url, audience=AUDIENCE))
    with live_server(make_upstream()) as upstream:
        args = ["--data-dir", str(data_dir), "--config", str(config), "--upstream", upstream]
        with serve_process(
            workdir, free_port(), *args, "--localhost-bypass", "off", env=clean_env()
        ) as process:
            yield process


def raw_request(
    process: ServeProcess, method: str, target: str, headers: list[str], body: str = ""
) -> str:
    """One request as written, no client normalising its target: the whole answer."""
    port = int(process.url.rsplit(":", 1)[1])
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *headers]
    if body:
        lines.append(f"Content-Length: {len(body.encode())}")
    lines += ["Connection: close", "", body]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


def status_of(answer: str) -> int:
    return int(answer.split(" ", 2)[1])


def admin_jwt(issuer: TestIssuer) -> str:
    """A token the role map makes an admin, asking for management scopes too."""
    return issuer.sign(scp=["read", "keys:manage", "tokens:manage"], groups=["platform-admins"])


def test_the_admin_jwt_is_valid_where_jwts_belong(served: ServeProcess, issuer: TestIssuer) -> None:
    answer = raw_request(served, "GET", "/api/x", [f"Authorization: Bearer {admin_jwt(issuer)}"])
    assert status_of(answer) == 200, answer
    assert "jwt:https://idp.example.test#user-42" in answer


OWN_ROUTES = [
    "/authgate/v1/whoami",
    "/authgate/v1/keys",
    "/authgate/v1/users",
    "/AUTHGATE/v1/whoami",
    "/authgate/v1/./whoami",
    "/authgate//v1/whoami",
    "//authgate/v1/whoami",
    "/x/../authgate/v1/whoami",
    "/authgate/v1/%77hoami",
    "/%61uthgate/v1/whoami",
    "/authgate/v1/whoami;x",
    "/authgate/v1/whoami/",
]


@pytest.mark.parametrize("target", OWN_ROUTES)
def test_an_admin_jwt_never_acts_on_authgates_own_routes(
    served: ServeProcess, issuer: TestIssuer, target: str
) -> None:
    answer = raw_request(served, "GET", target, [f"Authorization: Bearer {admin_jwt(issuer)}"])
    assert status_of(answer) != 200, answer
    assert "jwt:" not in answer


def test_an_admin_jwt_cannot_report_leaks(served: ServeProcess, issuer: TestIssuer) -> None:
    body = '[{"token": "x", "type": "authgate_api_key"}]'
    headers = [f"Authorization: Bearer {admin_jwt(issuer)}", "Content-Type: application/json"]
    answer = raw_request(served, "POST", "/authgate/v1/leaks", headers, body)
    assert status_of(answer) == 401, answer


VERIFY = "/authgate/v1/verify"
# With the public rule on /public/**: each suffix names, or could be read by an upstream
# as, a path outside it, so none may answer a pass without a credential.
CLIMBING_SUFFIXES = [
    "/public/../private",
    "/public/%2e%2e/private",
    "/public/%2E%2E/private",
    "/public/..%2fprivate",
    "/public/..;/private",
    "/public/.;/../private",
    "/public/..\\private",
    "/public/%5c..%5cprivate",
    "/public/%c0%ae%c0%ae/private",
    "/public/%00/x",
    "/public//../private",
    "/%2e%2e/%2e%2e/authgate/v1/keys",
    "/../keys",
    "/%2e%2e/keys",
    "/http://evil/private",
]


@pytest.mark.parametrize("suffix", CLIMBING_SUFFIXES)
def test_the_envoy_suffix_never_climbs_out_of_the_public_rule(
    served: ServeProcess, suffix: str
) -> None:
    assert status_of(raw_request(served, "GET", f"{VERIFY}/public/x", [])) == 200
    answer = raw_request(served, "GET", VERIFY + suffix, [])
    assert status_of(answer) in (401, 403), answer


@pytest.mark.parametrize(
    "headers",
    [
        ["X-Envoy-Original-Path: /private/x"],
        ["X-Forwarded-Uri: /private/x"],
        ["X-Original-URI: /public/x?", "X-Forwarded-Uri: /public/x"],
        ["X-Forwarded-Uri: /public/x", "X-Forwarded-Uri: /private/x"],
        ["X-Forwarded-Method: POST"],
        ["X-Forwarded-Method: GET", "X-Original-Method: POST"],
        ["X-Forwarded-Host: a.test", "X-Forwarded-Host: b.test"],
    ],
)
def test_the_envoy_suffix_and_the_headers_naming_another_request_are_refused(
    served: ServeProcess, headers: list[str]
) -> None:
    answer = raw_request(served, "GET", f"{VERIFY}/public/x", headers)
    assert status_of(answer) == 403, answer


def test_a_jwt_through_verify_never_reaches_authgates_own_routes(
    served: ServeProcess, issuer: TestIssuer
) -> None:
    credential = [f"Authorization: Bearer {admin_jwt(issuer)}"]
    assert status_of(raw_request(served, "GET", f"{VERIFY}/api/x", credential)) == 200
    for own in ("/authgate/v1/whoami", "/AUTHGATE/v1/keys", "/x/../authgate/v1/users"):
        answer = raw_request(served, "GET", VERIFY + own, credential)
        assert status_of(answer) == 401, answer
        assert "x-authgate-key-id" not in answer.lower()


def test_a_subject_smuggles_no_header_upstream_or_through_verify(
    served: ServeProcess, issuer: TestIssuer
) -> None:
    token = issuer.sign(sub="a\r\nX-Evil: 1\u00e9\u2028z", scp=["read"])
    credential = [f"Authorization: Bearer {token}"]
    for target in (f"{VERIFY}/api/x", "/api/x"):
        answer = raw_request(served, "GET", target, credential)
        assert status_of(answer) == 200, answer
        head = answer.split("\r\n\r\n", 1)[0].lower()
        assert "\r\nx-evil" not in head
        # verify answers the id in a header; the gateway's upstream echoes what it got.
        assert "jwt:https://idp.example.test#a%0d%0ax-evil:%201%c3%a9%e2%80%a8z" in answer.lower()
        # The upstream's report of what it received: no header it did not get from authgate.
        assert '"x-evil"' not in answer.lower()


def test_made_up_kids_and_no_store_cannot_make_authgate_hammer_the_provider(
    served: ServeProcess, issuer: TestIssuer
) -> None:
    # The provider (or someone in its path) answers "never cache"; an attacker then sends
    # a stream of tokens under made-up kids, between valid ones.
    issuer.cache_headers = {"Cache-Control": "no-store, max-age=0", "Age": "999999"}
    try:
        before = issuer.fetches
        stranger = rsa_key("stranger")
        for index in range(20):
            forged = issuer.sign(key=stranger, kid=f"made-up-{index}", scp=["read"])
            answer = raw_request(served, "GET", "/api/x", [f"Authorization: Bearer {forged}"])
            assert status_of(answer) == 401 and "jwt_unknown_key" in answer, answer
            valid = issuer.sign(scp=["read"])
            answer = raw_request(served, "GET", "/api/x", [f"Authorization: Bearer {valid}"])
            assert status_of(answer) == 200, answer
        assert issuer.fetches - before <= 1
    finally:
        issuer.cache_headers = {"Cache-Control": "max-age=300"}
