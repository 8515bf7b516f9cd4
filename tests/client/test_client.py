"""``authgate.client`` against a live server: every endpoint group, typed errors, the token
kept out of reprs, errors and logs, a deadline on every call."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from authgate import (
    AuthgateError,
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidLogin,
    InvalidRequest,
    MissingCredentials,
    NotFound,
)
from authgate.client import (
    AsyncAuthgateClient,
    AuthgateClient,
    ClientError,
    Unreachable,
    api_base,
)
from authgate.client._calls import Call
from authgate.errors import ConfigurationError, NotReady
from authgate.runtime import Runtime
from tests.api.service import PASSWORD, Service, serve
from tests.support import free_port, live_server


@pytest.fixture
def admin(service: Service) -> Iterator[AuthgateClient]:
    with AuthgateClient(service.base_url, service.admin_key) as client:
        yield client


def test_login_then_calls_with_the_token(service: Service) -> None:
    service.user("alice@example.com")
    with AuthgateClient(service.base_url) as client:
        assert client.health() == {"status": "ok"}
        assert client.ready() == {"status": "ready"}
        assert client.info()["name"] == "authgate"
        created = client.login("alice@example.com", PASSWORD, name="laptop", expires_in_days=7)
        assert created["token"].startswith("ag_") and created["name"] == "laptop"
        assert client.token == created["token"]
        me = client.whoami()
        assert me["id"] == created["id"] and me["role"] == "member"
        mine = client.list_tokens()
        assert [token["id"] for token in mine] == [created["id"]]
        assert "token" not in mine[0]
        revoked = client.revoke_current_token()
        assert revoked["revoked"] is True
        with pytest.raises(InvalidCredentials) as refused:
            client.whoami()
    assert refused.value.status == 401 and refused.value.code == "invalid_token"


def test_a_wrong_password_is_a_401_with_the_servers_detail(service: Service) -> None:
    service.user("alice@example.com")
    with AuthgateClient(service.base_url) as client, pytest.raises(InvalidCredentials) as bad:
        client.login("alice@example.com", "not the password", name="laptop")
    assert bad.value.status == 401 and bad.value.code == "invalid_login"
    assert isinstance(bad.value, InvalidLogin)
    assert bad.value.detail and "not the password" not in str(bad.value)
    assert client.token is None


def test_tokens_create_get_rotate_revoke(admin: AuthgateClient, service: Service) -> None:
    created = admin.create_token("ci", scopes=["read"], expires_in_days=3)
    assert created["scopes"] == ["read"] and created["token"].startswith("ag_")
    assert admin.get_token(created["id"])["name"] == "ci"
    successor = admin.rotate_token(created["id"], grace=timedelta(hours=1))
    assert successor["token"] != created["token"]
    assert admin.get_token(created["id"])["rotated_to"] == successor["id"]
    assert admin.revoke_token(successor["id"])["revoked"] is True
    everyone = {token["id"] for token in admin.list_tokens(everyone=True)}
    assert {created["id"], successor["id"]} <= everyone
    with pytest.raises(Conflict) as twice:
        admin.revoke_token(successor["id"])
    assert twice.value.status == 409
    with pytest.raises(NotFound) as missing:
        admin.get_token("key_doesnotexist")
    assert (missing.value.status, missing.value.code) == (404, "not_found")


def test_iter_tokens_reads_every_page_newest_first(
    admin: AuthgateClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("authgate.client._client.TOKEN_PAGE", 2)  # several pages of 5
    made = [admin.create_token(f"paged-{index}")["id"] for index in range(5)]
    listed = [token["id"] for token in admin.iter_tokens(everyone=True)]
    assert listed == [token["id"] for token in reversed(admin.list_tokens(everyone=True))]
    assert listed[:5] == list(reversed(made))
    assert [t["name"] for t in admin.iter_tokens(everyone=True, search="paged-3")] == ["paged-3"]

    async def paged() -> list[str]:
        async with AsyncAuthgateClient(service.base_url, service.admin_key) as client:
            return [token["id"] async for token in client.iter_tokens(everyone=True)]

    assert asyncio.run(paged()) == listed


def test_a_member_asking_for_everyones_tokens_is_forbidden(service: Service) -> None:
    service.user("bob@example.com")
    with AuthgateClient(service.base_url, service.login("bob@example.com")["token"]) as bob:
        assert len(bob.list_tokens()) == 1
        with pytest.raises(Forbidden) as refused:
            bob.list_tokens(everyone=True)
    assert (refused.value.status, refused.value.code) == (403, "forbidden")


def test_users(admin: AuthgateClient) -> None:
    user = admin.create_user("carol@example.com", PASSWORD, role="member")
    assert user["email"] == "carol@example.com" and user["active"] is True
    assert admin.get_user("carol@example.com")["id"] == user["id"]
    assert admin.update_user(user["id"], role="admin")["role"] == "admin"
    assert admin.update_user("carol@example.com", active=False)["active"] is False
    assert admin.reset_password(user["id"], "another long passphrase")["id"] == user["id"]
    assert "carol@example.com" in [u["email"] for u in admin.list_users()]
    with pytest.raises(Conflict):
        admin.create_user("carol@example.com", PASSWORD)


def test_validation_errors_name_the_field(admin: AuthgateClient) -> None:
    with pytest.raises(InvalidRequest) as short:
        admin.create_user("dave@example.com", "short")
    assert short.value.status == 422 and "password" in short.value.detail


def test_access_keys_and_grants(admin: AuthgateClient) -> None:
    created = admin.create_access_key("backup", grants={"logs": "read"})
    assert created["access_key_id"].startswith("AKAG") and created["secret_access_key"]
    ident = created["access_key_id"]
    assert admin.set_grant(ident, "media", "write")["grants"] == {"logs": "read", "media": "write"}
    assert admin.delete_grant(ident, "logs")["grants"] == {"media": "write"}
    listed = admin.list_access_keys()
    assert [key["access_key_id"] for key in listed] == [ident]
    assert "secret_access_key" not in listed[0]
    assert admin.get_access_key(ident)["name"] == "backup"
    assert admin.revoke_access_key(ident)["revoked"] is True


def test_audit_pages_and_iteration(admin: AuthgateClient) -> None:
    for n in range(3):
        admin.create_token(f"svc-{n}")
    page = admin.audit(action="key.create", limit=2)
    assert len(page["events"]) == 2 and page["next_offset"] == 2
    events = list(admin.iter_audit(action="key.create"))
    assert [event["action"] for event in events] == ["key.create"] * 3
    assert len(list(admin.iter_audit(action="key.create", limit=2))) == 2


def test_console_sessions_sync_and_async(admin: AuthgateClient, service: Service) -> None:
    user = service.user("sam@example.com")
    first = service.runtime.sessions.start(user=user, source=None, user_agent=None).record
    second = service.runtime.sessions.start(user=user, source=None, user_agent=None).record
    listed = admin.list_sessions(user="sam@example.com")
    assert {session["id"] for session in listed} == {first.id, second.id}
    assert admin.end_session(first.id)["revoked_at"] is not None
    with pytest.raises(NotFound):
        admin.end_session("ses_0000000000000000")

    async def scenario() -> None:
        async with AsyncAuthgateClient(service.base_url, service.admin_key) as client:
            assert [s["id"] for s in await client.list_sessions()] == [second.id]
            assert (await client.end_session(second.id))["id"] == second.id
            with pytest.raises(Conflict):
                await client.end_session(second.id)

    asyncio.run(scenario())


def test_no_credentials_is_missing_credentials(service: Service) -> None:
    with AuthgateClient(service.base_url) as client, pytest.raises(MissingCredentials) as none:
        client.whoami()
    assert none.value.status == 401
    assert none.value.headers["www-authenticate"].startswith("Bearer")


def test_an_answer_no_class_names_is_a_client_error() -> None:
    app = FastAPI()

    @app.get("/teapot")
    def teapot() -> JSONResponse:
        return JSONResponse({"detail": "I am a teapot.", "code": "teapot"}, status_code=418)

    @app.get("/plain")
    def plain() -> JSONResponse:
        return JSONResponse(["not", "the", "shape"], status_code=500)

    with live_server(app) as url, AuthgateClient(url) as client:
        with pytest.raises(ClientError) as teapot_error:
            client.request("GET", "/teapot")
        with pytest.raises(ClientError) as plain_error:
            client.request("GET", "/plain")
    error = teapot_error.value
    assert (error.status, error.code, error.detail) == (418, "teapot", "I am a teapot.")
    assert isinstance(error, AuthgateError)
    assert plain_error.value.status == 500
    assert plain_error.value.detail == "the server answered 500 Internal Server Error"


def test_a_closed_port_is_unreachable() -> None:
    with AuthgateClient(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(Unreachable) as down:
            client.health()
    assert isinstance(down.value, NotReady) and "cannot reach" in down.value.detail


def test_a_server_that_never_answers_meets_the_deadline() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with AuthgateClient(f"http://127.0.0.1:{port}", timeout=0.5) as client:
            with pytest.raises(Unreachable) as late:
                client.health()
    assert "did not answer in time" in late.value.detail


def test_no_deadline_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="deadline"):
        AuthgateClient("http://127.0.0.1:1", timeout=None)  # type: ignore[arg-type]


def test_a_missing_ca_bundle_is_said_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such file"):
        AuthgateClient("https://127.0.0.1:1", verify=tmp_path / "nope.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="not a PEM"):
        AuthgateClient("https://127.0.0.1:1", verify=junk)


def test_the_token_is_never_shown(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    service.user("alice@example.com")
    with AuthgateClient(service.base_url) as client:
        created = client.login("alice@example.com", PASSWORD, name="laptop")
        client.whoami()
        with pytest.raises(NotFound) as missing:
            client.get_token("key_doesnotexist")
        shown = [repr(client), repr(client._auth), str(missing.value), repr(missing.value)]
        shown.append(repr(Call.login("alice@example.com", PASSWORD, "laptop", None, None)))
    assert caplog.records  # httpx logged its requests
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in [*shown, logged]:
        assert created["token"] not in text and PASSWORD not in text


def test_the_async_client(service: Service) -> None:
    service.user("alice@example.com")

    async def scenario() -> None:
        async with AsyncAuthgateClient(service.base_url) as client:
            created = await client.login("alice@example.com", PASSWORD, name="laptop")
            assert (await client.whoami())["id"] == created["id"]
            assert [t["id"] for t in await client.list_tokens()] == [created["id"]]
            with pytest.raises(Forbidden):
                await client.list_users()
            with pytest.raises(Forbidden):
                await client.list_tokens(everyone=True)
        async with AsyncAuthgateClient(service.base_url, service.admin_key) as admin:
            key = await admin.create_access_key("async", grants={"bucket-b": "read"})
            assert (await admin.set_grant(key["id"], "bucket-c", "admin"))["grants"][
                "bucket-c"
            ] == "admin"
            user = await admin.get_user("alice@example.com")
            assert user["role"] == "member"
            events = [event async for event in admin.iter_audit(action="login", limit=5)]
            assert events and events[0]["action"] == "login"

    asyncio.run(scenario())


def test_api_base() -> None:
    assert api_base("http://h:8080") == "http://h:8080/authgate/v1"
    assert api_base("http://h:8080/authgate/") == "http://h:8080/authgate/v1"
    assert api_base("http://h/other/v1") == "http://h/other/v1"


def test_a_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not an http"):
        AuthgateClient("gate.example.internal:8080")


def test_importing_authgate_does_not_load_httpx_but_exports_the_client() -> None:
    code = (
        "import sys, authgate\n"
        "assert 'httpx' not in sys.modules, 'httpx loaded'\n"
        "import authgate.client\n"
        "assert authgate.AuthgateClient is authgate.client.AuthgateClient\n"
        "assert authgate.AsyncAuthgateClient is authgate.client.AsyncAuthgateClient\n"
        "assert authgate.ClientError is authgate.client.ClientError\n"
        "assert {'AuthgateClient', 'AsyncAuthgateClient', 'ClientError'} <= set(authgate.__all__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_without_httpx_the_client_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "import authgate\n"
        "try:\n"
        "    import authgate.client\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "authgate.client needs httpx" in done.stdout and "pip install httpx" in done.stdout


def test_a_server_that_is_not_ready_raises_not_ready(make_settings: Any) -> None:
    # No disk has this much room: the disk probe fails, as on a full disk.
    runtime = Runtime(make_settings(ready_min_free_bytes=2**62))
    runtime.start()
    try:
        with serve(runtime) as live, AuthgateClient(live.base_url) as client:
            assert client.health() == {"status": "ok"}
            with pytest.raises(NotReady) as not_ready:
                client.ready()
    finally:
        runtime.close()
    assert not_ready.value.status == 503 and not_ready.value.code == "not_ready"
    assert "disk" in not_ready.value.detail
