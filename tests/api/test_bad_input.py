"""Bad input gets a 4xx with a clear detail, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.service import PASSWORD, Service

JSON = {"content-type": "application/json"}


@pytest.fixture
def alice(service: Service) -> Service:
    service.user("alice@example.com")
    return service


def _unchanged(service: Service, before: dict[str, int]) -> None:
    assert service.counts() == before


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'{"name": "a", "name": "b"}', 400, "repeats the key 'name'"),
        (b'{"name": "a", "scopes": [], "scopes": ["tokens:manage"]}', 400, "'scopes'"),
        (b'{"name": "a", "nested": {"x": 1, "x": 2}}', 400, "'x'"),
        (b"name=a&password=b", 400, "not valid JSON"),
        (b'{"name": "a",}', 400, "not valid JSON"),
        (b"\xff\xfe{}", 400, "not UTF-8"),
        (b'{"name": "a", "expires_in_days": NaN}', 400, "NaN"),
        (b"[" * 10_000 + b"]" * 10_000, 413, "larger than"),
        (b"[" * 5000 + b"]" * 5000, 400, "nested too deeply"),
        (b'{"name": "a", "expires_in_days": ' + b"9" * 5000 + b"}", 400, "not usable JSON"),
        (b'["name", "a"]', 422, "must be a JSON object, not an array"),
        (b'"just a string"', 422, "not a string"),
        (b"", 422, "body is empty"),
    ],
    ids=[
        "duplicate-key",
        "duplicate-scopes",
        "duplicate-nested",
        "form-encoded",
        "trailing-comma",
        "not-utf8",
        "nan",
        "too-large",
        "too-deep",
        "huge-integer",
        "array",
        "string",
        "empty",
    ],
)
def test_unreadable_bodies(alice: Service, body: bytes, status: int, needle: str) -> None:
    before = alice.counts()
    response = alice.client.post("/tokens", content=body, headers=JSON)
    assert response.status_code == status, response.text
    assert needle in str(response.json()["detail"])
    _unchanged(alice, before)


def test_a_body_that_is_not_json_by_content_type(alice: Service) -> None:
    before = alice.counts()
    response = alice.client.post(
        "/tokens", content=b'{"name": "a"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    _unchanged(alice, before)


def test_oversized_bodies_are_413_with_or_without_content_length(alice: Service) -> None:
    before = alice.counts()
    big = b'{"name": "a", "password": "' + b"x" * 100_000 + b'"}'
    declared = alice.client.post("/tokens", content=big, headers=JSON)
    assert declared.status_code == 413
    assert declared.json() == {
        "detail": "The request body is larger than 16384 bytes.",
        "code": "too_large",
    }

    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1000

    streamed = alice.client.post("/tokens", content=chunks(), headers=JSON)
    assert streamed.status_code == 413
    _unchanged(alice, before)


@pytest.mark.parametrize(
    ("fields", "loc", "kind"),
    [
        ({"unknown": 1}, ["body", "unknown"], "extra_forbidden"),
        ({"is_admin": True}, ["body", "is_admin"], "extra_forbidden"),
        ({"expires_in_days": "5"}, ["body", "expires_in_days"], "int_type"),
        ({"expires_in_days": 5.0}, ["body", "expires_in_days"], "int_type"),
        ({"expires_in_days": True}, ["body", "expires_in_days"], "int_type"),
        ({"scopes": "read"}, ["body", "scopes"], "list_type"),
        ({"scopes": [1]}, ["body", "scopes", 0], "string_type"),
        ({"name": "has space"}, ["body", "name"], "invalid_name"),
        ({"name": ""}, ["body", "name"], "invalid_name"),
        ({"name": "x" * 65}, ["body", "name"], "invalid_name"),
        ({"name": 7}, ["body", "name"], "string_type"),
        ({"password": ""}, ["body", "password"], "string_too_short"),
        ({"password": "p" * 10_000}, ["body", "password"], "string_too_long"),
        ({"email": ["alice@example.com"]}, ["body", "email"], "string_type"),
    ],
)
def test_invalid_fields_are_422_naming_them(
    alice: Service, fields: dict[str, Any], loc: list[Any], kind: str
) -> None:
    before = alice.counts()
    body = {"email": "alice@example.com", "password": PASSWORD, "name": "laptop", **fields}
    response = alice.client.post("/tokens", json=body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["code"] == "invalid_request"
    problems = answer["errors"]
    assert {"loc": loc, "type": kind} in [{"loc": p["loc"], "type": p["type"]} for p in problems]
    assert all(p["msg"] for p in problems)
    # One sentence, naming the field, in the shape of every other error.
    field = ".".join(str(part) for part in loc[1:])
    assert isinstance(answer["detail"], str) and answer["detail"].startswith(field)
    _unchanged(alice, before)


def test_a_missing_name_is_named(alice: Service) -> None:
    response = alice.client.post("/tokens", json={"email": "alice@example.com", "password": "x"})
    assert response.status_code == 422
    answer = response.json()
    assert answer["detail"] == "name: Field required"
    assert answer["code"] == "invalid_request"
    assert answer["errors"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(
    "email",
    [
        "al\u200bice@example.com",  # zero-width space
        "alice\u202e@example.com",  # right-to-left override
        "alice@exa\u0000mple.com",
        " alice@example.com",
        "alice@example.com\n",
        "alice",
        "alice@localhost",
    ],
    ids=["zero-width", "rtl-override", "nul", "leading-space", "newline", "no-at", "no-dot"],
)
def test_odd_emails_are_refused_everywhere(alice: Service, email: str) -> None:
    before = alice.counts()
    login = alice.client.post(
        "/tokens", json={"email": email, "password": PASSWORD, "name": "laptop"}
    )
    assert login.status_code == 422
    assert login.json()["detail"].startswith("email is not valid")
    create = alice.client.post(
        "/users", json={"email": email, "password": PASSWORD}, headers=alice.admin
    )
    assert create.status_code == 422
    assert create.json()["detail"].startswith("email is not valid")
    _unchanged(alice, before)


@pytest.mark.parametrize(
    ("password", "needle"),
    [("", "at least 8"), ("short", "at least 8"), ("p" * 10_000, "at most 1024")],
    ids=["empty", "short", "ten-thousand"],
)
def test_new_passwords_out_of_bounds(alice: Service, password: str, needle: str) -> None:
    before = alice.counts()
    alice_id = alice.runtime.users.get("alice@example.com").id
    for path in ("/users", f"/users/{alice_id}/password"):
        body: dict[str, Any] = {"password": password}
        if path == "/users":
            body["email"] = "carol@example.com"
        response = alice.client.post(path, json=body, headers=alice.admin)
        assert response.status_code == 422
        assert needle in response.json()["detail"]
        assert response.json()["detail"].startswith("password")
    _unchanged(alice, before)


def test_user_updates_are_strict(alice: Service) -> None:
    before = alice.counts()
    alice_id = alice.runtime.users.get("alice@example.com").id
    for body, needle in (
        ({}, "send role, active or both"),
        ({"active": "false"}, "valid boolean"),
        ({"active": 0}, "valid boolean"),
        ({"role": "root"}, "unknown role 'root'"),
        ({"role": "member", "email": "x@example.com"}, "Extra inputs"),
    ):
        response = alice.client.patch(f"/users/{alice_id}", json=body, headers=alice.admin)
        assert response.status_code == 422, response.text
        assert needle in str(response.json()["detail"])
    _unchanged(alice, before)


def test_authentication_comes_before_the_body(alice: Service) -> None:
    """An anonymous caller learns nothing about the body rules of a protected route."""
    response = alice.client.post("/users", content=b"not json", headers=JSON)
    assert response.status_code == 401
