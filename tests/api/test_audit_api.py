"""``GET /audit``: admins read the log, newest first, filtered and paginated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from authgate.store.records import AuditEvent
from tests.api.service import Service

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _seed(service: Service) -> None:
    for minute, (actor, action, target) in enumerate(
        [
            ("usr_a", "key.create", "key_1"),
            ("usr_a", "key.revoke", "key_1"),
            ("usr_b", "key.create", "key_2"),
            ("admin", "user.disable", "usr_b"),
            ("usr_b", "login", "usr_b"),
        ]
    ):
        service.runtime.store.append_audit(
            AuditEvent(at=T0 + timedelta(minutes=minute), actor=actor, action=action, target=target)
        )


def _get(service: Service, **params: str | int) -> dict[str, object]:
    response = service.client.get("/audit", params=params, headers=service.admin)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _actions(page: dict[str, object]) -> list[str]:
    events = page["events"]
    assert isinstance(events, list)
    return [event["action"] for event in events]


def test_newest_first_and_filtered(service: Service) -> None:
    _seed(service)
    everything = _get(service)
    assert _actions(everything) == [
        "login",
        "user.disable",
        "key.create",
        "key.revoke",
        "key.create",
    ]
    assert everything["next_offset"] is None
    assert _actions(_get(service, actor="usr_a")) == ["key.revoke", "key.create"]
    assert _actions(_get(service, action="key.create")) == ["key.create", "key.create"]
    assert _actions(_get(service, key="usr_b")) == ["login", "user.disable"]
    window = _get(
        service,
        since=(T0 + timedelta(minutes=1)).isoformat(),
        until=(T0 + timedelta(minutes=3)).isoformat(),
    )
    assert _actions(window) == ["key.create", "key.revoke"]
    # A time without a zone is UTC.
    naive = _get(service, since="2030-01-01T00:04:00")
    assert _actions(naive) == ["login"]


def test_paginated(service: Service) -> None:
    _seed(service)
    first = _get(service, limit=2)
    assert _actions(first) == ["login", "user.disable"]
    assert first["next_offset"] == 2
    second = _get(service, limit=2, offset=2)
    assert _actions(second) == ["key.create", "key.revoke"]
    third = _get(service, limit=2, offset=4)
    assert _actions(third) == ["key.create"]
    assert third["next_offset"] is None


def test_bad_parameters_are_422(service: Service) -> None:
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"since": "yesterday"}):
        response = service.client.get("/audit", params=params, headers=service.admin)
        assert response.status_code == 422, params


def test_only_admins_read_the_log(service: Service) -> None:
    alice = service.user("alice@example.com", role="member")
    manager = service.client.post(
        "/tokens",
        json={"name": "m", "scopes": ["tokens:manage", "users:manage"]},
        headers=service.admin,
    ).json()
    for headers in (service.token_of("alice@example.com"), {"X-API-Key": manager["token"]}):
        response = service.client.get("/audit", headers=headers)
        assert response.status_code == 403
        assert response.json()["detail"] == "The audit log needs the admin role."
    denied = service.audit(action="audit.read")
    assert [event["actor"] for event in denied] == [manager["id"], alice.id]
    assert service.client.get("/audit").status_code == 401


def test_actors_are_shown_by_email_and_found_by_it(service: Service) -> None:
    alice = service.user("alice@example.com")
    service.user("bob@example.com")
    alice_token = service.token_of("alice@example.com")
    service.token_of("bob@example.com")
    revoked = service.client.delete("/tokens/current", headers=alice_token)
    assert revoked.status_code in (200, 204), revoked.text

    page = _get(service, actor="Alice@Example.com")
    events = page["events"]
    assert isinstance(events, list)
    assert events, "alice acted"
    assert {(e["actor"], e["actor_email"]) for e in events} == {(alice.id, "alice@example.com")}
    assert _actions(_get(service, actor=alice.id)) == _actions(page)
    assert _get(service, actor="carol@example.com")["events"] == []
    admin_events = _get(service, actor="admin")["events"]
    assert isinstance(admin_events, list)
    assert all(e["actor_email"] is None for e in admin_events)
