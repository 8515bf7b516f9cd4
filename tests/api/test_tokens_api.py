"""The token lifecycle over HTTP: log in, service tokens, list, show, rotate, revoke."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx

from authgate.credentials.authenticator import ADMIN_PRINCIPAL
from authgate.credentials.tokens import generate_token
from authgate.manage.keys import Actor, new_id
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.server import create_app
from tests.api.service import PASSWORD, Service
from tests.support import live_server


def _whoami(service: Service, headers: dict[str, str]) -> httpx.Response:
    return service.client.get("/whoami", headers=headers)


# -- logging in ---------------------------------------------------------------------------
def test_login_returns_the_token_once_with_its_metadata(service: Service) -> None:
    user = service.user("alice@example.com")
    body = service.login("Alice@Example.COM", name="laptop")

    assert body["token"].startswith("ag_")
    assert body["owner_id"] == user.id
    assert body["name"] == "laptop"
    assert body["scopes"] == ["read"]  # the configured default when none are named
    assert body["active"] is True and body["revoked"] is False
    assert "digest" not in body
    lifetime = service.runtime.clock() - timedelta(days=30)
    assert body["expires_at"] > lifetime.isoformat()

    me = _whoami(service, {"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["id"]

    listed = service.client.get("/tokens", headers={"X-API-Key": body["token"]}).json()
    assert [entry["id"] for entry in listed] == [body["id"]]
    assert "token" not in listed[0] and "digest" not in listed[0]
    assert body["token"] not in httpx.get(f"{service.base_url}/authgate/openapi.json").text


def test_login_with_scopes_the_role_allows(service: Service) -> None:
    service.user("alice@example.com")
    body = service.login("alice@example.com", scopes=["read", "write"], expires_in_days=1)
    assert body["scopes"] == ["read", "write"]


def test_wrong_password_unknown_email_and_disabled_user_get_one_answer(service: Service) -> None:
    alice = service.user("alice@example.com")
    service.user("bob@example.com")
    service.runtime.users.set_active(_actor(), "bob@example.com", False)

    answers = [
        service.client.post("/tokens", json=_login("alice@example.com", "wrong password")),
        service.client.post("/tokens", json=_login("nobody@example.com", PASSWORD)),
        service.client.post("/tokens", json=_login("bob@example.com", PASSWORD)),
    ]
    assert {response.status_code for response in answers} == {401}
    assert {response.json()["detail"] for response in answers} == {"Invalid email or password."}
    # No token was sent, so the refusal is a login's, and the challenge names no token error.
    assert {response.json()["code"] for response in answers} == {"invalid_login"}
    assert {response.headers["www-authenticate"] for response in answers} == {
        'Bearer realm="authgate"'
    }
    failures = service.audit(action="login")
    assert {(event["detail"]["reason"], event["outcome"]) for event in failures} == {
        ("bad_password", "failure"),
        ("unknown_email", "failure"),
        ("disabled", "failure"),
    }
    assert {event["actor"] for event in failures} >= {alice.id, "anonymous"}
    assert service.counts()["api_keys"] == 0


def test_expiry_is_bounded_by_configuration(service: Service) -> None:
    service.user("alice@example.com")
    for days in (0, 31, -1):
        response = service.client.post(
            "/tokens", json=_login("alice@example.com", PASSWORD, expires_in_days=days)
        )
        assert response.status_code == 422
        assert response.json()["detail"] == "expires_in_days must be between 1 and 30."
    assert service.login("alice@example.com", name="a", expires_in_days=30)["expired"] is False


def test_configured_bounds_and_defaults_apply(make_service: Any) -> None:
    service = make_service(
        login_rate_limit="100/minute",
        token_days_min=2,
        token_days_max=5,
        token_days_default=3,
        default_scopes="read,write",
    )
    service.user("alice@example.com")
    refused = service.client.post(
        "/tokens", json=_login("alice@example.com", PASSWORD, expires_in_days=1)
    )
    assert refused.json()["detail"] == "expires_in_days must be between 2 and 5."
    body = service.login("alice@example.com")
    assert body["scopes"] == ["read", "write"]
    created = service.runtime.store.get_key(body["id"])
    assert created is not None and created.expires_at is not None
    assert created.expires_at - created.created_at == timedelta(days=3)


def test_a_scope_the_role_may_not_have_is_refused_by_name_and_audited(service: Service) -> None:
    alice = service.user("alice@example.com")
    response = service.client.post(
        "/tokens",
        json=_login("alice@example.com", PASSWORD, scopes=["read", "tokens:manage"]),
    )
    assert response.status_code == 403
    assert "tokens:manage" in response.json()["detail"]
    assert response.json()["code"] == "scope_not_allowed"
    assert service.counts()["api_keys"] == 0
    [denied] = service.audit(action="key.create")
    assert denied["outcome"] == "denied"
    assert denied["actor"] == alice.id
    assert denied["detail"]["refused"] == ["tokens:manage"]


def test_unknown_scopes_are_a_422_naming_them(service: Service) -> None:
    service.user("alice@example.com")
    response = service.client.post(
        "/tokens", json=_login("alice@example.com", PASSWORD, scopes=["read", "launch:missiles"])
    )
    assert response.status_code == 422
    assert "launch:missiles" in response.json()["detail"]


def test_names_are_unique_per_owner(service: Service) -> None:
    service.user("alice@example.com")
    service.user("bob@example.com")
    first = service.login("alice@example.com", name="laptop")
    duplicate = service.client.post("/tokens", json=_login("alice@example.com", PASSWORD))
    assert duplicate.status_code == 409
    assert "laptop" in duplicate.json()["detail"]
    assert service.login("bob@example.com", name="laptop")["name"] == "laptop"

    service.client.delete(f"/tokens/{first['id']}", headers={"X-API-Key": first["token"]})
    assert service.login("alice@example.com", name="laptop")["name"] == "laptop"


def test_email_and_password_go_together_and_never_with_a_credential(service: Service) -> None:
    service.user("alice@example.com")
    for body in (
        {"name": "x", "email": "alice@example.com"},
        {"name": "x", "password": PASSWORD},
    ):
        response = service.client.post("/tokens", json=body)
        assert response.status_code == 422
        assert "email and password go together" in response.json()["detail"]
    both = service.client.post(
        "/tokens", json=_login("alice@example.com", PASSWORD), headers=service.admin
    )
    assert both.status_code == 422
    assert "not both" in both.json()["detail"]
    assert service.counts()["api_keys"] == 0


# -- service tokens -----------------------------------------------------------------------
def test_admin_creates_service_tokens(service: Service) -> None:
    response = service.client.post(
        "/tokens",
        json={"name": "ci-deploy", "scopes": ["write", "tokens:manage"], "expires_in_days": 7},
        headers=service.admin,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["owner_id"] is None and body["created_by"] == "admin"
    assert body["scopes"] == ["write", "tokens:manage"]
    assert _whoami(service, {"X-API-Key": body["token"]}).status_code == 200


def test_a_service_token_cannot_grant_more_than_it_holds(service: Service) -> None:
    manager = service.client.post(
        "/tokens", json={"name": "manager", "scopes": ["tokens:manage"]}, headers=service.admin
    ).json()
    headers = {"X-API-Key": manager["token"]}
    ok = service.client.post("/tokens", json={"name": "child", "scopes": []}, headers=headers)
    assert ok.status_code == 201
    refused = service.client.post(
        "/tokens", json={"name": "escalate", "scopes": ["users:manage"]}, headers=headers
    )
    assert refused.status_code == 403
    assert "users:manage" in refused.json()["detail"]


def test_without_password_or_credential_it_is_401(service: Service) -> None:
    response = service.client.post("/tokens", json={"name": "x"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="authgate"')
    assert response.json()["code"] == "missing_credentials"


def test_a_member_cannot_create_service_tokens(service: Service) -> None:
    alice = service.user("alice@example.com")
    headers = service.token_of("alice@example.com", scopes=["read", "write"])
    response = service.client.post("/tokens", json={"name": "svc"}, headers=headers)
    assert response.status_code == 403
    assert "tokens:manage" in response.json()["detail"]
    denied = [e for e in service.audit(action="key.create") if e["outcome"] == "denied"]
    assert [event["actor"] for event in denied] == [alice.id]


# -- listing and showing ------------------------------------------------------------------
def test_listing_shows_the_callers_tokens_flagged(service: Service) -> None:
    alice = service.user("alice@example.com")
    service.user("bob@example.com")
    kept = service.login("alice@example.com", name="kept")
    revoked = service.login("alice@example.com", name="gone")
    service.login("bob@example.com", name="bobs")
    service.client.delete(f"/tokens/{revoked['id']}", headers={"X-API-Key": revoked["token"]})
    expired = _insert_expired_key(service, alice.id)

    listed = service.client.get("/tokens", headers={"X-API-Key": kept["token"]}).json()
    flags = {
        entry["name"]: (entry["revoked"], entry["expired"], entry["active"]) for entry in listed
    }
    assert flags == {
        "kept": (False, False, True),
        "gone": (True, False, False),
        expired: (False, True, False),
    }


def test_all_tokens_only_for_token_managers(service: Service) -> None:
    service.user("alice@example.com")
    service.user("bob@example.com")
    alice = service.token_of("alice@example.com")
    service.login("bob@example.com")

    refused = service.client.get("/tokens", params={"all": "true"}, headers=alice)
    assert refused.status_code == 403
    assert [e["outcome"] for e in service.audit(action="key.list")] == ["denied"]

    everything = service.client.get("/tokens", params={"all": "true"}, headers=service.admin)
    assert everything.status_code == 200
    assert len(everything.json()) == 2

    manager = service.client.post(
        "/tokens", json={"name": "m", "scopes": ["tokens:manage"]}, headers=service.admin
    ).json()
    by_scope = service.client.get(
        "/tokens", params={"all": "true"}, headers={"X-API-Key": manager["token"]}
    )
    # Without a role it could act on no member's token, so it lists only its own.
    assert [token["id"] for token in by_scope.json()] == [manager["id"]]


def _service_tokens(service: Service, names: list[str]) -> list[str]:
    ids = []
    for name in names:
        made = service.client.post("/tokens", json={"name": name}, headers=service.admin)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids


def test_pages_of_tokens_follow_the_link_to_the_end(service: Service) -> None:
    ids = _service_tokens(service, [f"svc-{index}" for index in range(7)])
    seen: list[str] = []
    url: str | None = "/authgate/v1/tokens?all=true&limit=3"
    while url is not None:
        page = httpx.get(f"{service.base_url}{url}", headers=service.admin)
        assert page.status_code == 200, page.text
        assert page.headers["X-Total-Count"] == "7"
        seen += [token["id"] for token in page.json()]
        url = page.links["next"]["url"] if "next" in page.links else None
    assert seen == list(reversed(ids))  # newest first, each once
    whole = service.client.get("/tokens", params={"all": "true"}, headers=service.admin).json()
    assert [token["id"] for token in whole] == ids  # the unpaged list keeps oldest first
    assert "X-Total-Count" not in service.client.get("/tokens", headers=service.admin).headers


def test_a_page_is_searched_and_keeps_to_what_the_caller_may_see(service: Service) -> None:
    _service_tokens(service, ["backup-nightly", "backup-weekly", "deploy"])
    service.user("alice@example.com")
    alice = service.token_of("alice@example.com")
    found = service.client.get(
        "/tokens", params={"all": "true", "limit": 10, "search": "BACKUP"}, headers=service.admin
    )
    assert [token["name"] for token in found.json()] == ["backup-weekly", "backup-nightly"]
    assert found.headers["X-Total-Count"] == "2"
    assert "Link" not in found.headers
    own = service.client.get("/tokens", params={"limit": 10, "search": "backup"}, headers=alice)
    assert own.status_code == 200 and own.json() == []
    assert own.headers["X-Total-Count"] == "0"
    refused = service.client.get("/tokens", params={"all": "true", "limit": 10}, headers=alice)
    assert refused.status_code == 403


def test_paging_parameters_out_of_range_are_refused(service: Service) -> None:
    refused: list[dict[str, str | int]] = [
        {"limit": 0},
        {"limit": 1001},
        {"limit": 5, "offset": -1},
        {"limit": 5, "offset": 2**53 + 1},
        {"limit": "many"},
        {"offset": 5},
        {"search": "x"},
        {"limit": 5, "search": ""},
    ]
    for params in refused:
        answer = service.client.get("/tokens", params=params, headers=service.admin)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["code"] in {"invalid_request", "validation_error"}, answer.json()


def test_someone_elses_token_answers_like_a_missing_one(service: Service) -> None:
    service.user("alice@example.com")
    service.user("bob@example.com")
    alice = service.login("alice@example.com")
    bob = service.token_of("bob@example.com")

    own = service.client.get(f"/tokens/{alice['id']}", headers={"X-API-Key": alice["token"]})
    assert own.status_code == 200 and own.json()["id"] == alice["id"]
    assert service.client.get(f"/tokens/{alice['id']}", headers=service.admin).status_code == 200

    others = service.client.get(f"/tokens/{alice['id']}", headers=bob)
    missing = service.client.get("/tokens/key_DoesNotExist0000", headers=bob)
    assert others.status_code == missing.status_code == 404
    assert others.json()["code"] == missing.json()["code"] == "not_found"
    assert others.json()["detail"].replace(alice["id"], "X") == missing.json()["detail"].replace(
        "key_DoesNotExist0000", "X"
    )


# -- rotation -----------------------------------------------------------------------------
def test_rotation_keeps_the_old_token_for_the_grace_period(service: Service) -> None:
    service.user("alice@example.com")
    old = service.login("alice@example.com", scopes=["read", "write"])
    old_headers = {"X-API-Key": old["token"]}

    response = service.client.post(
        f"/tokens/{old['id']}/rotate", json={"grace_seconds": 3600}, headers=old_headers
    )
    assert response.status_code == 201
    new = response.json()
    assert new["token"] != old["token"] and new["name"] == old["name"]
    assert new["scopes"] == ["read", "write"]
    assert _whoami(service, old_headers).status_code == 200
    assert _whoami(service, {"X-API-Key": new["token"]}).status_code == 200

    again = service.client.post(
        f"/tokens/{new['id']}/rotate", json={"grace_seconds": 0}, headers=service.admin
    )
    assert again.status_code == 201
    assert _whoami(service, {"X-API-Key": new["token"]}).status_code == 401


def test_rotation_body_is_optional_and_strict(service: Service) -> None:
    service.user("alice@example.com")
    old = service.login("alice@example.com")
    headers = {"X-API-Key": old["token"]}
    bad = service.client.post(f"/tokens/{old['id']}/rotate", json={"grace": "1h"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", "grace"]
    assert "grace: " in bad.json()["detail"]
    too_long = service.client.post(
        f"/tokens/{old['id']}/rotate", json={"grace_seconds": 10**9}, headers=headers
    )
    assert too_long.status_code == 422
    assert service.client.post(f"/tokens/{old['id']}/rotate", headers=headers).status_code == 201


def test_a_member_rotating_someone_elses_token_is_refused_and_audited(service: Service) -> None:
    service.user("alice@example.com")
    bob = service.user("bob@example.com")
    alice = service.login("alice@example.com")
    response = service.client.post(
        f"/tokens/{alice['id']}/rotate", json={}, headers=service.token_of("bob@example.com")
    )
    assert response.status_code == 404
    assert service.runtime.store.get_key(alice["id"]).rotated_to is None  # type: ignore[union-attr]
    [denied] = service.audit(action="key.rotate")
    assert (denied["actor"], denied["target"], denied["outcome"]) == (bob.id, alice["id"], "denied")


def test_rotation_cannot_keep_scopes_a_demoted_owner_lost(service: Service) -> None:
    service.user("alice@example.com", role="admin")
    token = service.login("alice@example.com", scopes=["users:manage"])
    service.runtime.users.set_role(_actor(), "alice@example.com", "member")
    response = service.client.post(f"/tokens/{token['id']}/rotate", headers=service.admin)
    assert response.status_code == 403
    assert "users:manage" in response.json()["detail"]
    assert [e["outcome"] for e in service.audit(action="key.rotate")] == ["denied"]


# -- revocation ---------------------------------------------------------------------------
def test_a_token_revokes_itself(service: Service) -> None:
    service.user("alice@example.com")
    token = service.login("alice@example.com")
    headers = {"X-API-Key": token["token"]}
    response = service.client.delete("/tokens/current", headers=headers)
    assert response.status_code == 200
    assert response.json()["revoked"] is True
    assert _whoami(service, headers).status_code == 401
    assert service.client.delete("/tokens/current", headers=headers).status_code == 401


def test_admin_key_and_static_tokens_cannot_revoke_themselves(make_service: Any) -> None:
    static = generate_token().token
    service = make_service(tokens=static)
    for headers in (service.admin, {"X-API-Key": static}):
        response = service.client.delete("/tokens/current", headers=headers)
        assert response.status_code == 403
        assert "cannot revoke itself" in response.json()["detail"]
    assert _whoami(service, {"X-API-Key": static}).status_code == 200


def test_revoke_by_id_owner_or_manager_only(service: Service) -> None:
    service.user("alice@example.com")
    bob = service.user("bob@example.com")
    alice_token = service.login("alice@example.com")
    alice_second = service.login("alice@example.com", name="second")
    bob_headers = service.token_of("bob@example.com")

    others = service.client.delete(f"/tokens/{alice_token['id']}", headers=bob_headers)
    missing = service.client.delete("/tokens/key_DoesNotExist0000", headers=bob_headers)
    assert others.status_code == missing.status_code == 404
    assert _whoami(service, {"X-API-Key": alice_token["token"]}).status_code == 200
    denied = service.audit(action="key.revoke")
    assert {(e["actor"], e["outcome"]) for e in denied} == {(bob.id, "denied")}
    assert {e["target"] for e in denied} == {alice_token["id"], "key_DoesNotExist0000"}

    own = service.client.delete(
        f"/tokens/{alice_second['id']}", headers={"X-API-Key": alice_token["token"]}
    )
    assert own.status_code == 200
    by_admin = service.client.delete(f"/tokens/{alice_token['id']}", headers=service.admin)
    assert by_admin.status_code == 200
    assert _whoami(service, {"X-API-Key": alice_token["token"]}).status_code == 401
    again = service.client.delete(f"/tokens/{alice_token['id']}", headers=service.admin)
    assert again.status_code == 409


def test_a_disabled_users_old_tokens_are_refused_and_audited(service: Service) -> None:
    alice = service.user("alice@example.com")
    headers = service.token_of("alice@example.com")
    assert service.client.get("/tokens", headers=headers).status_code == 200  # now cached

    response = service.client.patch(
        f"/users/{alice.id}", json={"active": False}, headers=service.admin
    )
    assert response.status_code == 200
    refused = service.client.get("/tokens", headers=headers)
    assert refused.status_code == 401
    [event] = service.audit(action="key.use")
    assert (event["actor"], event["outcome"], event["detail"]["reason"]) == (
        alice.id,
        "denied",
        "owner_disabled",
    )
    login = service.client.post("/tokens", json=_login("alice@example.com", PASSWORD, name="new"))
    assert login.status_code == 401


# -- helpers ------------------------------------------------------------------------------
def _login(email: str, password: str, **fields: Any) -> dict[str, Any]:
    return {"email": email, "password": password, "name": "laptop", **fields}


def _actor() -> Actor:
    return Actor("test")


def _insert_expired_key(service: Service, owner_id: str) -> str:
    store = service.runtime.store
    template = store.list_keys(owner_id)[0]
    now = service.runtime.clock()
    generated = generate_token()
    record = replace(
        template,
        id=new_id("key"),
        name="expired",
        digest=generated.digest,
        hint=generated.hint,
        created_at=now - timedelta(days=3),
        expires_at=now - timedelta(days=1),
        revoked_at=None,
        rotated_to=None,
    )
    store.insert_key(record)
    return record.name


# -- behind a middleware ------------------------------------------------------------------
def test_behind_a_middleware_that_already_decided(runtime: Runtime) -> None:
    """A middleware in front leaves its verdict in scope["authgate.principal"]: None for
    an anonymous caller of a public route, else the principal it authenticated."""
    service_app = create_app(runtime, manage_runtime=False)
    verdict: dict[str, Principal | None] = {"principal": None}

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["authgate.principal"] = verdict["principal"]
        await service_app(scope, receive, send)

    runtime.users.create(Actor("test"), email="alice@example.com", password=PASSWORD, role="member")
    with live_server(middleware) as url, httpx.Client(base_url=f"{url}/authgate/v1") as client:
        login = client.post("/tokens", json=_login("alice@example.com", PASSWORD))
        assert login.status_code == 201
        anonymous = client.post("/tokens", json={"name": "svc"})
        assert anonymous.status_code == 401

        verdict["principal"] = ADMIN_PRINCIPAL
        vouched = client.post("/tokens", json={"name": "svc"})
        assert vouched.status_code == 201
        assert vouched.json()["created_by"] == "admin"


# -- one scope catalogue ------------------------------------------------------------------
def test_a_scope_added_by_one_setting_is_known_to_login_and_service_tokens(
    make_service: Any,
) -> None:
    service = make_service(login_rate_limit="1000/minute", scopes="packages:write")
    service.user("boss@example.com", role="admin")
    service.user("alice@example.com")
    assert service.login("boss@example.com", scopes=["packages:write"])["scopes"] == [
        "packages:write"
    ]
    made = service.client.post(
        "/tokens", json={"name": "ci", "scopes": ["packages:write"]}, headers=service.admin
    )
    assert made.status_code == 201, made.text
    # Known, but not the member role's to have: refused by name, never trimmed.
    member = service.client.post(
        "/tokens", json=_login("alice@example.com", PASSWORD) | {"scopes": ["packages:write"]}
    )
    assert member.status_code == 403
    assert "packages:write" in member.json()["detail"]
    listed = service.client.get("/scopes", headers=service.admin)
    assert listed.status_code == 200
    assert {"name": "packages:write", "origin": "scopes setting", "roles": ["admin"],
            "default": False} in listed.json()  # fmt: skip
    assert service.client.get("/scopes").status_code == 401


def test_an_unknown_scope_is_refused_with_the_closest_known_one(make_service: Any) -> None:
    service = make_service(login_rate_limit="1000/minute", scopes="packages:write")
    service.user("boss@example.com", role="admin")
    before = service.counts()
    for response in (
        service.client.post(
            "/tokens", json=_login("boss@example.com", PASSWORD) | {"scopes": ["pakages:write"]}
        ),
        service.client.post(
            "/tokens", json={"name": "ci", "scopes": ["pakages:write"]}, headers=service.admin
        ),
    ):
        assert response.status_code == 422
        answer = response.json()
        assert answer["code"] == "invalid_request"
        assert "unknown scope 'pakages:write' (did you mean 'packages:write'?)" in answer["detail"]
    assert service.counts()["api_keys"] == before["api_keys"]
