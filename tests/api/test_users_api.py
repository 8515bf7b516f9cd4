"""``/users``: admins (or ``users:manage`` holders) create, list, disable, change roles."""

from __future__ import annotations

from typing import Any

from tests.api.service import PASSWORD, Service


def test_admin_creates_and_lists_users(service: Service) -> None:
    response = service.client.post(
        "/users",
        json={"email": "Carol@Example.com", "password": PASSWORD, "role": "member"},
        headers=service.admin,
    )
    assert response.status_code == 201
    carol = response.json()
    assert carol["email"] == "Carol@example.com"
    assert carol["role"] == "member" and carol["active"] is True
    assert "password" not in str(carol) and "hash" not in str(carol)

    listed = service.client.get("/users", headers=service.admin).json()
    assert [user["email"] for user in listed] == ["Carol@example.com"]
    by_email = service.client.get("/users/carol@EXAMPLE.com", headers=service.admin)
    assert by_email.json()["id"] == carol["id"]
    assert service.login("carol@example.com")["owner_id"] == carol["id"]

    [event] = service.audit(action="user.create")
    assert (event["actor"], event["target"]) == ("admin", carol["id"])


def test_emails_are_unique_case_and_width_insensitively(service: Service) -> None:
    service.user("alice@example.com")
    before = service.counts()
    for email in ("ALICE@example.com", "ａｌｉｃｅ@example.com", "Alice@EXAMPLE.COM"):
        response = service.client.post(
            "/users", json={"email": email, "password": PASSWORD}, headers=service.admin
        )
        assert response.status_code == 409, email
        assert "already exists" in response.json()["detail"]
    assert service.counts() == before


def test_unknown_role_is_422(service: Service) -> None:
    response = service.client.post(
        "/users",
        json={"email": "x@example.com", "password": PASSWORD, "role": "superuser"},
        headers=service.admin,
    )
    assert response.status_code == 422
    assert "admin, member" in response.json()["detail"]


def test_members_cannot_manage_users_and_are_audited(service: Service) -> None:
    alice = service.user("alice@example.com")
    headers = service.token_of("alice@example.com", scopes=["read", "write"])
    before = service.counts()
    attempts = [
        service.client.get("/users", headers=headers),
        service.client.post(
            "/users",
            json={"email": "x@example.com", "password": PASSWORD, "role": "admin"},
            headers=headers,
        ),
        service.client.patch(f"/users/{alice.id}", json={"role": "admin"}, headers=headers),
        service.client.post(
            f"/users/{alice.id}/password", json={"password": "n" * 12}, headers=headers
        ),
    ]
    assert [r.status_code for r in attempts] == [403] * 4
    assert all("users:manage" in r.json()["detail"] for r in attempts)
    assert service.runtime.users.get(alice.id).role == "member"
    denied = [e for e in service.audit() if e["outcome"] == "denied"]
    assert {e["action"] for e in denied} == {
        "user.list",
        "user.create",
        "user.update",
        "user.password_reset",
    }
    assert {e["actor"] for e in denied} == {alice.id}
    assert service.counts()["users"] == before["users"]


def test_a_users_manage_holder_cannot_hand_out_roles_above_its_own(make_service: Any) -> None:
    service = make_service(
        login_rate_limit="100/minute",
        role_scopes={
            "admin": ["read", "write", "tokens:manage", "users:manage"],
            "member": ["read", "write"],
            "helpdesk": ["read", "users:manage"],
        },
    )
    service.user("desk@example.com", role="helpdesk")
    boss = service.user("boss@example.com", role="admin")
    headers = service.token_of("desk@example.com", scopes=["read", "users:manage"])

    member = service.client.post(
        "/users", json={"email": "m@example.com", "password": PASSWORD}, headers=headers
    )
    assert member.status_code == 403  # member may write; this token may not
    reader = service.client.post(
        "/users",
        json={"email": "r@example.com", "password": PASSWORD, "role": "helpdesk"},
        headers=headers,
    )
    assert reader.status_code == 201
    for attempt in (
        service.client.post(
            "/users",
            json={"email": "a@example.com", "password": PASSWORD, "role": "admin"},
            headers=headers,
        ),
        service.client.patch(
            f"/users/{reader.json()['id']}", json={"role": "admin"}, headers=headers
        ),
        service.client.patch(f"/users/{boss.id}", json={"active": False}, headers=headers),
        service.client.post(
            f"/users/{boss.id}/password", json={"password": "n" * 12}, headers=headers
        ),
    ):
        assert attempt.status_code == 403, attempt.text
        assert "not allowed to manage users with the role" in attempt.json()["detail"]
    assert service.runtime.users.get(boss.id).active is True


def test_disable_and_enable(service: Service) -> None:
    alice = service.user("alice@example.com")
    headers = service.token_of("alice@example.com")
    disabled = service.client.patch(
        f"/users/{alice.id}", json={"active": False}, headers=service.admin
    )
    assert disabled.json()["active"] is False
    assert service.client.get("/tokens", headers=headers).status_code == 401
    enabled = service.client.patch(
        "/users/alice@example.com", json={"active": True}, headers=service.admin
    )
    assert enabled.json()["active"] is True
    # Disabling revoked the old token (tests/security/test_disabled_users.py); a new login works.
    assert service.client.get("/tokens", headers=headers).status_code == 401
    assert service.client.get("/tokens", headers=service.token_of("alice@example.com")).is_success
    actions = [e["action"] for e in service.audit(target=alice.id)]
    assert "user.disable" in actions and "user.enable" in actions


def test_changing_a_role_changes_what_existing_tokens_may_do(service: Service) -> None:
    alice = service.user("alice@example.com", role="admin")
    headers = service.token_of("alice@example.com", scopes=["read"])
    assert service.client.get("/users", headers=headers).status_code == 200
    changed = service.client.patch(
        f"/users/{alice.id}", json={"role": "member"}, headers=service.admin
    )
    assert changed.json()["role"] == "member"
    assert service.client.get("/users", headers=headers).status_code == 403
    [event] = service.audit(action="user.role")
    assert event["detail"] == {"old": "admin", "new": "member"}


def test_reset_password(service: Service) -> None:
    alice = service.user("alice@example.com")
    response = service.client.post(
        f"/users/{alice.id}/password", json={"password": "a new passphrase"}, headers=service.admin
    )
    assert response.status_code == 200
    old = service.client.post(
        "/tokens", json={"email": "alice@example.com", "password": PASSWORD, "name": "x"}
    )
    assert old.status_code == 401
    assert service.login("alice@example.com", password="a new passphrase")["token"]


def test_unknown_user_is_404(service: Service) -> None:
    for response in (
        service.client.get("/users/usr_nobody", headers=service.admin),
        service.client.patch(
            "/users/nobody@example.com", json={"active": False}, headers=service.admin
        ),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_whoami_names_the_user_a_token_speaks_for(service: Service) -> None:
    alice = service.user("Alice@Example.com")
    whoami = service.client.get("/whoami", headers=service.token_of("alice@example.com"))
    assert whoami.status_code == 200
    assert (whoami.json()["owner_id"], whoami.json()["owner_email"]) == (
        alice.id,
        "Alice@example.com",
    )
    admin = service.client.get("/whoami", headers=service.admin).json()
    assert (admin["owner_id"], admin["owner_email"]) == (None, None)
