"""Five failed logins per 15 minutes per account, and a cap per client address, on the real
limiter (attacks on both: tests/security/test_login_limits.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.api.service import PASSWORD, Service

# A database of its own on the shared Redis, and only the keys this limit makes are removed.
REDIS_DB_URL = "redis://127.0.0.1:6379/9"


def _attempt(client: httpx.Client, password: str) -> httpx.Response:
    body = {"email": "alice@example.com", "password": password, "name": "laptop"}
    return client.post("/tokens", json=body)


def _sixth_attempt_is_refused(service: Service) -> None:
    service.user("alice@example.com")
    answers = [_attempt(service.client, "wrong password") for _ in range(5)]
    assert [r.status_code for r in answers] == [401] * 5
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1", "0"]

    sixth = _attempt(service.client, PASSWORD)  # even the right password waits
    assert sixth.status_code == 429
    assert int(sixth.headers["Retry-After"]) > 0
    assert sixth.headers["RateLimit-Limit"] == "5"
    assert sixth.headers["RateLimit-Remaining"] == "0"
    assert sixth.json()["code"] == "rate_limited"
    assert "retry in" in sixth.json()["detail"]
    assert service.counts()["api_keys"] == 0
    failures = service.audit(action="login")
    assert [event["outcome"] for event in failures] == ["failure"] * 5


def test_the_sixth_login_attempt_gets_429(make_service: Any) -> None:
    service = make_service()  # the default limit: 5 per 15 minutes
    _sixth_attempt_is_refused(service)

    # Creating service tokens with a credential is not a login and is not counted.
    created = service.client.post("/tokens", json={"name": "svc"}, headers=service.admin)
    assert created.status_code == 201

    # The count is the account's: another address waits too, another account does not.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(
        base_url=str(service.client.base_url), transport=transport, timeout=30
    ) as elsewhere:
        assert _attempt(elsewhere, PASSWORD).status_code == 429
        service.user("bob@example.com")
        body = {"email": "bob@example.com", "password": PASSWORD, "name": "laptop"}
        response = elsewhere.post("/tokens", json=body)
    assert response.status_code == 201
    assert response.headers["RateLimit-Remaining"] == "5"


def test_successful_logins_cost_nothing(make_service: Any) -> None:
    service = make_service(login_rate_limit="2/day", login_address_rate_limit="2/day")
    service.user("alice@example.com")
    for name in ("one", "two", "three", "four"):
        assert service.login("alice@example.com", name=name)["token"]
    assert _attempt(service.client, "wrong password").status_code == 401


def test_bad_input_is_not_counted(make_service: Any) -> None:
    service = make_service(login_rate_limit="1/day")
    service.user("alice@example.com")
    for _ in range(3):
        bad = service.client.post(
            "/tokens", json={"email": "alice@example.com", "password": "", "name": "x"}
        )
        assert bad.status_code == 422
    assert service.login("alice@example.com")["token"]


@pytest.fixture
def redis_login_keys() -> Iterator[None]:
    client = redis.Redis.from_url(REDIS_DB_URL)

    def clean() -> None:
        for key in client.scan_iter(match="LIMITS:*login*"):
            client.delete(key)

    clean()
    try:
        yield
    finally:
        clean()
        client.close()


@pytest.mark.redis
def test_the_sixth_login_attempt_gets_429_on_redis(
    make_service: Any, redis_login_keys: None
) -> None:
    service = make_service(redis_url=REDIS_DB_URL)
    _sixth_attempt_is_refused(service)
    # The count lives in Redis, so a second instance sharing it refuses too.
    other = make_service(redis_url=REDIS_DB_URL)
    assert _attempt(other.client, PASSWORD).status_code == 429


def _from(
    service: Service, forwarded_for: str, email: str, password: str = "wrong password"
) -> int:
    body = {"email": email, "password": password, "name": "laptop"}
    response = service.client.post("/tokens", json=body, headers={"X-Forwarded-For": forwarded_for})
    return response.status_code


def test_behind_a_trusted_proxy_each_client_has_its_own_count(make_service: Any) -> None:
    service = make_service(trusted_proxies="127.0.0.0/8", login_address_rate_limit="3/day")
    service.user("alice@example.com")
    emails = [f"user{index}@example.com" for index in range(4)]
    assert [_from(service, "203.0.113.5", email) for email in emails] == [401] * 3 + [429]
    assert _from(service, "203.0.113.6", "alice@example.com", PASSWORD) == 201
    sources = {event["source"] for event in service.audit(action="login")}
    assert sources == {"203.0.113.5", "203.0.113.6"}


def test_without_trusted_proxies_forwarding_headers_change_nothing(make_service: Any) -> None:
    service = make_service(login_address_rate_limit="3/day")
    answers = [
        _from(service, f"203.0.113.{index}", f"user{index}@example.com") for index in range(4)
    ]
    assert answers == [401] * 3 + [429]
    assert {event["source"] for event in service.audit(action="login")} == {"127.0.0.1"}
