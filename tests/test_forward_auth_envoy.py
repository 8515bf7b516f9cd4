"""``/authgate/v1/verify/<original path>``: Envoy's ``ext_authz`` HTTP service form.

Envoy is not installable here, so each request is written byte for byte the way Envoy's
documentation says its HTTP authorization client sends it: the original method, the
``path_prefix`` followed by the original ``:path`` (query included, as received), the
original ``Host``, ``Content-Length: 0``, ``Authorization`` and the headers listed in
``allowed_headers``. Envoy allows the request only on a 200; any other answer goes back
to the client with its status and body.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.authgate_server import LiveAuthgate, authgate_server

PREFIX = "/authgate/v1/verify"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveAuthgate]:
    data_dir = tmp_path_factory.mktemp("envoy") / "data"
    data_dir.mkdir(mode=0o700)
    with authgate_server(data_dir, localhost_bypass="on") as live:
        yield live


class Answer:
    def __init__(self, head: bytes, body: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def json(self) -> dict[str, str]:
        loaded: dict[str, str] = json.loads(self.body)
        return loaded


def check(
    server: LiveAuthgate,
    method: str,
    original_path: str,
    *headers: tuple[str, str],
    host: str = "app.example.com",
) -> Answer:
    """One check request as Envoy writes it for ``method original_path``."""
    lines = [f"{method} {PREFIX}{original_path} HTTP/1.1", f"Host: {host}", "Content-Length: 0"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += ["x-envoy-expected-rq-timeout-ms: 250", "Connection: close", "", ""]
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return Answer(head, body)


def key(server: LiveAuthgate) -> tuple[str, str]:
    return ("x-api-key", server.reader)


def test_a_valid_key_is_allowed_with_the_identity_for_upstream(server: LiveAuthgate) -> None:
    answer = check(server, "GET", "/api/items?page=2", key(server))
    assert answer.status == 200
    assert answer.header("x-authgate-key-id") == server.reader_id
    assert answer.header("x-authgate-key-name") == "reader"
    assert answer.header("x-authgate-scopes") == "read"
    bearer = check(server, "GET", "/api/items", ("authorization", f"Bearer {server.writer}"))
    assert bearer.status == 200
    assert bearer.header("x-authgate-scopes") == "packages:write,read"


def test_the_original_method_decides(server: LiveAuthgate) -> None:
    assert check(server, "GET", "/packages/demo").status == 200
    refused = check(server, "POST", "/packages", key(server))
    assert refused.status == 403
    assert refused.json()["code"] == "forbidden"
    assert check(server, "POST", "/packages", ("x-api-key", server.writer)).status == 200
    assert check(server, "DELETE", "/packages/demo", key(server)).status == 200


def test_refusals_carry_a_body_envoy_hands_the_client(server: LiveAuthgate) -> None:
    missing = check(server, "GET", "/api/items")
    assert missing.status == 401
    assert missing.json()["code"] == "missing_credentials"
    assert missing.header("www-authenticate") == 'Bearer realm="authgate"'
    assert missing.header("content-type") == "application/json"
    bad = check(server, "GET", "/api/items", ("x-api-key", "ag_" + "x" * 40))
    assert bad.status == 401
    assert bad.json()["code"] == "invalid_token"


def test_public_routes_pass_anonymously_without_identity(server: LiveAuthgate) -> None:
    answer = check(server, "GET", "/public/readme")
    assert answer.status == 200
    assert not [name for name in answer.headers if name.startswith("x-authgate-")]


@pytest.mark.parametrize(
    "path",
    [
        "/public/../api/items",
        "/public/%2e%2e/api/items",
        "/public/%2E%2E/api/items",
        "//public/..//api/items",
        "/public/./../api/items/",
        "/PUBLIC/../API/items",
    ],
)
def test_dot_segments_in_the_suffix_do_not_reach_a_public_rule(
    server: LiveAuthgate, path: str
) -> None:
    assert check(server, "GET", path).status == 401


@pytest.mark.parametrize(
    "path",
    [
        # Each would climb out of the suffix into authgate's own routes if the whole
        # check path were made canonical: /authgate/v1/info is public and answers 200.
        "/../info",
        "/../../v1/info",
        "/%2e%2e/info",
        "/x/../../info",
        "/../verify/../../v1/info",
    ],
)
def test_the_suffix_never_climbs_into_authgates_routes(server: LiveAuthgate, path: str) -> None:
    answer = check(server, "GET", path)
    assert answer.status == 403
    assert answer.json()["code"] == "invalid_path"


@pytest.mark.parametrize("path", ["/api/a%2Fb", "/api/a%5Cb", "/api/a%00b"])
def test_encoded_separators_are_refused(server: LiveAuthgate, path: str) -> None:
    answer = check(server, "GET", path, key(server))
    assert answer.status == 403
    assert answer.json()["code"] == "invalid_path"


@pytest.mark.parametrize(
    "header",
    [
        ("x-forwarded-uri", "/public/x"),
        ("x-original-uri", "/public/x"),
        ("x-envoy-original-path", "/public/x"),
        ("x-forwarded-method", "GET"),
    ],
)
def test_a_second_reading_that_disagrees_is_refused(
    server: LiveAuthgate, header: tuple[str, str]
) -> None:
    # The client claims a public GET; Envoy's own path (and method) say otherwise.
    answer = check(server, "POST", "/api/items", key(server), header)
    assert answer.status == 403
    assert answer.json()["code"] == "ambiguous_original"


def test_a_second_reading_that_agrees_passes(server: LiveAuthgate) -> None:
    answer = check(
        server,
        "GET",
        "/api/items?page=2",
        key(server),
        ("x-forwarded-uri", "/api/items?page=2"),
        ("x-envoy-original-path", "/api/items?page=2"),
        ("x-forwarded-method", "GET"),
    )
    assert answer.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        # A repeated credential, as HTTP/1 sends it and as Envoy joins it into one value.
        [("x-api-key", "READER"), ("x-api-key", "ag_" + "y" * 40)],
        [("x-api-key", "READER,ag_" + "y" * 40)],
        [("authorization", "Bearer READER"), ("authorization", "Bearer READER")],
        [("authorization", "Bearer READER, Bearer ag_" + "y" * 40)],
        [("x-api-key", "READER"), ("authorization", "Bearer ag_" + "y" * 40)],
    ],
)
def test_repeated_or_joined_credentials_are_refused(
    server: LiveAuthgate, headers: list[tuple[str, str]]
) -> None:
    sent = [(name, value.replace("READER", server.reader)) for name, value in headers]
    answer = check(server, "GET", "/api/items", *sent)
    assert answer.status == 401


def test_a_repeated_host_is_refused(server: LiveAuthgate) -> None:
    answer = check(server, "GET", "/api/items", key(server), ("host", "admin.example.com"))
    assert answer.status == 400
    assert answer.json()["code"] == "ambiguous_host"


def test_the_prefix_alone_is_the_header_form(server: LiveAuthgate) -> None:
    # No suffix, no X-Forwarded-*: a proxy configured without the original request.
    answer = check(server, "GET", "", key(server))
    assert answer.status == 403
    assert answer.json()["code"] == "proxy_misconfigured"


def test_other_spellings_of_the_prefix_never_verify(server: LiveAuthgate) -> None:
    # Not the literal prefix: the middleware sees it, and no route answers a pass.
    port = int(server.url.rsplit(":", 1)[1])
    for target in ("/authgate//v1/verify/api/items", "/authgate/v1/./verify/api/items"):
        head = f"GET {target} HTTP/1.1\r\nHost: a\r\nX-API-Key: {server.reader}\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall((head + "Connection: close\r\n\r\n").encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1])
        assert status != 200, target


def test_a_check_with_a_body_still_answers(tmp_path: Path) -> None:
    # with_request_body: Envoy sends the buffered body; verify never needs it.
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with authgate_server(data_dir) as live:
        port = int(live.url.rsplit(":", 1)[1])
        head = (
            f"PUT {PREFIX}/api/items HTTP/1.1\r\nHost: app.example.com\r\n"
            f"x-api-key: {live.reader}\r\nContent-Length: 4\r\n\r\nbody"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head.encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
