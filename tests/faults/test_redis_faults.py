"""Redis hung (SIGSTOP), killed (SIGKILL) and back while traffic flows.

Each test runs authgate's real server (uvicorn, the root app, SQLite) against a
redis-server of its own (tests/faults/redisserver.py) and asserts the answers: a valid key
is never refused 401 and is answered before a generous client timeout, a revoked key is
refused once the change feed's bound has passed, the admin API works without Redis,
``/health`` stays 200 while ``/ready`` names Redis, and everything recovers without a
restart of authgate. Timings are never asserted beyond "answered before the timeout";
the latency figures live in bench/bench_redis_hung.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from authgate.credentials.tokens import generate_token
from authgate.manage.keys import Actor
from authgate.runtime import Runtime
from authgate.server.compose import build_root_app
from authgate.settings import load_settings
from tests.faults.redisserver import RedisServer
from tests.support import live_server, wait_until

ACTOR = Actor("fault-test", source="pytest")
V1 = "/authgate/v1"
WHOAMI = f"{V1}/whoami"
# Generous next to the Redis deadlines (0.25 s each by default): a request that waits on a
# hung Redis, or for a worker thread that does, takes seconds instead.
CLIENT_TIMEOUT = 3.0
BAD_CLIENTS = 60
RECOVERY_TIMEOUT = 15.0


@dataclass
class Instance:
    runtime: Runtime
    url: str
    admin: str

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"X-API-Key": token} if token is not None else {}
        return httpx.get(self.url + path, headers=headers, timeout=CLIENT_TIMEOUT)

    def whoami(self, token: str) -> int:
        return self.get(WHOAMI, token).status_code

    def ready(self) -> httpx.Response:
        return self.get(f"{V1}/ready")

    def audit_actions(self, action: str) -> list[dict[str, Any]]:
        response = self.get(f"{V1}/audit?action={action}", self.admin)
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events


@pytest.fixture
def instances(tmp_path: Path, redis_server: RedisServer) -> Iterator[Callable[..., Instance]]:
    """Started authgate servers on one SQLite store and the test's own Redis."""
    stack = ExitStack()
    data_dir = tmp_path / "data"

    def start(**overrides: Any) -> Instance:
        settings = load_settings(
            data_dir=data_dir,
            redis_url=redis_server.url,
            localhost_bypass="off",
            access_log=False,
            **overrides,
        )
        runtime = Runtime(settings)
        runtime.start()
        stack.callback(runtime.close)
        url = stack.enter_context(live_server(build_root_app(runtime)))
        assert runtime.admin_key is not None
        return Instance(runtime, url, runtime.admin_key.path.read_text().strip())

    with stack:
        yield start


@contextmanager
def bad_token_traffic(url: str, clients: int = BAD_CLIENTS) -> Iterator[Counter[int | str]]:
    """``clients`` threads sending well-formed tokens nobody holds, each one a store
    lookup and a failure to count, until the block ends."""
    stop = threading.Event()
    answers: Counter[int | str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                headers = {"X-API-Key": generate_token().token}
                try:
                    answer: int | str = http.get(url + WHOAMI, headers=headers).status_code
                except httpx.TransportError as exc:
                    answer = type(exc).__name__
                with lock:
                    answers[answer] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: sum(answers.values()) >= clients, timeout=30)
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=35)


def assert_ready(instance: Instance) -> None:
    assert wait_until(lambda: instance.ready().status_code == 200, timeout=RECOVERY_TIMEOUT)


def assert_not_ready_for_redis(instance: Instance) -> None:
    response = instance.ready()
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "not_ready"
    failing = {problem["dependency"]: problem for problem in body["failing"]}
    assert set(failing) == {"redis"}
    assert failing["redis"]["seconds"] >= 0
    assert "redis" in body["detail"]


def test_a_hung_redis_under_bad_token_traffic_holds_no_request(
    instances: Callable[..., Instance], redis_server: RedisServer
) -> None:
    served = instances()
    other = instances()  # the same store and Redis: revocations reach it by either
    shared = served.runtime.keys.create(ACTOR, name="shared")
    assert other.whoami(shared.token) == 200  # now in the other instance's memory
    uncached = [served.runtime.keys.create(ACTOR, name=f"fresh-{i}").token for i in range(4)]

    with bad_token_traffic(served.url) as bad_answers:
        redis_server.pause()
        try:
            # A valid key never seen before still gets a worker thread and the store.
            for token in uncached:
                assert served.whoami(token) == 200
            assert served.get(f"{V1}/health").status_code == 200
            assert_not_ready_for_redis(served)
            # The admin API needs no Redis.
            listed = served.get(f"{V1}/tokens?all=true", served.admin)
            assert listed.status_code == 200
            revoked = httpx.delete(
                f"{served.url}{V1}/tokens/{shared.record.id}",
                headers={"X-API-Key": served.admin},
                timeout=CLIENT_TIMEOUT,
            )
            assert revoked.status_code == 200
            # Refused; 429 when this address is over the failure limit the traffic filled.
            assert served.whoami(shared.token) in {401, 429}
            # The broadcast cannot reach the other instance: the change feed does.
            assert wait_until(lambda: other.whoami(shared.token) == 401, timeout=3.0)
            assert [other.whoami(shared.token) for _ in range(5)] == [401] * 5
            assert other.whoami(uncached[0]) == 200
        finally:
            redis_server.resume()
        # Failures are still refused, never let through, never a 503.
        assert set(bad_answers) <= {401, 429}, bad_answers

    assert_ready(served)
    assert served.whoami(uncached[1]) == 200
    # The outage is in the audit log, its end too.
    assert wait_until(lambda: bool(served.audit_actions("redis.up")), timeout=RECOVERY_TIMEOUT)
    (down,) = served.audit_actions("redis.down")[-1:]
    assert down["outcome"] == "failure"
    assert down["target"] == "redis"


def test_a_hung_redis_leaves_key_limits_to_memory_without_waiting(
    instances: Callable[..., Instance], redis_server: RedisServer
) -> None:
    served = instances(key_rate_limit="1000/second")
    cached = served.runtime.keys.create(ACTOR, name="cached").token
    assert served.whoami(cached) == 200

    redis_server.pause()
    try:
        # The first few wait out the socket deadline, then the breaker answers at once.
        assert [served.whoami(cached) for _ in range(10)] == [200] * 10
        assert served.runtime.limiter.fallback_hits > 0
        assert_not_ready_for_redis(served)
    finally:
        redis_server.resume()
    assert_ready(served)
    assert served.whoami(cached) == 200


def test_a_killed_redis_leaves_key_limits_to_memory_and_comes_back(
    instances: Callable[..., Instance], redis_server: RedisServer
) -> None:
    served = instances(key_rate_limit="1000/second")
    cached = served.runtime.keys.create(ACTOR, name="cached").token
    victim = served.runtime.keys.create(ACTOR, name="victim")
    assert served.whoami(cached) == 200

    redis_server.kill()
    for index in range(5):
        assert served.whoami(cached) == 200
        fresh = served.runtime.keys.create(ACTOR, name=f"fresh-{index}").token
        assert served.whoami(fresh) == 200
    assert served.runtime.limiter.fallback_hits > 0
    assert served.get(f"{V1}/health").status_code == 200
    assert_not_ready_for_redis(served)
    # A key can be revoked over HTTP while Redis is gone, and the revocation holds.
    assert served.get(f"{V1}/tokens?all=true", served.admin).status_code == 200
    revoked = httpx.delete(
        f"{served.url}{V1}/tokens/{victim.record.id}",
        headers={"X-API-Key": served.admin},
        timeout=CLIENT_TIMEOUT,
    )
    assert revoked.status_code == 200
    assert served.whoami(victim.token) == 401

    redis_server.start()  # same port, empty: authgate is not restarted
    assert_ready(served)
    assert served.whoami(cached) == 200
    # Counting is shared through Redis again.
    counts = redis.Redis(port=redis_server.port, socket_timeout=1)
    try:
        assert wait_until(
            lambda: served.whoami(cached) == 200 and bool(counts.keys("LIMITS*")), timeout=5
        )
    finally:
        counts.close()
    assert served.whoami(victim.token) == 401
    assert wait_until(lambda: bool(served.audit_actions("redis.up")), timeout=RECOVERY_TIMEOUT)
    assert served.audit_actions("redis.down")


def test_rate_limit_failure_closed_refuses_with_503_until_redis_is_back(
    instances: Callable[..., Instance], redis_server: RedisServer
) -> None:
    served = instances(key_rate_limit="1000/second", rate_limit_failure="closed")
    cached = served.runtime.keys.create(ACTOR, name="cached").token
    assert served.whoami(cached) == 200

    redis_server.kill()
    for _ in range(10):
        response = served.get(WHOAMI, cached)
        assert response.status_code == 503  # never 401 for a valid key, never uncounted
        assert response.json()["code"] == "not_ready"
    assert served.get(f"{V1}/health").status_code == 200
    assert_not_ready_for_redis(served)

    redis_server.start()
    assert wait_until(lambda: served.whoami(cached) == 200, timeout=RECOVERY_TIMEOUT)
    assert_ready(served)
