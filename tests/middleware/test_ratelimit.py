"""Rate limits on the real limiter, in memory and in Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from authgate.adapters.asgi import AuthgateMiddleware
from authgate.runtime import Runtime
from tests.middleware.apps import RULES, Echo
from tests.middleware.conftest import new_key
from tests.support import REDIS_URL, live_server

# A Redis database of the middleware tests' own, emptied around each test.
REDIS_DB = REDIS_URL.rsplit("/", 1)[0] + "/11"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limited(
    request: pytest.FixtureRequest, runtime_for: Callable[..., Runtime]
) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(**overrides: object) -> Runtime:
        if request.param == "redis":
            overrides.setdefault("redis_url", REDIS_DB)
        rt = runtime_for(**overrides)
        if not made:
            rt.limiter.reset()
        made.append(rt)
        return rt

    yield make
    if made:
        made[0].limiter.reset()


def test_failures_are_limited_per_address(limited: Callable[..., Runtime]) -> None:
    rt = limited(failure_rate_limit="3/day")
    token = new_key(rt, "good", "items:write")
    with live_server(AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt)) as url:
        bad = {"X-API-Key": "ag_" + "x" * 46}
        for _ in range(3):
            assert httpx.get(url + "/private/x", headers=bad).status_code == 401
        blocked = httpx.get(url + "/private/x", headers=bad)
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "rate_limited"
        assert int(blocked.headers["Retry-After"]) >= 1
        assert blocked.headers["RateLimit-Limit"] == "3"
        assert blocked.headers["RateLimit-Remaining"] == "0"
        assert int(blocked.headers["RateLimit-Reset"]) >= 1
        # A valid key is never blocked by other people's failures from the same address.
        good = httpx.post(url + "/items", headers={"X-API-Key": token})
        assert good.status_code == 200
        # No credential is not a guess, and a public route does not count failures.
        assert httpx.get(url + "/private/x").status_code == 401
        assert httpx.get(url + "/public/x", headers=bad).status_code == 200


def test_instances_share_the_count_through_redis(runtime_for: Callable[..., Runtime]) -> None:
    first = runtime_for(failure_rate_limit="2/day", redis_url=REDIS_DB)
    first.limiter.reset()
    second = runtime_for(failure_rate_limit="2/day", redis_url=REDIS_DB)
    bad = {"X-API-Key": "ag_" + "y" * 46}
    try:
        with (
            live_server(AuthgateMiddleware(Echo().app, rules=RULES, runtime=first)) as one,
            live_server(AuthgateMiddleware(Echo().app, rules=RULES, runtime=second)) as two,
        ):
            assert httpx.get(one + "/private/x", headers=bad).status_code == 401
            assert httpx.get(two + "/private/x", headers=bad).status_code == 401
            assert httpx.get(one + "/private/x", headers=bad).status_code == 429
    finally:
        first.limiter.reset()


def test_per_key_limits(limited: Callable[..., Runtime]) -> None:
    rt = limited(key_rate_limit="2/day")
    token = new_key(rt, "busy", "items:write")
    other = new_key(rt, "quiet", "items:write")
    with live_server(AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt)) as url:
        first = httpx.post(url + "/items", headers={"X-API-Key": token})
        assert first.status_code == 200
        assert first.headers["RateLimit-Limit"] == "2"
        assert first.headers["RateLimit-Remaining"] == "1"
        assert httpx.post(url + "/items", headers={"X-API-Key": token}).status_code == 200
        third = httpx.post(url + "/items", headers={"X-API-Key": token})
        assert third.status_code == 429
        assert "Retry-After" in third.headers
        # Each key has its own allowance.
        assert httpx.post(url + "/items", headers={"X-API-Key": other}).status_code == 200


def test_trusted_proxies_decide_whose_address_is_counted(limited: Callable[..., Runtime]) -> None:
    bad = {"X-API-Key": "ag_" + "z" * 46}
    trusting = limited(failure_rate_limit="1/day", trusted_proxies="127.0.0.1")
    with live_server(
        AuthgateMiddleware(Echo().app, rules=RULES, runtime=trusting), proxy_headers=False
    ) as url:
        for client in ("198.51.100.1", "198.51.100.2"):
            headers = {**bad, "X-Forwarded-For": client}
            assert httpx.get(url + "/private/x", headers=headers).status_code == 401
        headers = {**bad, "X-Forwarded-For": "198.51.100.1"}
        assert httpx.get(url + "/private/x", headers=headers).status_code == 429


def test_untrusted_forwarding_headers_do_not_dodge_the_limit(
    limited: Callable[..., Runtime],
) -> None:
    rt = limited(failure_rate_limit="1/day")
    app = AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt)
    # uvicorn's own proxy-header handling (which trusts 127.0.0.1) is off, as in `serve`.
    with live_server(app, proxy_headers=False) as url:
        for index, status in enumerate([401, 429, 429]):
            headers = {"X-API-Key": "ag_" + "w" * 46, "X-Forwarded-For": f"198.51.100.{index}"}
            assert httpx.get(url + "/private/x", headers=headers).status_code == status


def test_an_ipv6_64_is_one_address_for_failures(limited: Callable[..., Runtime]) -> None:
    rt = limited(failure_rate_limit="2/day", trusted_proxies="127.0.0.1")
    with live_server(
        AuthgateMiddleware(Echo().app, rules=RULES, runtime=rt), proxy_headers=False
    ) as url:

        def guess(client: str) -> int:
            headers = {"X-API-Key": "ag_" + "v" * 46, "X-Forwarded-For": client}
            return httpx.get(url + "/private/x", headers=headers).status_code

        assert [guess(f"2001:db8:5:6::{index}") for index in (1, 2, 3)] == [401, 401, 429]
        assert guess("2001:db8:5:6:ffff:ffff:ffff:ffff") == 429
        assert guess("2001:db8:5:7::1") == 401
