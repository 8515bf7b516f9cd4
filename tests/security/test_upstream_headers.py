"""Headers a client writes that an upstream would read as authgate's or as a proxy's.

A real authgate gateway in front of two real upstreams, each reporting what its own
parser made of the request: wsgiref (the WSGI environ, which folds ``_`` into ``-``) and
Starlette. Every name in the table of proxy-set headers (authgate.proxy.client_headers), and
authgate's identity headers, is sent in several spellings with a marker value; the
marker must never reach an upstream, and ``X-Authgate-*`` must carry authgate's values
only.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

import httpx
import pytest

from authgate.adapters.asgi import PRINCIPAL_SCOPE_KEY
from authgate.adapters.wsgi import AuthgateWSGIMiddleware, principal_of
from authgate.errors import ConfigurationError
from authgate.manage.keys import Actor
from authgate.principal import Principal
from authgate.proxy.client_headers import PROXY_FACTS, RELAYED
from authgate.proxy.gateway import Gateway, gateway_from_settings
from authgate.runtime import Runtime
from authgate.settings import load_settings
from authgate.trusted_proxies import parse_networks
from tests.gateway.authgate_server import authgate_server
from tests.gateway.documented import documented_caddy, documented_nginx
from tests.gateway.upstream import make_upstream
from tests.security.upstreams import (
    RULES,
    Gatekeeper,
    QuietHandler,
    authgate_gateway,
    starlette_upstream,
    wsgi_key,
    wsgiref_upstream,
)
from tests.support import free_port, live_server

MARK = "spoofed-by-client"
UPSTREAMS = ("wsgiref", "starlette")


def spellings(name: str) -> list[str]:
    """How a client may write ``name`` so that some upstream still reads it as ``name``."""
    title = "-".join(part.capitalize() for part in name.split("-"))
    return [
        title,
        name.upper(),
        name.replace("-", "_"),
        title.replace("-", "_"),
        # "_" in one place only: WSGI folds it all the same.
        title.replace("-", "_", 1),
    ]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, str]]:
    with wsgiref_upstream() as wsgi, starlette_upstream() as star:
        yield {"wsgiref": wsgi, "starlette": star}


@pytest.fixture(scope="module")
def gatekeepers(
    tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, str]
) -> Iterator[dict[str, Gatekeeper]]:
    with (
        authgate_gateway(tmp_path_factory.mktemp("wsgi"), upstreams["wsgiref"]) as wsgi,
        authgate_gateway(tmp_path_factory.mktemp("star"), upstreams["starlette"]) as star,
    ):
        yield {"wsgiref": wsgi, "starlette": star}


def received(kind: str, response: httpx.Response) -> list[tuple[str, str]]:
    """What the upstream read: (name, value), names as its parser gives them."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if kind == "wsgiref":
        return list(body["environ"].items())
    return [(name, value) for name, value in body["headers"]]


def value_of(kind: str, seen: list[tuple[str, str]], name: str) -> list[str]:
    key = wsgi_key(name) if kind == "wsgiref" else name.lower()
    return [value for seen_name, value in seen if seen_name == key]


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_no_proxy_set_name_reaches_the_upstream_as_the_client_wrote_it(
    kind: str, gatekeepers: dict[str, Gatekeeper]
) -> None:
    gate = gatekeepers[kind]
    leaks: dict[str, list[tuple[str, str]]] = {}
    with httpx.Client(base_url=gate.url) as client:
        for name in sorted(PROXY_FACTS):
            sent = [(spelling, f"{MARK}-{n}") for n, spelling in enumerate(spellings(name))]
            # The same name twice, as written: neither copy may pass.
            sent += [(name, f"{MARK}-first"), (name, f"{MARK}-second")]
            response = client.get(
                "/api/items", headers=[("X-API-Key", gate.token), *sent], timeout=10
            )
            leaked = [item for item in received(kind, response) if MARK in item[1]]
            if leaked:
                leaks[name] = leaked
    assert leaks == {}


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_identity_headers_carry_authgates_values_only(
    kind: str, gatekeepers: dict[str, Gatekeeper]
) -> None:
    gate = gatekeepers[kind]
    spoofed = [
        ("X_Authgate_Key_Id", "key_ADMIN"),
        ("X_Authgate_Scopes", "*"),
        ("X_AUTHGATE_KEY_NAME", "admin"),
        ("X-Authgate_Key-Id", "key_ADMIN"),
        ("X-AUTHGATE-KEY-ID", "key_ADMIN"),
        ("x-authgate-scopes", "*"),
        ("X-Authgate-Role", "admin"),
    ]
    response = httpx.get(
        f"{gate.url}/api/items", headers=[("X-API-Key", gate.token), *spoofed], timeout=10
    )
    seen = received(kind, response)
    assert value_of(kind, seen, "x-authgate-key-id") == [gate.key_id]
    assert value_of(kind, seen, "x-authgate-key-name") == ["reader"]
    assert value_of(kind, seen, "x-authgate-scopes") == ["read"]
    assert value_of(kind, seen, "x-authgate-role") == []
    assert not [item for item in seen if item[1] in ("key_ADMIN", "*", "admin")]


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_an_anonymous_request_carries_no_identity_at_all(
    kind: str, gatekeepers: dict[str, Gatekeeper]
) -> None:
    gate = gatekeepers[kind]
    response = httpx.get(
        f"{gate.url}/public/readme",
        headers=[("X_Authgate_Key_Id", "key_ADMIN"), ("X_Authgate_Scopes", "*")],
        timeout=10,
    )
    seen = received(kind, response)
    assert not [name for name, _ in seen if "authgate" in name.lower()]


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_a_name_the_client_lists_in_connection_does_not_remove_authgates_own(
    kind: str, gatekeepers: dict[str, Gatekeeper]
) -> None:
    gate = gatekeepers[kind]
    response = httpx.get(
        f"{gate.url}/api/items",
        headers=[
            ("X-API-Key", gate.token),
            ("Connection", "keep-alive, X-Authgate-Key-Id, X-Forwarded-For, True-Client-IP"),
            ("True-Client-IP", MARK),
        ],
        timeout=10,
    )
    seen = received(kind, response)
    assert value_of(kind, seen, "x-authgate-key-id") == [gate.key_id]
    assert value_of(kind, seen, "x-forwarded-for") == ["127.0.0.1"]
    assert not [item for item in seen if MARK in item[1]]


def test_credentials_spelt_with_underscores_stay_behind(
    gatekeepers: dict[str, Gatekeeper],
) -> None:
    gate = gatekeepers["wsgiref"]
    response = httpx.get(
        f"{gate.url}/api/items",
        headers=[("X-API-Key", gate.token), ("X_API_Key", gate.token)],
        timeout=10,
    )
    seen = received("wsgiref", response)
    assert not [item for item in seen if gate.token in item[1]]


def _raw_request(url: str, lines: list[bytes]) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"\r\n".join([b"GET /public/raw HTTP/1.1", b"Host: x", *lines, b"", b""]))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and (b"}" in answer or b" 400 " in answer[:20]):
                break
        return answer


@pytest.mark.parametrize(
    "line",
    [
        b"X-Authgate-Key-Id : key_ADMIN",
        b" X-Authgate-Key-Id: key_ADMIN",
        b"X-Authgate-Key-Id\t: key_ADMIN",
        b"X-Authgate\x00-Key-Id: key_ADMIN",
        b"X-Authgate-Key-Id\x7f: key_ADMIN",
        b"X-Authgate-Key-\xc4\xb0d: key_ADMIN",
    ],
)
def test_names_with_whitespace_or_odd_bytes_never_arrive_on_the_wire(
    line: bytes, gatekeepers: dict[str, Gatekeeper]
) -> None:
    """Through the real server: refused (400) or dropped, never forwarded."""
    answer = _raw_request(gatekeepers["wsgiref"].url, [b"X-Pad: 1", line, b"Connection: close"])
    status = answer.split(b"\r\n", 1)[0]
    if b" 400 " in status:
        return
    assert b" 200 " in status, answer[:200]
    environ = json.loads(answer.split(b"\r\n\r\n", 1)[1])["environ"]
    assert [key for key in environ if "AUTHGATE" in key] == []


@pytest.mark.parametrize(
    "name",
    [
        b" x-authgate-key-id",
        b"x-authgate-key-id ",
        b"x-authgate-key-id\t",
        b"true-client-ip ",
        b"x-forwarded-for\x00",
        b"remote-user\xff",
        b"x-remote-user:",
        b"",
    ],
)
def test_names_that_are_not_tokens_are_dropped_whatever_server_passed_them(
    name: bytes,
) -> None:
    """An ASGI server in the same process may hand the gateway names no HTTP parser
    would; a lenient upstream would trim them into a name authgate sets."""
    scope = {
        "type": "http",
        "method": "GET",
        "headers": [(name, b"key_ADMIN"), (b"host", b"x")],
        "client": ("203.0.113.9", 4000),
        "authgate.principal": Principal(id="key_1", name="n", kind="api_key"),
    }
    headers, _length, _chunked = Gateway("http://127.0.0.1:1").upstream_headers(scope)
    assert [item for item in headers if item[1] == "key_ADMIN"] == []


def test_mixed_case_names_from_a_server_are_judged_lowercase() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "headers": [(b"X-Authgate-Key-Id", b"key_ADMIN"), (b"True-Client-IP", b"6.6.6.6")],
        "client": ("203.0.113.9", 4000),
    }
    headers, _length, _chunked = Gateway("http://127.0.0.1:1").upstream_headers(scope)
    assert [item for item in headers if item[1] in ("key_ADMIN", "6.6.6.6")] == []


def _scope(headers: list[tuple[bytes, bytes]], peer: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "headers": headers, "client": (peer, 4000)}


def test_a_remembered_name_never_carries_one_peers_trust_to_another() -> None:
    gateway = Gateway(
        "http://127.0.0.1:1",
        keep_headers=["CF-Connecting-IP"],
        trusted_proxies=parse_networks(["10.0.0.0/8"]),
    )
    sent = [(b"cf-connecting-ip", b"198.51.100.7")]
    for _ in range(3):
        trusted, _length, _chunked = gateway.upstream_headers(_scope(sent, "10.1.2.3"))
        assert ("cf-connecting-ip", "198.51.100.7") in trusted
        stranger, _length, _chunked = gateway.upstream_headers(_scope(sent, "203.0.113.9"))
        assert [item for item in stranger if item[0] == "cf-connecting-ip"] == []


def test_a_gateway_flooded_with_new_names_still_judges_each() -> None:
    gateway = Gateway("http://127.0.0.1:1")
    junk = [(f"x-junk-{n}".encode(), b"1") for n in range(10_000)]
    for start in range(0, len(junk), 500):
        gateway.upstream_headers(_scope(junk[start : start + 500], "203.0.113.9"))
    late = [(b"true-client-ip", b"6.6.6.6"), (b"x_authgate_key_id", b"key_ADMIN")]
    late += [(b"x-late-but-fine", b"ok")]
    headers, _length, _chunked = gateway.upstream_headers(_scope(late, "203.0.113.9"))
    assert [item for item in headers if item[1] in ("6.6.6.6", "key_ADMIN")] == []
    assert ("x-late-but-fine", "ok") in headers


# -- what an operator may keep ---------------------------------------------------------


def test_kept_names_pass_and_relay_facts_only_from_a_trusted_proxy(
    tmp_path: Path, upstreams: dict[str, str]
) -> None:
    keep = ("X-HTTP-Method-Override", "CF-Connecting-IP")
    sent = [("X-HTTP-Method-Override", "PATCH"), ("CF-Connecting-IP", "198.51.100.7")]
    with authgate_gateway(
        tmp_path / "a", upstreams["wsgiref"], forward_headers_keep=keep
    ) as untrusted:
        seen = received(
            "wsgiref",
            httpx.get(f"{untrusted.url}/api/x", headers=[("X-API-Key", untrusted.token), *sent]),
        )
    assert value_of("wsgiref", seen, "x-http-method-override") == ["PATCH"]
    assert value_of("wsgiref", seen, "cf-connecting-ip") == []
    with authgate_gateway(
        tmp_path / "b",
        upstreams["wsgiref"],
        forward_headers_keep=keep,
        trusted_proxies=["127.0.0.1"],
    ) as trusted:
        seen = received(
            "wsgiref",
            httpx.get(f"{trusted.url}/api/x", headers=[("X-API-Key", trusted.token), *sent]),
        )
    assert value_of("wsgiref", seen, "x-http-method-override") == ["PATCH"]
    assert value_of("wsgiref", seen, "cf-connecting-ip") == ["198.51.100.7"]


def test_keeping_a_kept_name_keeps_only_its_own_spelling(
    tmp_path: Path, upstreams: dict[str, str]
) -> None:
    with authgate_gateway(
        tmp_path, upstreams["wsgiref"], forward_headers_keep=("X-HTTP-Method-Override",)
    ) as gate:
        seen = received(
            "wsgiref",
            httpx.get(
                f"{gate.url}/api/x",
                headers=[("X-API-Key", gate.token), ("X_HTTP_Method_Override", "DELETE")],
            ),
        )
    assert value_of("wsgiref", seen, "x-http-method-override") == []


def test_underscore_names_pass_when_allowed_unless_they_fold_into_a_reserved_one(
    tmp_path: Path, upstreams: dict[str, str]
) -> None:
    with authgate_gateway(tmp_path, upstreams["wsgiref"], forward_underscore_headers=True) as gate:
        seen = received(
            "wsgiref",
            httpx.get(
                f"{gate.url}/api/x",
                headers=[
                    ("X-API-Key", gate.token),
                    ("X_Tenant_Id", "tenant-7"),
                    ("X_Authgate_Key_Id", "key_ADMIN"),
                    ("X_Forwarded_For", "6.6.6.6"),
                    ("True_Client_IP", "6.6.6.6"),
                    ("X_API_Key", "ag_stolen"),
                    ("Transfer_Encoding", "chunked"),
                ],
            ),
        )
    assert value_of("wsgiref", seen, "x-tenant-id") == ["tenant-7"]
    assert value_of("wsgiref", seen, "x-authgate-key-id") == [gate.key_id]
    assert value_of("wsgiref", seen, "x-forwarded-for") == ["127.0.0.1"]
    assert value_of("wsgiref", seen, "true-client-ip") == []
    assert value_of("wsgiref", seen, "x-api-key") == []
    assert value_of("wsgiref", seen, "transfer-encoding") == []


def test_underscore_names_are_dropped_by_default(gatekeepers: dict[str, Gatekeeper]) -> None:
    gate = gatekeepers["wsgiref"]
    seen = received(
        "wsgiref",
        httpx.get(f"{gate.url}/api/x", headers=[("X-API-Key", gate.token), ("X_Tenant_Id", "t")]),
    )
    assert value_of("wsgiref", seen, "x-tenant-id") == []


@pytest.mark.parametrize(
    "name",
    [
        "X-Authgate-Key-Id",
        "x_authgate_scopes",
        "X-Forwarded-For",
        "x_real_ip",
        "Host",
        "Connection",
        "X-API-Key",
        "Authorization",
        "Content-Length",
        "X Bad",
        "",
    ],
)
def test_authgates_own_names_cannot_be_kept(name: str) -> None:
    with pytest.raises(ConfigurationError, match="forward_headers_keep"):
        Gateway("http://127.0.0.1:1", keep_headers=[name])


# -- the localhost bypass -------------------------------------------------------------


@pytest.fixture(scope="module")
def bypassing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("bypass")
    with (
        live_server(make_upstream()) as upstream,
        authgate_server(data_dir, upstream=upstream, localhost_bypass="on") as server,
    ):
        yield server.url


def test_the_bypass_admits_a_plain_loopback_request(bypassing: str) -> None:
    response = httpx.get(f"{bypassing}/api/items")
    assert response.status_code == 200
    seen = dict(response.json()["headers"])
    assert seen["x-authgate-key-id"] == "local"


def test_a_request_carrying_any_relay_name_is_not_local(bypassing: str) -> None:
    local = []
    with httpx.Client(base_url=bypassing) as client:
        for name in sorted(RELAYED):
            response = client.get("/api/items", headers={name: "203.0.113.50"})
            if response.status_code != 401:
                local.append((name, response.status_code))
    assert local == []


# -- the WSGI middleware: in process, the principal comes from authgate's environ key ---


def _principal_app(environ: Any, start_response: Any) -> list[bytes]:
    principal = principal_of(environ)
    raw = environ.get(PRINCIPAL_SCOPE_KEY)
    body = {
        "id": principal.id if principal is not None else None,
        "scopes": sorted(principal.scopes) if principal is not None else None,
        "raw_is_principal": raw is None or isinstance(raw, Principal),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


@pytest.fixture(scope="module")
def wsgi_protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    runtime = Runtime(
        load_settings(
            data_dir=tmp_path_factory.mktemp("wsgi-mw"),
            rules=RULES,
            access_log=False,
            localhost_bypass="off",
        )
    )
    runtime.start()
    try:
        key = runtime.keys.create(Actor("test", source="test"), name="reader", scopes=["read"])
        app = AuthgateWSGIMiddleware(_principal_app, runtime=runtime)
        server = make_server("127.0.0.1", free_port(), app, handler_class=QuietHandler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", key.token, key.record.id
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
    finally:
        runtime.close()


_SPOOFED_IDENTITY = [
    ("X-Authgate-Key-Id", "key_ADMIN"),
    ("X_Authgate_Key_Id", "key_ADMIN"),
    ("X_Authgate_Scopes", "*"),
    ("authgate.principal", "key_ADMIN"),
    ("Remote-User", "admin"),
]


def test_wsgi_middleware_takes_no_principal_from_http_headers(
    wsgi_protected: tuple[str, str, str],
) -> None:
    url, _token, _key_id = wsgi_protected
    response = httpx.get(f"{url}/public/x", headers=_SPOOFED_IDENTITY)
    assert response.json() == {"id": None, "scopes": None, "raw_is_principal": True}
    refused = httpx.get(f"{url}/api/x", headers=_SPOOFED_IDENTITY)
    assert refused.status_code == 401


def test_wsgi_middleware_principal_is_the_authenticated_key(
    wsgi_protected: tuple[str, str, str],
) -> None:
    url, token, key_id = wsgi_protected
    response = httpx.get(f"{url}/api/x", headers=[("X-API-Key", token), *_SPOOFED_IDENTITY])
    assert response.json() == {"id": key_id, "scopes": ["read"], "raw_is_principal": True}


# -- forward auth: the nginx configuration docs/gateway.md shows ---------------------


@pytest.fixture(scope="module")
def through_nginx(
    tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, str]
) -> Iterator[Gatekeeper]:
    tmp = tmp_path_factory.mktemp("nginx")
    data_dir = tmp / "data"
    data_dir.mkdir(mode=0o700)
    with (
        authgate_server(data_dir, trusted_proxies=["127.0.0.1"]) as authgate,
        documented_nginx(tmp, free_port(), upstreams["wsgiref"], authgate.url) as url,
    ):
        yield Gatekeeper(url, authgate.reader, authgate.reader_id)


def test_documented_nginx_config_keeps_clients_identity_and_proxy_names_away(
    through_nginx: Gatekeeper,
) -> None:
    blanked = ["X-Real-IP", "True-Client-IP", "X-Client-IP", "X-Original-URL"]
    blanked += ["X-Rewrite-URL", "Remote-User", "X-Remote-User", "X-HTTP-Method-Override"]
    sent = [(name, f"{MARK}-{name}") for name in blanked]
    sent += [
        ("X_Authgate_Key_Id", "key_ADMIN"),
        ("X_Authgate_Scopes", "*"),
        ("X-Authgate-Key-Id", "key_ADMIN"),
        ("X-Authgate-Assertion", "key_ADMIN"),
        ("X_Authgate_Assertion", "key_ADMIN"),
        ("X_Forwarded_For", MARK),
        ("X_Real_IP", MARK),
    ]
    response = httpx.get(
        f"{through_nginx.url}/api/items",
        headers=[("X-API-Key", through_nginx.token), *sent],
        timeout=10,
    )
    seen = received("wsgiref", response)
    assert value_of("wsgiref", seen, "x-authgate-key-id") == [through_nginx.key_id]
    assert value_of("wsgiref", seen, "x-authgate-scopes") == ["read"]
    assert value_of("wsgiref", seen, "x-real-ip") == ["127.0.0.1"]
    assert [item for item in seen if MARK in item[1] or item[1] in ("key_ADMIN", "*")] == []


def test_kept_names_come_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTHGATE_FORWARD_HEADERS_KEEP", "X-HTTP-Method-Override, CF-Connecting-IP")
    monkeypatch.setenv("AUTHGATE_FORWARD_UNDERSCORE_HEADERS", "true")
    loaded = load_settings(data_dir=tmp_path)
    assert loaded.forward_headers_keep == ("X-HTTP-Method-Override", "CF-Connecting-IP")
    assert loaded.forward_underscore_headers is True


def test_a_setting_that_keeps_authgates_own_name_stops_the_gateway(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        upstream_url="http://127.0.0.1:1",
        forward_headers_keep=("X_Authgate_Key_Id",),
    )
    with pytest.raises(ConfigurationError, match="x-authgate-key-id"):
        gateway_from_settings(settings)


# -- forward auth: the Caddy configuration docs/gateway.md shows ---------------------


@pytest.fixture(scope="module")
def through_caddy(
    tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, str]
) -> Iterator[Gatekeeper]:
    tmp = tmp_path_factory.mktemp("caddy")
    data_dir = tmp / "data"
    data_dir.mkdir(mode=0o700)
    with (
        authgate_server(data_dir, trusted_proxies=["127.0.0.1"]) as authgate,
        documented_caddy(tmp, free_port(), upstreams["wsgiref"], authgate.url) as url,
    ):
        yield Gatekeeper(url, authgate.reader, authgate.reader_id)


def test_documented_caddy_config_keeps_clients_identity_and_proxy_names_away(
    through_caddy: Gatekeeper,
) -> None:
    removed = ["X-Real-IP", "True-Client-IP", "X-Original-URL", "Remote-User"]
    removed += ["X-HTTP-Method-Override"]
    sent = [(name, f"{MARK}-{name}") for name in removed]
    sent += [
        ("X_Authgate_Key_Id", "key_ADMIN"),
        ("X-Authgate_Scopes", "*"),
        ("X-Authgate-Key-Id", "key_ADMIN"),
        ("X-Authgate-Role", "admin"),
        ("X_Forwarded_For", MARK),
        ("X_Real_IP", MARK),
    ]
    response = httpx.get(
        f"{through_caddy.url}/api/items",
        headers=[("X-API-Key", through_caddy.token), *sent],
        timeout=10,
    )
    seen = received("wsgiref", response)
    assert value_of("wsgiref", seen, "x-authgate-key-id") == [through_caddy.key_id]
    assert value_of("wsgiref", seen, "x-authgate-scopes") == ["read"]
    assert value_of("wsgiref", seen, "x-authgate-role") == []
    assert value_of("wsgiref", seen, "x-api-key") == []
    assert [item for item in seen if MARK in item[1] or item[1] in ("key_ADMIN", "*")] == []
