"""AuthgateMiddleware over HTTP, against a real uvicorn server."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.errors import ConfigurationError
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from tests.middleware.apps import RULES, Echo
from tests.middleware.conftest import admin_key, new_key
from tests.support import live_server

STATIC = "s" * 40


@pytest.fixture
def served(runtime_for: Callable[..., Runtime]) -> Iterator[tuple[str, Runtime, Echo]]:
    rt = runtime_for(tokens=STATIC)
    echo = Echo()
    with live_server(AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)) as url:
        yield url, rt, echo


def raw_get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET with the path sent byte for byte (httpx would normalise the tricks away)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_every_rule_outcome(served: tuple[str, Runtime, Echo]) -> None:
    url, rt, echo = served
    writer = new_key(rt, "writer", "items:write")
    reader = new_key(rt, "reader", "items:read")
    admin = admin_key(rt)
    with httpx.Client(base_url=url) as client:

        def status(method: str, path: str, token: str | None = None) -> int:
            headers = {"X-API-Key": token} if token else {}
            return client.request(method, path, headers=headers).status_code

        # public: anyone, with or without (even a bad) credential
        assert status("GET", "/public/x") == 200
        assert status("GET", "/public/x", "ag_not_a_real_key") == 200
        assert status("HEAD", "/public/x") == 200
        # GET only: other methods fall to the default deny
        assert status("POST", "/public/x") == 401
        assert status("POST", "/public/x", writer) == 403
        # authenticated: any valid credential
        assert status("GET", "/private/x") == 401
        assert status("GET", "/private/x", reader) == 200
        # scopes
        assert status("POST", "/items") == 401
        assert status("POST", "/items", reader) == 403
        assert status("POST", "/items", writer) == 200
        assert status("POST", "/items", STATIC) == 200  # "*": every application scope
        # role
        assert status("GET", "/admin/x", writer) == 403
        assert status("GET", "/admin/x", STATIC) == 403  # "*" is not a role
        assert status("GET", "/admin/x", admin) == 200
        # default deny: no rule matches
        assert status("GET", "/nowhere") == 401
        assert status("GET", "/nowhere", writer) == 403
        assert status("GET", "/nowhere", admin) == 200
    assert "/nowhere" in echo.reached


def test_the_app_gets_the_principal_and_errors_have_the_json_shape(
    served: tuple[str, Runtime, Echo],
) -> None:
    url, rt, _ = served
    writer = new_key(rt, "writer", "items:write")
    key_id = rt.keys.list()[0].id
    with httpx.Client(base_url=url) as client:
        body = client.get("/public/x").json()
        assert body["principal"] is None
        body = client.get("/public/x", headers={"Authorization": f"Bearer {writer}"}).json()
        assert body == {"path": "/public/x", "raw_path": "/public/x", "principal": key_id,
                        "kind": "api_key"}  # fmt: skip

        missing = client.get("/private/x")
        assert missing.status_code == 401
        assert missing.json()["code"] == "missing_credentials"
        assert missing.headers["www-authenticate"] == 'Bearer realm="authgate"'
        invalid = client.get("/private/x", headers={"X-API-Key": "ag_x" + "A" * 45})
        assert invalid.status_code == 401
        assert invalid.json() == {
            "detail": "Invalid, expired or revoked credentials.",
            "code": "invalid_token",
        }
        assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
        forbidden = client.post("/items", headers={"X-API-Key": new_key(rt, "r", "x")})
        assert forbidden.json() == {
            "detail": "This needs the scope(s): items:write.",
            "code": "forbidden",
        }
        # Two different credentials, or one header twice: refused, never guessed at.
        both = client.get(
            "/private/x", headers={"X-API-Key": writer, "Authorization": f"Bearer {STATIC}"}
        )
        assert both.status_code == 401
        twice = client.get("/private/x", headers=[("X-API-Key", writer), ("X-API-Key", writer)])
        assert twice.status_code == 401
        # An AuthgateError raised inside the app is rendered once, the same way.
        raised = client.get("/raises", headers={"X-API-Key": STATIC})
        assert raised.status_code == 403 and raised.json()["detail"] == "raised by the app"


@pytest.mark.parametrize(
    ("path", "status", "seen"),
    [
        ("//admin/x", 401, None),
        ("/public/../admin/x", 401, None),
        ("/public/%2e%2e/admin/x", 401, None),
        ("/public/x/%2E%2E/%2e%2e/admin/x", 401, None),
        ("/public/./x", 200, "/public/x"),
        ("/public//x/", 200, "/public/x/"),
        ("/PUBLIC/x", 200, "/PUBLIC/x"),
        ("/ADMIN/x", 401, None),
        ("/admin/", 401, None),
        ("/%61dmin/x", 401, None),
        ("/public/..%2fadmin/x", 400, None),
        ("/public/x%2F..%2F..%2Fadmin", 400, None),
        ("/public/x%5c..%5cadmin", 400, None),
        ("/public/x/..;/..;/admin/x", 400, None),
        ("/public/x%00", 400, None),
        ("/..", 400, None),
    ],
)
def test_path_tricks_cannot_move_a_request_to_another_rule(
    served: tuple[str, Runtime, Echo], path: str, status: int, seen: str | None
) -> None:
    url, _, echo = served
    code, body = raw_get(url, path)
    assert code == status, body
    if seen is not None:
        # The app routes on the same canonical path the rules were matched on.
        assert body["path"] == seen
    else:
        assert echo.reached == []
    if status == 400:
        assert body["code"] == "invalid_path"


def test_the_rewritten_raw_path_keeps_the_clients_escapes(
    served: tuple[str, Runtime, Echo],
) -> None:
    url, _, _ = served
    code, body = raw_get(url, "/public/a/../caf%C3%A9")
    assert code == 200
    assert body["path"] == "/public/café"
    assert body["raw_path"] == "/public/caf%C3%A9"


def test_revoked_keys_are_refused(runtime: Runtime) -> None:
    """On SQLite and PostgreSQL: a revoked key stops working at once."""
    echo = Echo()
    created = runtime.keys.create(Actor("tests"), name="soon-revoked", scopes=["items:write"])
    with live_server(AuthgateMiddleware(echo.app, rules=RULES, runtime=runtime)) as url:
        headers = {"X-API-Key": created.token}
        assert httpx.post(url + "/items", headers=headers).status_code == 200
        runtime.keys.revoke(Actor("tests"), created.record.id)
        refused = httpx.post(url + "/items", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_token"


def test_a_route_remembers_only_who_it_let_through(served: tuple[str, Runtime, Echo]) -> None:
    """Once a route let a key through, the same key passes it again from memory: another
    key on that route is still judged, the same key on another route too, and a key
    revoked after it passed is refused there."""
    url, rt, echo = served
    writer = rt.keys.create(Actor("tests"), name="writer", scopes=["items:write"])
    reader = new_key(rt, "reader", "items:read")
    with httpx.Client(base_url=url) as client:

        def post(token: str) -> int:
            return client.post("/items", headers={"X-API-Key": token}).status_code

        for _ in range(3):  # alternating, so each key follows the other on the hot path
            assert post(writer.token) == 200
            assert post(reader) == 403
        assert client.get("/admin/x", headers={"X-API-Key": writer.token}).status_code == 403
        rt.keys.revoke(Actor("tests"), writer.record.id)
        assert post(writer.token) == 401
    assert echo.reached.count("/items") == 3


def test_a_token_with_stray_spaces_gets_the_same_answer_on_a_warm_route(
    served: tuple[str, Runtime, Echo],
) -> None:
    """The hot path hashes the token as sent; spaces around it make it miss memory, and
    the general path, which trims them, still answers: the same key, the same verdict."""
    url, rt, _ = served
    key = rt.keys.create(Actor("tests"), name="spaced", scopes=["items:read"])
    assert raw_get(url, "/private/x", {"X-API-Key": key.token})[0] == 200  # the route is warm
    for headers in (
        {"X-API-Key": f"  {key.token}\t "},
        {"Authorization": f"Bearer   {key.token}  "},
    ):
        status, body = raw_get(url, "/private/x", headers)
        assert (status, body["principal"]) == (200, key.record.id)
    assert raw_get(url, "/private/x", {"X-API-Key": f" {key.token}x "})[0] == 401


def test_a_runtime_that_is_not_started_fails_closed(settings_for: Callable[..., Any]) -> None:
    rt = Runtime(settings_for())
    echo = Echo()
    try:
        with live_server(AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)) as url:
            for path in ("/public/x", "/private/x", "/nowhere"):
                response = httpx.get(url + path, headers={"X-API-Key": "ag_whatever"})
                assert response.status_code == 503
                assert response.json()["code"] == "not_ready"
        assert echo.reached == []
    finally:
        rt.store.close()


def test_disabled_authentication_lets_everything_through(
    runtime_for: Callable[..., Runtime],
) -> None:
    echo = Echo()
    rt = runtime_for(auth_enabled=False)
    with live_server(AuthgateMiddleware(echo.app, rules=RULES, runtime=rt)) as url:
        body = httpx.get(url + "/admin/x").json()
        assert body["principal"] is None


def test_settings_and_runtime_together_are_refused(
    runtime_for: Callable[..., Runtime], settings_for: Callable[..., Any]
) -> None:
    with pytest.raises(ConfigurationError):
        AuthgateMiddleware(Echo().app, runtime=runtime_for(), settings=settings_for())


def test_a_disabled_users_key_is_refused_like_any_other_and_audited(
    served: tuple[str, Runtime, Echo],
) -> None:
    url, rt, echo = served
    actor = Actor("tests")
    user = rt.users.create(
        actor, email="ada@example.com", password="a long passphrase", role="member"
    )
    token = rt.keys.create(actor, name="ada", scopes=["items:read"], owner_id=user.id).token
    with httpx.Client(base_url=url) as client:
        assert client.get("/private/x", headers={"X-API-Key": token}).status_code == 200
        rt.users.disable(actor, user.id)
        refused = client.get("/private/x", headers={"X-API-Key": token})
        unknown = client.get(
            "/private/x", headers={"X-API-Key": new_key(rt, "gone", "items:read")[:-1]}
        )
    assert refused.status_code == 401
    assert refused.json() == unknown.json()
    assert refused.headers["www-authenticate"] == unknown.headers["www-authenticate"]
    [event] = rt.store.list_audit(action="key.use")
    assert (event.actor, event.target, event.outcome, event.source) == (
        user.id,
        rt.keys.list(user.id)[0].id,
        "denied",
        "127.0.0.1",
    )
    assert event.detail["reason"] == "owner_disabled"
