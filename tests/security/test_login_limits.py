"""Password guessing against POST /authgate/v1/tokens, on the real limiter (memory and Redis).

Failed logins are counted per account (5 per 15 minutes, whatever the address) and per
client address (IPv6 by /64, a higher cap); a success and a malformed body count nothing.
Clients come from real distinct socket addresses (127.0.0.x), or, for IPv6, through a
trusted proxy's X-Forwarded-For.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from authgate.ratelimit import address_bucket
from tests.api import conftest as api_fixtures
from tests.api.service import PASSWORD, Service

make_service = api_fixtures.make_service

# A database of its own on the shared Redis; only the keys login limits make are removed.
REDIS_DB_URL = "redis://127.0.0.1:6379/12"


def _clean_redis() -> None:
    client = redis.Redis.from_url(REDIS_DB_URL)
    try:
        for key in client.scan_iter(match="LIMITS:*login-*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limited(request: pytest.FixtureRequest, make_service: Callable[..., Service]) -> Iterator[Any]:
    """A service factory with the default login limits, counting in memory or in Redis."""
    shared = {"redis_url": REDIS_DB_URL} if request.param == "redis" else {}
    if shared:
        _clean_redis()

    def factory(**overrides: Any) -> Service:
        return make_service(**shared, **overrides)

    try:
        yield factory
    finally:
        if shared:
            _clean_redis()


_names = itertools.count()


def _body(email: str, password: Any, **extra: Any) -> dict[str, Any]:
    # A new name each time: a user's live tokens have names of their own.
    return {"email": email, "password": password, "name": f"laptop-{next(_names)}", **extra}


def _from(service: Service, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (a real socket peer)."""
    return httpx.Client(
        base_url=str(service.client.base_url),
        transport=httpx.HTTPTransport(local_address=address),
        timeout=30,
    )


def _login(client: httpx.Client, email: str, password: str, **headers: str) -> httpx.Response:
    return client.post("/tokens", json=_body(email, password), headers=headers)


def test_five_failures_lock_the_account_from_every_address(limited: Any) -> None:
    service = limited()
    service.user("alice@example.com")
    service.user("bob@example.com")
    answers = []
    for index in range(2, 7):  # five different addresses
        with _from(service, f"127.0.0.{index}") as client:
            answers.append(_login(client, "alice@example.com", "wrong password"))
    assert [r.status_code for r in answers] == [401] * 5
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1", "0"]

    # A sixth address, the right password, the email spelt differently: still refused.
    with _from(service, "127.0.0.7") as fresh:
        sixth = _login(fresh, "ALICE@Example.COM", PASSWORD)
        assert sixth.status_code == 429
        assert int(sixth.headers["Retry-After"]) > 0
        assert sixth.json()["code"] == "rate_limited"
        # Another account from the same addresses is untouched.
        assert _login(fresh, "bob@example.com", PASSWORD).status_code == 201
    with _from(service, "127.0.0.2") as first:
        assert _login(first, "bob@example.com", PASSWORD).status_code == 201
    assert [e["outcome"] for e in service.audit(action="login") if e["target"]].count(
        "failure"
    ) == 5


def test_an_unknown_email_is_limited_like_a_known_one(limited: Any) -> None:
    # Otherwise the 429 would tell which emails exist.
    service = limited()
    statuses = []
    for index in range(2, 8):
        with _from(service, f"127.0.0.{index}") as client:
            statuses.append(_login(client, "ghost@example.com", "wrong password").status_code)
    assert statuses == [401] * 5 + [429]


def test_addresses_in_one_ipv6_64_share_a_cap(limited: Any) -> None:
    service = limited(trusted_proxies="127.0.0.0/8", login_address_rate_limit="6/15 minutes")
    prefix = "2001:db8:a:b"

    def attempt(address: str, email: str) -> int:
        return _login(
            service.client, email, "wrong password", **{"X-Forwarded-For": address}
        ).status_code

    # Six failures on three accounts (under their own cap) from six addresses of one /64.
    statuses = [
        attempt(f"{prefix}::{index:x}", f"user{index % 3}@example.com") for index in range(6)
    ]
    assert statuses == [401] * 6
    assert attempt(f"{prefix}:ffff:ffff:ffff:ffff", "fresh@example.com") == 429
    assert attempt("2001:db8:a:c::1", "fresh@example.com") == 401  # the next /64 is another client
    sources = {event["source"] for event in service.audit(action="login")}
    assert f"{prefix}::5" in sources  # the audit keeps the full address


def test_the_address_cap_is_per_ipv4_address(limited: Any) -> None:
    service = limited(login_address_rate_limit="2/15 minutes")
    with _from(service, "127.0.0.2") as one, _from(service, "127.0.0.3") as other:
        assert _login(one, "a@example.com", "wrong password").status_code == 401
        assert _login(one, "b@example.com", "wrong password").status_code == 401
        assert _login(one, "c@example.com", "wrong password").status_code == 429
        assert _login(other, "c@example.com", "wrong password").status_code == 401


def test_successful_logins_never_lock_an_address(limited: Any) -> None:
    # A team behind one NAT: ten logins from one address, then a mistyped password.
    service = limited(login_address_rate_limit="5/15 minutes")
    emails = [f"dev{index}@example.com" for index in range(5)]
    for email in emails:
        service.user(email)
    with _from(service, "127.0.0.2") as office:
        answers = [_login(office, emails[index % 5], PASSWORD) for index in range(10)]
        assert [r.status_code for r in answers] == [201] * 10
        assert {r.headers["RateLimit-Remaining"] for r in answers} == {"5"}
        typo = _login(office, emails[0], "wrong password")
        assert typo.status_code == 401
        assert typo.headers["RateLimit-Remaining"] == "4"
        assert _login(office, emails[0], PASSWORD).status_code == 201


def test_malformed_bodies_consume_nothing(limited: Any) -> None:
    service = limited()
    service.user("alice@example.com")
    malformed = [
        {"email": "alice@example.com", "password": "", "name": "x"},
        {"email": "alice@example.com", "password": "p" * 2000, "name": "x"},
        {"email": "not an email", "password": "wrong password", "name": "x"},
        {"email": "alice@example.com", "password": "wrong password"},
        {"email": "alice@example.com", "password": "wrong password", "name": "x", "extra": 1},
        _body("alice@example.com", "wrong password", scopes=["no-such-scope"]),
        _body("alice@example.com", "wrong password", expires_in_days=10_000),
        _body("alice@example.com", 12345),
    ]
    for _ in range(2):
        for body in malformed:
            response = service.client.post("/tokens", json=body)
            assert response.status_code == 422, (body, response.text)
    answers = [_login(service.client, "alice@example.com", "wrong password") for _ in range(6)]
    assert [r.status_code for r in answers] == [401] * 5 + [429]
    assert answers[0].headers["RateLimit-Remaining"] == "4"


def test_guesses_sent_at_once_get_no_more_than_the_cap(limited: Any) -> None:
    service = limited()
    service.user("alice@example.com")
    statuses: list[int] = []
    start = threading.Barrier(15)

    def guess() -> None:
        with httpx.Client(base_url=str(service.client.base_url), timeout=60) as client:
            start.wait(timeout=30)
            statuses.append(_login(client, "alice@example.com", "wrong password").status_code)

    threads = [threading.Thread(target=guess) for _ in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert len(statuses) == 15 and set(statuses) <= {401, 429}
    # However the fifteen interleave, no more than five passwords were tried.
    failures = statuses.count(401)
    assert 1 <= failures <= 5
    after = _login(service.client, "alice@example.com", PASSWORD)
    assert after.status_code == (429 if failures == 5 else 201)


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        (None, "unknown"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_address_buckets(address: str | None, bucket: str) -> None:
    assert address_bucket(address) == bucket
