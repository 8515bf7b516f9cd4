"""``/authgate/v1/verify`` called the way nginx, Traefik and Caddy call it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.authgate_server import LiveAuthgate, authgate_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveAuthgate]:
    data_dir = tmp_path_factory.mktemp("forward-auth") / "data"
    data_dir.mkdir(mode=0o700)
    # The bypass is forced on: forward auth must ignore it (the peer is the proxy).
    with authgate_server(data_dir, localhost_bypass="on") as live:
        yield live


def verify(
    server: LiveAuthgate,
    method: str,
    uri: str,
    key: str | None = None,
    *,
    style: str = "nginx",
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    if style == "nginx":
        headers = {"X-Original-Method": method, "X-Original-URI": uri}
    else:  # Traefik and Caddy (Traefik's documented set of forward-request headers)
        headers = {
            "X-Forwarded-Method": method,
            "X-Forwarded-Uri": uri,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "app.example.com",
            "X-Forwarded-For": "203.0.113.9",
        }
    if key is not None:
        headers["X-API-Key"] = key
    headers.update(extra or {})
    return httpx.get(f"{server.url}/authgate/v1/verify", headers=headers)


@pytest.mark.parametrize("style", ["nginx", "traefik"])
def test_public_route_passes_anonymously(server: LiveAuthgate, style: str) -> None:
    response = verify(server, "GET", "/public/readme?x=1", style=style)
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("x-authgate-")]


@pytest.mark.parametrize("style", ["nginx", "traefik"])
def test_missing_and_bad_keys_are_401(server: LiveAuthgate, style: str) -> None:
    missing = verify(server, "GET", "/api/items", style=style)
    assert missing.status_code == 401
    assert missing.json()["code"] == "missing_credentials"
    assert missing.headers["www-authenticate"] == 'Bearer realm="authgate"'
    bad = verify(server, "GET", "/api/items", "ag_" + "x" * 40, style=style)
    assert bad.status_code == 401
    assert bad.json()["code"] == "invalid_token"
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


@pytest.mark.parametrize("style", ["nginx", "traefik"])
def test_valid_key_passes_with_identity(server: LiveAuthgate, style: str) -> None:
    response = verify(server, "GET", "/api/items", server.reader, style=style)
    assert response.status_code == 200
    assert response.headers["x-authgate-key-id"] == server.reader_id
    assert response.headers["x-authgate-key-name"] == "reader"
    assert response.headers["x-authgate-scopes"] == "read"
    bearer = httpx.get(
        f"{server.url}/authgate/v1/verify",
        headers={
            "X-Forwarded-Method": "GET",
            "X-Forwarded-Uri": "/api/items",
            "Authorization": f"Bearer {server.writer}",
        },
    )
    assert bearer.status_code == 200
    assert bearer.headers["x-authgate-scopes"] == "packages:write,read"


def test_the_original_method_decides(server: LiveAuthgate) -> None:
    assert verify(server, "GET", "/packages").status_code == 200
    refused = verify(server, "POST", "/packages", server.reader)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert verify(server, "POST", "/packages", server.writer).status_code == 200
    assert verify(server, "POST", "/packages/demo/approve", server.writer).status_code == 403


@pytest.mark.parametrize(
    "uri",
    [
        "/public/../api/items",
        "/public/%2e%2e/api/items",
        "//public/..//api/items",
        "/public/./../api/items/",
        "http://app.example.com/public/../api/items",
    ],
)
def test_path_tricks_do_not_reach_a_public_rule(server: LiveAuthgate, uri: str) -> None:
    # An absolute URI must name the host the request is for (else 400 ambiguous_host).
    extra = {"Host": "app.example.com"} if "://" in uri else None
    assert verify(server, "GET", uri, extra=extra).status_code == 401


def test_case_and_trailing_slashes_match_the_same_rule(server: LiveAuthgate) -> None:
    assert verify(server, "GET", "/PUBLIC/Readme/").status_code == 200
    assert verify(server, "GET", "/API/items/").status_code == 401


def test_refused_paths_are_403_which_nginx_passes_on(server: LiveAuthgate) -> None:
    # nginx turns anything but 401/403 into a 500: the refusal keeps the middleware's code.
    for uri in ("/api/a%2Fb", "/../etc/passwd", "relative/path"):
        response = verify(server, "GET", uri)
        assert response.status_code == 403, uri
        assert response.json()["code"] == "invalid_path"


def test_original_request_is_required(
    server: LiveAuthgate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="authgate.forward_auth")
    response = httpx.get(f"{server.url}/authgate/v1/verify", headers={"X-API-Key": server.reader})
    # A misconfigured proxy: 403 (nginx shows it; a 422 would become nginx's 500).
    assert response.status_code == 403
    assert response.json()["code"] == "proxy_misconfigured"
    assert "X-Forwarded-Uri" in response.json()["detail"]
    only_uri = httpx.get(
        f"{server.url}/authgate/v1/verify", headers={"X-Original-URI": "/public/x"}
    )
    assert only_uri.status_code == 403
    assert only_uri.json()["code"] == "proxy_misconfigured"
    # Said once in the log, with the fix, however many calls come.
    warnings = [r for r in caplog.records if r.name == "authgate.forward_auth"]
    assert len(warnings) == 1
    assert "X-Forwarded-Method" in warnings[0].getMessage()


def test_disagreeing_spellings_are_refused(server: LiveAuthgate) -> None:
    # nginx sets X-Original-URI; a client adds X-Forwarded-Uri hoping it wins.
    spoofed = verify(server, "GET", "/api/items", extra={"X-Forwarded-Uri": "/public/x"})
    assert spoofed.status_code == 403
    assert spoofed.json()["code"] == "ambiguous_original"
    method_spoof = verify(server, "POST", "/packages", extra={"X-Forwarded-Method": "GET"})
    assert method_spoof.status_code == 403
    assert method_spoof.json()["code"] == "ambiguous_original"
    agreeing = verify(server, "GET", "/public/x", extra={"X-Forwarded-Uri": "/public/x"})
    assert agreeing.status_code == 200


def test_localhost_is_never_bypassed(server: LiveAuthgate) -> None:
    # The server's bypass is on and this request comes from 127.0.0.1 with no forwarding
    # header, yet verify refuses: the peer of a forward-auth call is always the proxy.
    assert server.runtime.settings.localhost_bypass == "on"
    assert verify(server, "GET", "/api/items").status_code == 401


def test_any_verify_method_is_accepted(server: LiveAuthgate) -> None:
    for method in ("HEAD", "POST"):
        response = httpx.request(
            method,
            f"{server.url}/authgate/v1/verify",
            headers={
                "X-Forwarded-Method": "GET",
                "X-Forwarded-Uri": "/api/x",
                "X-API-Key": server.reader,
            },
        )
        assert response.status_code == 200
        assert response.headers["x-authgate-key-name"] == "reader"


def test_failed_attempts_are_rate_limited_per_client(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with authgate_server(
        data_dir, failure_rate_limit="3/day", trusted_proxies=["127.0.0.1"]
    ) as live:
        statuses = []
        client = {"X-Forwarded-For": "198.51.100.7"}
        for _ in range(5):
            response = verify(live, "GET", "/api/items", "ag_" + "b" * 40, extra=client)
            statuses.append(response.status_code)
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3:] == [429, 429]
        assert int(response.headers["retry-after"]) >= 1
        # Another client behind the same proxy is not locked out, and a valid key passes.
        other = verify(live, "GET", "/api/items", extra={"X-Forwarded-For": "198.51.100.8"})
        assert other.status_code == 401
        good = verify(live, "GET", "/api/items", live.reader, extra=client)
        assert good.status_code == 200


def test_verify_is_in_the_openapi_document(server: LiveAuthgate) -> None:
    document = httpx.get(f"{server.url}/authgate/openapi.json").json()
    operation = document["paths"]["/authgate/v1/verify"]["get"]
    assert "X-Forwarded-Uri" in operation["description"]
    assert {"200", "401", "403"} <= set(operation["responses"])


@pytest.mark.parametrize("style", ["nginx", "traefik"])
def test_a_path_parameter_that_picks_another_rule_is_refused(
    server: LiveAuthgate, style: str
) -> None:
    # A Java upstream reads /public;x/readme as /public/readme: which rule applies is two
    # answers, so neither is given.
    refused = verify(server, "GET", "/public;x/readme", server.reader, style=style)
    assert refused.status_code == 403
    assert refused.json()["code"] == "invalid_path"
    agreeing = verify(server, "GET", "/public/readme;v=1", style=style)
    assert agreeing.status_code == 200
