"""The service over a real uvicorn: health, info, whoami, the error contract, raw bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import authgate
from authgate.credentials.tokens import generate_token
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.server import create_app
from authgate.settings import load_settings
from tests.foundation.helpers import get_request, raw_request
from tests.support import POSTGRES_ADMIN_URL, free_port, live_server

ACTOR = Actor("tester", source="pytest")
REALM = 'Bearer realm="authgate"'
INVALID = 'Bearer realm="authgate", error="invalid_token"'
WHOAMI = "/authgate/v1/whoami"


@pytest.fixture
def served(make_settings: Callable[..., Any]) -> Iterator[tuple[Runtime, str]]:
    """A runtime started by the app's own lifespan, behind a real uvicorn."""
    runtime = Runtime(make_settings(localhost_bypass="off"))
    try:
        with live_server(create_app(runtime)) as url:
            yield runtime, url
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def raw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded-store server for input that is refused before any store lookup."""
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("AUTHGATE_")]:
            env.delenv(name)
        settings = load_settings(
            data_dir=tmp_path_factory.mktemp("raw") / "data", localhost_bypass="off"
        )
    runtime = Runtime(settings)
    try:
        with live_server(create_app(runtime)) as url:
            yield url
    finally:
        runtime.close()


def assert_error_shape(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


def test_health(served: tuple[Runtime, str]) -> None:
    _, url = served
    response = httpx.get(f"{url}/authgate/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_info_is_public(served: tuple[Runtime, str]) -> None:
    _, url = served
    response = httpx.get(f"{url}/authgate/v1/info")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "authgate"
    assert body["version"] == authgate.__version__
    assert body["authentication"] == "enabled"


def test_info_reports_disabled_authentication(data_dir: Path) -> None:
    runtime = Runtime(load_settings(data_dir=data_dir, auth_enabled=False))
    try:
        with live_server(create_app(runtime)) as url:
            assert httpx.get(f"{url}/authgate/v1/info").json()["authentication"] == "disabled"
    finally:
        runtime.close()


def test_whoami_accepts_both_headers(served: tuple[Runtime, str]) -> None:
    runtime, url = served
    created = runtime.keys.create(ACTOR, name="svc", scopes=["write", "read"])
    expected = {
        "id": created.record.id,
        "name": "svc",
        "kind": "api_key",
        "scopes": ["read", "write"],
    }
    for headers in (
        {"X-API-Key": created.token},
        {"Authorization": f"Bearer {created.token}"},
    ):
        response = httpx.get(f"{url}{WHOAMI}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert {k: body[k] for k in expected} == expected
        assert created.token not in response.text


def test_whoami_without_credentials(served: tuple[Runtime, str]) -> None:
    _, url = served
    response = httpx.get(f"{url}{WHOAMI}")
    assert_error_shape(response, 401, "missing_credentials")
    assert response.headers["www-authenticate"] == REALM


BAD_CREDENTIALS = {
    "malformed": {"X-API-Key": "ag_short"},
    "unknown": {"X-API-Key": generate_token().token},
    "unknown bearer": {"Authorization": f"Bearer {generate_token().token}"},
    "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "bearer without token": {"Authorization": "Bearer"},
    "two different tokens": {
        "X-API-Key": generate_token().token,
        "Authorization": f"Bearer {generate_token().token}",
    },
}


def test_whoami_with_bad_credentials(served: tuple[Runtime, str]) -> None:
    _, url = served
    for case, headers in BAD_CREDENTIALS.items():
        response = httpx.get(f"{url}{WHOAMI}", headers=headers)
        assert response.status_code == 401, case
        assert_error_shape(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == INVALID, case


def test_revoked_and_expired_keys_over_http(served: tuple[Runtime, str]) -> None:
    runtime, url = served
    created = runtime.keys.create(ACTOR, name="svc")
    assert httpx.get(f"{url}{WHOAMI}", headers={"X-API-Key": created.token}).status_code == 200
    runtime.keys.revoke(ACTOR, created.record.id)
    response = httpx.get(f"{url}{WHOAMI}", headers={"X-API-Key": created.token})
    assert_error_shape(response, 401, "invalid_token")


def test_unknown_route_has_the_json_shape(raw_server: str) -> None:
    url = raw_server
    assert_error_shape(httpx.get(f"{url}/authgate/v1/nowhere"), 404, "not_found")
    assert_error_shape(httpx.post(f"{url}/authgate/v1/health"), 405, "method_not_allowed")


# -- bad input, byte for byte ----------------------------------------------------------

RAW_CASES: dict[str, list[bytes]] = {
    "malformed token": [b"X-API-Key: ag_notavalidtoken"],
    "bad checksum": [b"X-API-Key: " + generate_token().token[:-1].encode() + b"0"],
    "wrong prefix": [b"X-API-Key: gh_" + generate_token().token[3:].encode()],
    "empty x-api-key": [b"X-API-Key: "],
    "empty bearer": [b"Authorization: Bearer "],
    "x-api-key repeated": [
        b"X-API-Key: " + generate_token().token.encode(),
        b"X-API-Key: " + generate_token().token.encode(),
    ],
    "authorization repeated": [b"Authorization: Bearer a", b"Authorization: Bearer a"],
    "not utf-8 in x-api-key": [b"X-API-Key: ag_\xff\xfe\xc3\x28\x80abc"],
    "not utf-8 in bearer": [b"Authorization: Bearer \xe9t\xe9\xff"],
    "latin-1 lookalike": [b"X-API-Key: ag_" + "é".encode("latin-1") * 46],
    "just over 8 KB token": [b"X-API-Key: ag_" + b"A" * 8200],
    "64 KB token": [b"X-API-Key: " + b"B" * 65536],
}


@pytest.mark.parametrize("lines", RAW_CASES.values(), ids=RAW_CASES.keys())
def test_bad_credentials_over_a_raw_socket(raw_server: str, lines: list[bytes]) -> None:
    url = raw_server
    response = raw_request(url, get_request(WHOAMI, *lines))
    # uvicorn may refuse an over-long header itself; anything else must be our 401.
    if response.status in {400, 431}:
        assert b"Internal" not in response.body
        return
    assert response.status == 401, response.body
    assert response.header("content-type") == "application/json"
    body = json.loads(response.body)
    assert set(body) == {"detail", "code"}
    assert body["code"] == "invalid_token"
    assert response.header("www-authenticate") == INVALID


def test_an_oversized_header_block_is_never_a_500(raw_server: str) -> None:
    url = raw_server
    filler = [f"X-Filler-{i}: {'z' * 4000}".encode() for i in range(64)]
    response = raw_request(url, get_request(WHOAMI, *filler))
    assert response.status < 500
    assert response.status in {400, 401, 413, 431}


def test_control_characters_in_a_header_are_refused_by_the_server(raw_server: str) -> None:
    url = raw_server
    response = raw_request(url, get_request(WHOAMI, b"X-API-Key: ag_\x01\x02"))
    assert response.status in {400, 401}


# -- store not reachable ---------------------------------------------------------------


def test_not_started_runtime_answers_503_never_401(data_dir: Path) -> None:
    url_down = f"postgresql://postgres:not-this@127.0.0.1:{free_port()}/authgate"
    runtime = Runtime(
        load_settings(data_dir=data_dir, database_url=url_down, localhost_bypass="off")
    )
    try:
        with live_server(create_app(runtime, manage_runtime=False)) as url:
            # Liveness: the process serves; readiness: it is not started.
            assert httpx.get(f"{url}/authgate/v1/health").status_code == 200
            ready = httpx.get(f"{url}/authgate/v1/ready")
            assert ready.status_code == 503
            # The error contract holds for readiness too: a sentence and a machine code.
            assert {"detail", "code"} <= set(ready.json())
            assert ready.json()["code"] == "not_ready"
            assert "startup" in [f["dependency"] for f in ready.json()["failing"]]
            for headers in ({}, {"X-API-Key": "junk"}, {"X-API-Key": generate_token().token}):
                response = httpx.get(f"{url}{WHOAMI}", headers=headers)
                assert_error_shape(response, 503, "not_ready")
                assert "not-this" not in response.text
    finally:
        runtime.close()


def test_ready_503_when_the_database_is_dropped_under_a_running_server(
    postgres_url: str, data_dir: Path
) -> None:
    runtime = Runtime(
        load_settings(data_dir=data_dir, database_url=postgres_url, localhost_bypass="off")
    )
    try:
        with live_server(create_app(runtime)) as url:
            cached = runtime.keys.create(ACTOR, name="cached")
            uncached = runtime.keys.create(ACTOR, name="uncached")
            assert httpx.get(f"{url}/authgate/v1/ready").status_code == 200
            ok = httpx.get(f"{url}{WHOAMI}", headers={"X-API-Key": cached.token})
            assert ok.status_code == 200

            name = postgres_url.rsplit("/", 1)[1]
            admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()

            assert httpx.get(f"{url}/authgate/v1/health").status_code == 200
            ready = httpx.get(f"{url}/authgate/v1/ready")
            assert ready.status_code == 503
            body = ready.json()
            assert {"detail", "code"} <= set(body)
            assert body["code"] == "not_ready"
            assert name in body["detail"]
            assert [f["dependency"] for f in body["failing"]] == ["store"]
            # A key never seen needs the store: 503, never 401.
            response = httpx.get(f"{url}{WHOAMI}", headers={"X-API-Key": uncached.token})
            assert_error_shape(response, 503, "not_ready")
            unknown = httpx.get(f"{url}{WHOAMI}", headers={"X-API-Key": generate_token().token})
            assert_error_shape(unknown, 503, "not_ready")
            # The hot path does not read the store: a key already verified still works.
            again = httpx.get(f"{url}{WHOAMI}", headers={"X-API-Key": cached.token})
            assert again.status_code == 200
    finally:
        runtime.close()
