"""Disabling a user ends every credential they hold: enabling them again brings none back.

A token taken from a user before they were disabled (the reason one disables a user) must
stay dead. Through a live token service on SQLite and PostgreSQL, with the HTTP API and
with the ``authgate users disable`` command on the same store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from authgate.cli import app
from authgate.manage.keys import Actor
from tests.api import conftest as api_fixtures
from tests.api.service import Service
from tests.support import wait_until

make_service = api_fixtures.make_service


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    # No memory of refusals: what the test sees after re-enabling is the store's verdict.
    return make_service(login_rate_limit="1000/minute", negative_cache_ttl_seconds=0)


def _status(service: Service, token: str) -> int:
    return service.client.get("/whoami", headers={"X-API-Key": token}).status_code


def test_re_enabling_a_user_does_not_revive_their_old_tokens(service: Service) -> None:
    alice = service.user("alice@example.com")
    laptop = service.login("alice@example.com", name="laptop")
    phone = service.login("alice@example.com", name="phone")
    # A token in its grace period after rotation is still a live credential.
    rotated = service.client.post(
        f"/tokens/{phone['id']}/rotate",
        json={"grace_seconds": 3600},
        headers={"X-API-Key": phone["token"]},
    )
    assert rotated.status_code == 201
    successor = rotated.json()
    tokens = [laptop["token"], phone["token"], successor["token"]]
    assert [_status(service, token) for token in tokens] == [200] * 3  # and now cached

    disabled = service.client.patch(
        f"/users/{alice.id}", json={"active": False}, headers=service.admin
    )
    assert disabled.status_code == 200
    assert [_status(service, token) for token in tokens] == [401] * 3

    enabled = service.client.patch(
        f"/users/{alice.id}", json={"active": True}, headers=service.admin
    )
    assert enabled.json()["active"] is True
    assert [_status(service, token) for token in tokens] == [401] * 3

    store = service.runtime.store
    assert all(record.revoked_at is not None for record in store.list_keys(alice.id))
    revocations = service.audit(action="key.revoke")
    assert {event["target"] for event in revocations} == {
        laptop["id"],
        phone["id"],
        successor["id"],
    }
    assert {(e["actor"], e["outcome"], e["detail"]["reason"]) for e in revocations} == {
        ("admin", "success", "user_disabled")
    }
    # The user may log in again, for a new token.
    assert _status(service, service.login("alice@example.com", name="new")["token"]) == 200


def test_disabling_revokes_the_users_access_keys(service: Service) -> None:
    alice = service.user("alice@example.com")
    owned = service.runtime.access_keys.create(Actor("test"), name="alice-s3", owner_id=alice.id)
    unowned = service.runtime.access_keys.create(Actor("test"), name="shared-s3")

    service.client.patch(f"/users/{alice.id}", json={"active": False}, headers=service.admin)
    service.client.patch(f"/users/{alice.id}", json={"active": True}, headers=service.admin)

    assert service.runtime.access_keys.get(owned.record.id).revoked_at is not None
    assert service.runtime.access_keys.get(unowned.record.id).revoked_at is None
    [event] = service.audit(action="access_key.revoke")
    assert (event["target"], event["detail"]["reason"]) == (owned.record.id, "user_disabled")


def test_users_disable_on_the_command_line_revokes_too(
    service: Service, data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = service.user("alice@example.com")
    token = service.login("alice@example.com")["token"]
    assert _status(service, token) == 200

    monkeypatch.setenv("AUTHGATE_DATABASE_URL", database_url)
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(app, ["--data-dir", str(data_dir), "users", *args])
        assert result.exit_code == 0, result.output
        return result

    cli("disable", "alice@example.com")
    # The server learns of it from the store's change feed.
    assert wait_until(lambda: _status(service, token) == 401, timeout=5)
    cli("enable", "alice@example.com")
    assert service.runtime.users.get(alice.id).active is True
    assert _status(service, token) == 401
    [event] = service.audit(action="key.revoke")
    assert (event["actor"], event["detail"]["reason"]) == ("cli", "user_disabled")


def test_disabling_an_already_disabled_user_finishes_the_sweep(service: Service) -> None:
    # As after an outage that stopped the sweep: disabled, but a key left unrevoked.
    alice = service.user("alice@example.com")
    token = service.login("alice@example.com")
    service.runtime.store.update_user(alice.id, service.runtime.clock(), active=False)
    assert service.runtime.store.get_key(token["id"]).revoked_at is None  # type: ignore[union-attr]

    again = service.client.patch(
        f"/users/{alice.id}", json={"active": False}, headers=service.admin
    )
    assert again.status_code == 200
    assert service.runtime.store.get_key(token["id"]).revoked_at is not None  # type: ignore[union-attr]
