"""Any unexpected error leaves a real route as a 500 in the JSON shape, never a traceback."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.api.service import PASSWORD, Service


class Boom(RuntimeError):
    pass


def _explode(*_args: object, **_kwargs: object) -> None:
    raise Boom("internal detail: /var/lib/secret.db line 42")


def _is_plain_500(status: int, body: dict[str, str], text: str) -> None:
    assert status == 500
    assert body == {"detail": "Internal server error.", "code": "internal_error"}
    assert "Traceback" not in text and "secret.db" not in text and "Boom" not in text


def test_a_store_failure_inside_a_request_is_a_json_500(
    service: Service, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(service.runtime.store, "list_users", _explode)
    with caplog.at_level(logging.ERROR, logger="authgate.server"):
        response = service.client.get("/users", headers=service.admin)
    _is_plain_500(response.status_code, response.json(), response.text)
    assert response.headers["content-type"] == "application/json"
    # The operator still sees what happened, in the server's log.
    assert any(record.exc_info and record.exc_info[0] is Boom for record in caplog.records)


def test_a_failure_in_the_middle_of_a_login_is_a_json_500(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.user("alice@example.com")
    monkeypatch.setattr(service.runtime.store, "insert_key", _explode)
    response = service.client.post(
        "/tokens", json={"email": "alice@example.com", "password": PASSWORD, "name": "x"}
    )
    _is_plain_500(response.status_code, response.json(), response.text)
    assert service.counts()["api_keys"] == 0
    monkeypatch.undo()
    # The server keeps serving (on a new connection: after a 500 the server closes the
    # one it answered on, and a reused one could race with that close).
    with httpx.Client(base_url=service.client.base_url) as fresh:
        again = fresh.post(
            "/tokens", json={"email": "alice@example.com", "password": PASSWORD, "name": "x"}
        )
    assert again.status_code == 201
