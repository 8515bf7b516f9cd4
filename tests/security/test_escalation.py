"""Acting on or for someone else, attacked through a live token service with httpx.

The rule under attack (``RoleCatalogue.may_grant``): a caller may act on a principal only if
it could grant everything that principal holds, its role at least theirs and its scopes
covering theirs; a successor, a new token or a new user never holds more than the caller.
Someone else's token the caller may not touch answers exactly like a missing one (404).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.manage.keys import Actor
from tests.api import conftest as api_fixtures
from tests.api.service import PASSWORD, Service

# The token service's live-server fixtures (tests/api/conftest.py), shared with this file.
make_service = api_fixtures.make_service
service = api_fixtures.service

MISSING = "key_DoesNotExist0000"
OPS_ROLES = {
    "admin": ["read", "write", "tokens:manage", "users:manage"],
    "member": ["read", "write"],
    # Everything the admin role grants, but not the admin role: still below it.
    "lead": ["read", "write", "tokens:manage", "users:manage"],
    "ops": ["read", "write", "tokens:manage"],
}


@pytest.fixture
def database_url(data_dir: Path) -> str:
    # Authorization does not depend on the back end; the store suites cover both.
    return f"sqlite:///{data_dir / 'authgate.db'}"


def _service_token(service: Service, scopes: list[str], name: str = "svc") -> dict[str, Any]:
    response = service.client.post(
        "/tokens", json={"name": name, "scopes": scopes}, headers=service.admin
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _key(token: dict[str, Any]) -> dict[str, str]:
    return {"X-API-Key": token["token"]}


def _works(service: Service, token: dict[str, Any]) -> bool:
    return service.client.get("/whoami", headers=_key(token)).status_code == 200


def _assert_like_missing(service: Service, response: httpx.Response, key_id: str) -> None:
    """The answer for someone else's id is the answer for an id that does not exist."""
    method, path = response.request.method, response.request.url.path
    missing = service.client.request(
        method,
        path.replace(key_id, MISSING).removeprefix("/authgate/v1"),
        headers={"X-API-Key": response.request.headers["x-api-key"]},
        json={} if method == "POST" else None,
    )
    assert response.status_code == missing.status_code == 404, response.text
    assert response.json()["code"] == missing.json()["code"] == "not_found"
    assert response.json()["detail"].replace(key_id, "X") == missing.json()["detail"].replace(
        MISSING, "X"
    )


# -- the reported chain ---------------------------------------------------------------------
def test_a_roleless_tokens_manage_token_cannot_become_admin(service: Service) -> None:
    service.user("boss@example.com", role="admin")
    boss = service.login("boss@example.com", name="boss-laptop")
    manager = _service_token(service, ["tokens:manage"], name="manager")
    headers = _key(manager)

    # 1. List all: only what it could act on (itself), never the admin's token.
    listed = service.client.get("/tokens", params={"all": "true"}, headers=headers)
    assert listed.status_code == 200
    assert [token["id"] for token in listed.json()] == [manager["id"]]

    # 2. Rotate the admin's token: refused as if it did not exist, nothing written.
    before = service.counts()["api_keys"]
    rotated = service.client.post(f"/tokens/{boss['id']}/rotate", json={}, headers=headers)
    _assert_like_missing(service, rotated, boss["id"])
    assert "token" not in rotated.json()
    assert service.counts()["api_keys"] == before
    assert service.runtime.store.get_key(boss["id"]).rotated_to is None  # type: ignore[union-attr]
    assert _works(service, boss)

    # 3. With no successor there is no admin credential to use; the manager's own try at
    # creating an admin user is refused too, and no user is made.
    made = service.client.post(
        "/users",
        json={"email": "mallory@example.com", "password": PASSWORD, "role": "admin"},
        headers=headers,
    )
    assert made.status_code == 403
    assert [user.email for user in service.runtime.users.list()] == ["boss@example.com"]

    denied = {
        (event["action"], event["target"])
        for event in service.audit()
        if event["outcome"] == "denied"
    }
    assert ("key.rotate", boss["id"]) in denied


def test_reading_or_revoking_a_higher_principals_token_answers_like_a_missing_one(
    service: Service,
) -> None:
    service.user("boss@example.com", role="admin")
    boss = service.login("boss@example.com")
    headers = _key(_service_token(service, ["read", "tokens:manage"]))

    read = service.client.get(f"/tokens/{boss['id']}", headers=headers)
    _assert_like_missing(service, read, boss["id"])
    revoked = service.client.delete(f"/tokens/{boss['id']}", headers=headers)
    _assert_like_missing(service, revoked, boss["id"])
    assert _works(service, boss)
    denied = [
        (event["action"], event["outcome"])
        for event in service.audit(target=boss["id"])
        if event["action"] in {"key.show", "key.revoke"}
    ]
    assert denied == [("key.revoke", "denied"), ("key.show", "denied")]


def test_a_roleless_manager_cannot_touch_a_members_token_either(service: Service) -> None:
    # The successor of a member's token is the member's: it has a role the caller lacks.
    service.user("alice@example.com")
    alice = service.login("alice@example.com", scopes=["read"])
    headers = _key(_service_token(service, ["read", "write", "tokens:manage"]))
    for response in (
        service.client.get(f"/tokens/{alice['id']}", headers=headers),
        service.client.post(f"/tokens/{alice['id']}/rotate", json={}, headers=headers),
        service.client.delete(f"/tokens/{alice['id']}", headers=headers),
    ):
        _assert_like_missing(service, response, alice["id"])
    assert _works(service, alice)


def test_a_manager_acts_on_service_tokens_its_scopes_cover_and_no_others(
    service: Service,
) -> None:
    manager = _key(_service_token(service, ["read", "tokens:manage"], name="manager"))
    reader = _service_token(service, ["read"], name="reader")
    writer = _service_token(service, ["read", "write"], name="writer")

    listed = service.client.get("/tokens", params={"all": "true"}, headers=manager)
    assert {token["name"] for token in listed.json()} == {"manager", "reader"}
    writer_rotation = service.client.post(f"/tokens/{writer['id']}/rotate", headers=manager)
    _assert_like_missing(service, writer_rotation, writer["id"])

    rotated = service.client.post(
        f"/tokens/{reader['id']}/rotate", json={"grace_seconds": 0}, headers=manager
    )
    assert rotated.status_code == 201
    successor = rotated.json()
    assert successor["scopes"] == ["read"] and successor["owner_id"] is None
    assert service.client.get("/whoami", headers=_key(successor)).json()["role"] is None
    assert not _works(service, reader)


# -- a role with tokens:manage, below admin --------------------------------------------------
def test_a_member_like_role_with_tokens_manage_cannot_rotate_an_admins_token(
    make_service: Any,
) -> None:
    service = make_service(login_rate_limit="1000/minute", role_scopes=OPS_ROLES)
    service.user("boss@example.com", role="admin")
    service.user("olga@example.com", role="ops")
    service.user("alice@example.com")
    boss = service.login("boss@example.com")
    alice = service.login("alice@example.com", scopes=["read"])
    olga = service.token_of("olga@example.com", scopes=["read", "write", "tokens:manage"])

    rotated = service.client.post(f"/tokens/{boss['id']}/rotate", json={}, headers=olga)
    _assert_like_missing(service, rotated, boss["id"])
    assert _works(service, boss)

    listed = service.client.get("/tokens", params={"all": "true"}, headers=olga)
    assert boss["id"] not in {token["id"] for token in listed.json()}
    assert alice["id"] in {token["id"] for token in listed.json()}

    # A member ranks below ops, and olga's token covers alice's scopes.
    member_rotation = service.client.post(f"/tokens/{alice['id']}/rotate", headers=olga)
    assert member_rotation.status_code == 201
    successor = member_rotation.json()
    assert successor["owner_id"] == alice["owner_id"] and successor["scopes"] == ["read"]

    # A plain member has no tokens:manage at all.
    member = service.token_of("alice@example.com", name="second")
    plain = service.client.post(f"/tokens/{boss['id']}/rotate", json={}, headers=member)
    _assert_like_missing(service, plain, boss["id"])


def test_a_narrow_token_never_makes_a_broader_one(make_service: Any) -> None:
    service = make_service(login_rate_limit="1000/minute", role_scopes=OPS_ROLES)
    service.user("olga@example.com", role="ops")
    broad = service.login("olga@example.com", name="broad", scopes=["read", "write"])
    narrow = service.token_of("olga@example.com", name="narrow", scopes=["tokens:manage"])

    # A service token: only what the credential itself carries.
    made = service.client.post(
        "/tokens", json={"name": "svc", "scopes": ["read", "write"]}, headers=narrow
    )
    assert made.status_code == 403
    assert made.json()["code"] == "scope_not_allowed"

    # A successor of the owner's broader token: not from this credential.
    rotated = service.client.post(f"/tokens/{broad['id']}/rotate", headers=narrow)
    assert rotated.status_code == 403
    assert "read" in rotated.json()["detail"] and "write" in rotated.json()["detail"]
    stored = service.runtime.store.get_key(broad["id"])
    assert stored is not None and stored.rotated_to is None


# -- users ----------------------------------------------------------------------------------
def test_a_users_manage_service_token_cannot_make_or_promote_an_admin(service: Service) -> None:
    alice = service.user("alice@example.com")
    headers = _key(_service_token(service, ["read", "write", "tokens:manage", "users:manage"]))
    before = service.counts()["users"]
    for response in (
        service.client.post(
            "/users",
            json={"email": "mallory@example.com", "password": PASSWORD, "role": "admin"},
            headers=headers,
        ),
        # Every user has a role, and a credential without one ranks below them all.
        service.client.post(
            "/users",
            json={"email": "mallory@example.com", "password": PASSWORD, "role": "member"},
            headers=headers,
        ),
        service.client.patch(f"/users/{alice.id}", json={"role": "admin"}, headers=headers),
        service.client.post(
            f"/users/{alice.id}/password", json={"password": "n" * 12}, headers=headers
        ),
    ):
        assert response.status_code == 403, response.text
        assert "not allowed to manage users with the role" in response.json()["detail"]
    assert service.counts()["users"] == before
    assert service.runtime.users.get(alice.id).role == "member"
    denied = [
        e for e in service.audit() if e["outcome"] == "denied" and e["action"] == "user.create"
    ]
    assert {e["detail"]["role"] for e in denied} == {"admin", "member"}


def test_a_role_with_every_admin_scope_is_still_below_admin(make_service: Any) -> None:
    service = make_service(login_rate_limit="1000/minute", role_scopes=OPS_ROLES)
    service.user("lee@example.com", role="lead")
    alice = service.user("alice@example.com")
    boss = service.user("boss@example.com", role="admin")
    headers = service.token_of(
        "lee@example.com", scopes=["read", "write", "tokens:manage", "users:manage"]
    )
    for response in (
        service.client.post(
            "/users",
            json={"email": "mallory@example.com", "password": PASSWORD, "role": "admin"},
            headers=headers,
        ),
        service.client.patch(f"/users/{alice.id}", json={"role": "admin"}, headers=headers),
        service.client.patch(f"/users/{boss.id}", json={"active": False}, headers=headers),
    ):
        assert response.status_code == 403, response.text
    assert service.runtime.users.get(alice.id).role == "member"
    assert service.runtime.users.get(boss.id).active is True

    # At or below its own role it may act: a lead makes a member and another lead.
    for role in ("member", "lead"):
        made = service.client.post(
            "/users",
            json={"email": f"{role}2@example.com", "password": PASSWORD, "role": role},
            headers=headers,
        )
        assert made.status_code == 201, made.text


def test_a_demoted_users_old_token_loses_its_management_scopes(service: Service) -> None:
    alice = service.user("alice@example.com", role="admin")
    headers = service.token_of("alice@example.com", scopes=["users:manage", "tokens:manage"])
    assert service.client.get("/users", headers=headers).status_code == 200
    service.runtime.users.set_role(Actor("test"), alice.id, "member")

    assert service.client.get("/users", headers=headers).status_code == 403
    listed = service.client.get("/tokens", params={"all": "true"}, headers=headers)
    assert listed.status_code == 403
    made = service.client.post(
        "/users",
        json={"email": "m@example.com", "password": PASSWORD, "role": "member"},
        headers=headers,
    )
    assert made.status_code == 403


# -- access keys (SigV4) ------------------------------------------------------------------
def test_access_key_routes_are_the_admins_alone(service: Service) -> None:
    service.user("alice@example.com")
    created = service.client.post("/access-keys", json={"name": "s3"}, headers=service.admin)
    assert created.status_code == 201
    ident = created.json()["id"]
    callers = {
        "manager": _key(
            _service_token(service, ["read", "write", "tokens:manage", "users:manage"])
        ),
        "member": service.token_of("alice@example.com"),
    }
    for headers in callers.values():
        for method, path, body in (
            ("POST", "/access-keys", {"name": "mine"}),
            ("GET", "/access-keys", None),
            ("GET", f"/access-keys/{ident}", None),
            ("PUT", f"/access-keys/{ident}/grants/bucket", {"permission": "admin"}),
            ("DELETE", f"/access-keys/{ident}/grants/bucket", None),
            ("DELETE", f"/access-keys/{ident}", None),
        ):
            response = service.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403, (method, path, response.text)
    record = service.runtime.access_keys.get(ident)
    assert record.revoked_at is None and record.grants == {}
