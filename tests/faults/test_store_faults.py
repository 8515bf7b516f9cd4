"""The store's failure policy, against a PostgreSQL cluster of the tests' own that is
stopped (SIGSTOP: connections stay open, nothing answers), killed and brought back while
a real uvicorn serves authgate.

The policy (docs/operations.md): cached keys are served until their cache entry ends;
anything that needs the store gets 503 ``not_ready`` within the store's deadline, never
401 and never a hang; writes get 503; once the store answers again everything works
without a restart, and the audit log records the degraded period. Every client has a
timeout, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from authgate.credentials.bootstrap import read_admin_key
from authgate.credentials.tokens import generate_token
from authgate.errors import NotReady
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, KeyService
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.server import create_app
from authgate.settings import load_settings
from authgate.store import StoreLimits, open_store
from tests.faults.pgcluster import PgCluster
from tests.support import live_server, sql_store, wait_until

ACTOR = Actor("tester", source="pytest")
WHOAMI = "/authgate/v1/whoami"
# The store's deadline is 1 s by default; a client that waits this long saw a hang.
CLIENT_TIMEOUT = 5.0
ROUNDS = 5


class Served:
    def __init__(self, runtime: Runtime, url: str) -> None:
        self.runtime = runtime
        self.url = url
        assert runtime.admin_key is not None
        self.admin = {"X-API-Key": read_admin_key(runtime.admin_key.path)}
        self.client = httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT)

    def whoami(self, token: str) -> httpx.Response:
        return self.client.get(WHOAMI, headers={"X-API-Key": token})

    def create_token(self, name: str) -> httpx.Response:
        return self.client.post("/authgate/v1/tokens", json={"name": name}, headers=self.admin)

    def degraded_periods(self) -> list[dict[str, Any]]:
        response = self.client.get(
            "/authgate/v1/audit", params={"action": "store.degraded"}, headers=self.admin
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events


@pytest.fixture
def serve(running_cluster: PgCluster, data_dir: Path) -> Iterator[Callable[..., Served]]:
    """Start authgate on a fresh database of the fault cluster, behind a real uvicorn."""
    started: list[tuple[Runtime, Any, Served]] = []

    def start(**overrides: Any) -> Served:
        settings = load_settings(
            data_dir=data_dir,
            database_url=running_cluster.new_database(),
            localhost_bypass="off",
            **overrides,
        )
        runtime = Runtime(settings)
        server = live_server(create_app(runtime))
        served = Served(runtime, server.__enter__())
        started.append((runtime, server, served))
        return served

    try:
        yield start
    finally:
        running_cluster.resume()
        for runtime, server, served in started:
            served.client.close()
            server.__exit__(None, None, None)
            runtime.close()


def assert_not_ready(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "not_ready"


def test_hung_store_cached_keys_answer_the_rest_503_then_recovery(
    serve: Callable[..., Served], running_cluster: PgCluster
) -> None:
    served = serve()
    cached = served.runtime.keys.create(ACTOR, name="cached")
    uncached = served.runtime.keys.create(ACTOR, name="uncached")
    assert served.whoami(cached.token).status_code == 200  # now in the cache
    unknown = generate_token().token  # well formed: only the store can tell

    running_cluster.pause()
    try:
        for round_ in range(ROUNDS):
            assert served.whoami(cached.token).status_code == 200
            assert_not_ready(served.whoami(uncached.token))  # never 401 for a valid key
            assert_not_ready(served.whoami(unknown))
            # Liveness stays up (the process serves); readiness names the store.
            assert served.client.get("/authgate/v1/health").status_code == 200
            ready = served.client.get("/authgate/v1/ready")
            assert_not_ready(ready)
            assert [f["dependency"] for f in ready.json()["failing"]] == ["store"]
            created = served.create_token(f"during-{round_}")
            assert_not_ready(created)
            assert "store" in created.json()["detail"]
        # Many requests at once that need the store: each answers, and the cached key
        # keeps answering beside them (the hung store holds no server worker threads).
        with ThreadPoolExecutor(48) as pool:
            misses = [pool.submit(served.whoami, generate_token().token) for _ in range(96)]
            hits = [pool.submit(served.whoami, cached.token) for _ in range(48)]
            for miss in misses:
                assert_not_ready(miss.result())
            for hit in hits:
                assert hit.result().status_code == 200
    finally:
        running_cluster.resume()

    assert wait_until(lambda: served.whoami(uncached.token).status_code == 200, timeout=20)
    assert served.whoami(unknown).status_code == 401
    assert served.client.get("/authgate/v1/ready").status_code == 200
    assert served.create_token("after").status_code == 201
    assert wait_until(lambda: len(served.degraded_periods()) == 1, timeout=10)
    period = served.degraded_periods()[0]
    assert period["outcome"] == "failure"
    assert period["detail"]["since"] < period["detail"]["until"]


def test_revoked_key_is_not_served_past_its_cache_entry_while_the_store_hangs(
    serve: Callable[..., Served], running_cluster: PgCluster
) -> None:
    ttl = 2.0
    served = serve(cache_ttl_seconds=ttl)
    key = served.runtime.keys.create(ACTOR, name="soon-revoked")
    assert served.whoami(key.token).status_code == 200
    cached_until = time.monotonic() + ttl
    # Revoked behind the server's back (no broadcast), then the store hangs: the server
    # may or may not have seen the change feed before; either way its cache entry ends.
    other = open_store(served.runtime.settings.resolved_database_url)
    try:
        assert other.revoke_key(key.record.id, served.runtime.clock())
    finally:
        other.close()
    running_cluster.pause()
    try:
        answers_after = []
        deadline = cached_until + 3.0
        while time.monotonic() < deadline:
            sent = time.monotonic()
            status = served.whoami(key.token).status_code
            assert status in {200, 401, 503}
            if sent > cached_until:
                answers_after.append(status)
            threading.Event().wait(0.1)
        assert answers_after
        assert 200 not in answers_after
    finally:
        running_cluster.resume()
    assert wait_until(lambda: served.whoami(key.token).status_code == 401, timeout=20)


def test_killed_store_then_restarted_recovers_without_a_restart(
    serve: Callable[..., Served], running_cluster: PgCluster
) -> None:
    served = serve()
    cached = served.runtime.keys.create(ACTOR, name="cached")
    uncached = served.runtime.keys.create(ACTOR, name="uncached")
    assert served.whoami(cached.token).status_code == 200

    running_cluster.kill()
    for _ in range(ROUNDS):
        assert served.whoami(cached.token).status_code == 200
        assert_not_ready(served.whoami(uncached.token))
        assert_not_ready(served.create_token("during"))
    running_cluster.start()

    assert wait_until(lambda: served.whoami(uncached.token).status_code == 200, timeout=20)
    assert served.create_token("after").status_code == 201
    assert wait_until(lambda: len(served.degraded_periods()) == 1, timeout=10)


def test_sqlite_write_lock_held_elsewhere_fails_writes_fast_and_reads_go_on(
    data_dir: Path,
) -> None:
    """SQLite's "hung" store: another process holds the write lock (a CLI, a backup)."""
    runtime = Runtime(load_settings(data_dir=data_dir, localhost_bypass="off"))
    runtime.start()
    try:
        key = runtime.keys.create(ACTOR, name="existing")
        holder = sqlite3.connect(runtime.settings.resolved_database_url.removeprefix("sqlite:///"))
        try:
            holder.execute("BEGIN IMMEDIATE")
            with ThreadPoolExecutor(1) as pool:
                write = pool.submit(runtime.keys.create, ACTOR, name="blocked")
                with pytest.raises(NotReady):
                    write.result(timeout=CLIENT_TIMEOUT)  # never the old 30 s wait
            # WAL: readers are not blocked by the writer, so lookups go on.
            principal = runtime.authenticator.authenticate_token(key.token)
            assert isinstance(principal, Principal) and principal.id == key.record.id
        finally:
            holder.rollback()
            holder.close()
        assert runtime.keys.create(ACTOR, name="after").record.name == "after"
    finally:
        runtime.close()


def test_a_write_past_its_deadline_is_rolled_back_not_committed_later(
    running_cluster: PgCluster,
) -> None:
    """The caller was told 503: the write must not land when the server wakes up."""
    store = open_store(running_cluster.new_database(), StoreLimits(breaker_failures=1_000))
    store.migrate()
    keys = KeyService(store, Auditor(store), token_prefix="ag")
    try:
        keys.create(ACTOR, name="warm")  # a pooled connection, open and idle
        running_cluster.pause()
        try:
            for index in range(12):  # more calls than the store has threads
                with pytest.raises(NotReady, match="did not answer within"):
                    keys.create(ACTOR, name=f"late-{index}")
        finally:
            running_cluster.resume()
        # Every thread came back: as many calls as the pool has threads, all answered.
        with ThreadPoolExecutor(sql_store(store).limits.threads) as pool:
            names = [f"after-{i}" for i in range(sql_store(store).limits.threads)]
            assert wait_until(lambda: store.list_keys() is not None, timeout=20)
            created = list(pool.map(lambda name: keys.create(ACTOR, name=name), names))
        assert len(created) == sql_store(store).limits.threads
        stored = {record.name for record in store.list_keys()}
        assert not any(name.startswith("late-") for name in stored), stored
        events = store.list_audit(action="key.create", limit=1000)
        assert not any(e.detail["name"].startswith("late-") for e in events)
    finally:
        store.close()
