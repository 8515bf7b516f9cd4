"""The core authenticator over a real runtime, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from authgate.credentials.tokens import generate_token
from authgate.errors import InvalidCredentials, MissingCredentials, NotReady
from authgate.manage.keys import Actor
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.settings import load_settings
from authgate.store import open_store
from tests.foundation.helpers import CallCounter, ManualClock, api_key, facts
from tests.support import ROOMY_STORE, free_port, wait_until

ACTOR = Actor("tester", source="pytest")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def started(make_settings: Callable[..., Any], clock: ManualClock) -> Iterator[Runtime]:
    """A started runtime with a settable clock; no background flush during a test."""
    runtime = Runtime(make_settings(usage_flush_seconds=3600), clock=clock)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def lookups(started: Runtime, monkeypatch: pytest.MonkeyPatch) -> CallCounter:
    spy = CallCounter(started.store.find_key_by_digest)
    monkeypatch.setattr(started.store, "find_key_by_digest", spy)
    return spy


def test_valid_key_is_served_from_the_cache_without_store_reads(
    started: Runtime, lookups: CallCounter
) -> None:
    created = started.keys.create(ACTOR, name="svc", scopes=["read", "write"])
    for _ in range(500):
        decision = started.authenticator.authenticate(api_key(created.token))
        assert isinstance(decision, Principal)
        assert decision.id == created.record.id
        assert decision.kind == "api_key"
        assert decision.scopes == frozenset({"read", "write"})
    assert lookups.calls == 1


def test_bearer_and_api_key_headers_are_both_accepted(
    started: Runtime, lookups: CallCounter
) -> None:
    created = started.keys.create(ACTOR, name="svc")
    for request in (
        api_key(created.token),
        facts(("authorization", f"Bearer {created.token}")),
        facts(("authorization", f"bearer {created.token}")),
        facts(("x-api-key", created.token), ("authorization", f"Bearer {created.token}")),
    ):
        decision = started.authenticator.authenticate(request)
        assert isinstance(decision, Principal), request
        assert decision.id == created.record.id
    assert lookups.calls == 1


MALFORMED = {
    "prefix": lambda t: "gh_" + t[3:],
    "alphabet": lambda t: t[:20] + "-" + t[21:],
    "too short": lambda t: t[:-1],
    "too long": lambda t: t + "x",
    "checksum": lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),
    "secret changed": lambda t: t[:10] + ("a" if t[10] != "a" else "b") + t[11:],
}


@pytest.mark.parametrize("mutation", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_tokens_are_refused_before_any_lookup(
    started: Runtime, lookups: CallCounter, mutation: Callable[[str], str]
) -> None:
    valid = started.keys.create(ACTOR, name="svc").token
    token = mutation(valid)
    assert token != valid
    decision = started.authenticator.authenticate(api_key(token))
    assert isinstance(decision, InvalidCredentials)
    assert (decision.status, decision.code) == (401, "invalid_token")
    assert lookups.calls == 0


def test_missing_credentials_is_a_different_outcome(started: Runtime) -> None:
    decision = started.authenticator.authenticate(facts(("accept", "*/*")))
    assert isinstance(decision, MissingCredentials)
    assert decision.status == 401
    assert decision.code == "missing_credentials"
    assert decision.headers["WWW-Authenticate"] == 'Bearer realm="authgate"'


def test_unknown_well_formed_token_is_refused_then_remembered(
    started: Runtime, lookups: CallCounter
) -> None:
    unknown = generate_token().token
    first = started.authenticator.authenticate(api_key(unknown))
    assert isinstance(first, InvalidCredentials)
    assert first.headers["WWW-Authenticate"] == 'Bearer realm="authgate", error="invalid_token"'
    assert lookups.calls == 1
    for _ in range(50):
        assert isinstance(started.authenticator.authenticate(api_key(unknown)), InvalidCredentials)
    assert lookups.calls == 1


def test_expired_key_is_refused(started: Runtime, clock: ManualClock) -> None:
    created = started.keys.create(ACTOR, name="short", expires_in=timedelta(hours=1))
    assert isinstance(started.authenticator.authenticate(api_key(created.token)), Principal)
    clock.advance(minutes=59)
    assert isinstance(started.authenticator.authenticate(api_key(created.token)), Principal)
    clock.advance(minutes=1)
    assert isinstance(
        started.authenticator.authenticate(api_key(created.token)), InvalidCredentials
    )


def test_key_expired_before_its_first_use_is_refused(
    started: Runtime, clock: ManualClock, lookups: CallCounter
) -> None:
    created = started.keys.create(ACTOR, name="short", expires_in=timedelta(minutes=5))
    clock.advance(minutes=6)
    assert isinstance(
        started.authenticator.authenticate(api_key(created.token)), InvalidCredentials
    )
    assert lookups.calls == 1


def test_revoked_key_is_refused_at_once(started: Runtime) -> None:
    created = started.keys.create(ACTOR, name="svc")
    assert isinstance(started.authenticator.authenticate(api_key(created.token)), Principal)
    started.keys.revoke(ACTOR, created.record.id)
    assert isinstance(
        started.authenticator.authenticate(api_key(created.token)), InvalidCredentials
    )


def test_key_revoked_by_another_runtime_is_refused_after_the_change_feed(
    started: Runtime, make_settings: Callable[..., Any]
) -> None:
    created = started.keys.create(ACTOR, name="svc")
    assert isinstance(started.authenticator.authenticate(api_key(created.token)), Principal)
    other = Runtime(make_settings())
    try:
        other.prepare_store()
        other.keys.revoke(ACTOR, created.record.id)
    finally:
        other.close()
    # The revocation reaches this runtime through the change feed in the store.
    started.poll_changes()
    assert isinstance(
        started.authenticator.authenticate(api_key(created.token)), InvalidCredentials
    )


def test_rotation_keeps_both_keys_until_the_grace_ends(
    started: Runtime, clock: ManualClock
) -> None:
    old = started.keys.create(ACTOR, name="svc", scopes=["read"], expires_in=timedelta(days=30))
    assert isinstance(started.authenticator.authenticate(api_key(old.token)), Principal)
    clock.advance(days=1)
    new = started.keys.rotate(ACTOR, old.record.id, grace=timedelta(hours=1))
    assert new.token != old.token
    assert new.record.name == "svc"
    assert new.record.scopes == ("read",)
    # 30 days of life from the rotation, like the key it replaces.
    assert new.record.expires_at == clock() + timedelta(days=30)

    for _ in range(3):
        old_decision = started.authenticator.authenticate(api_key(old.token))
        new_decision = started.authenticator.authenticate(api_key(new.token))
        assert isinstance(old_decision, Principal)
        assert old_decision.id == old.record.id
        assert isinstance(new_decision, Principal)
        assert new_decision.id == new.record.id
    clock.advance(minutes=59)
    assert isinstance(started.authenticator.authenticate(api_key(old.token)), Principal)
    clock.advance(minutes=1)
    assert isinstance(started.authenticator.authenticate(api_key(old.token)), InvalidCredentials)
    assert isinstance(started.authenticator.authenticate(api_key(new.token)), Principal)


def test_usage_is_buffered_then_flushed(
    started: Runtime, monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    writes = CallCounter(started.store.add_usage)
    monkeypatch.setattr(started.store, "add_usage", writes)
    created = started.keys.create(ACTOR, name="svc")
    other = started.keys.create(ACTOR, name="other")
    for _ in range(25):
        started.authenticator.authenticate(api_key(created.token))
    for _ in range(4):
        started.authenticator.authenticate(api_key(other.token))
    assert writes.calls == 0
    before = started.store.get_key(created.record.id)
    assert before is not None
    assert (before.use_count, before.last_used_at) == (0, None)

    started.flush_usage()
    assert writes.calls == 1
    after = started.store.get_key(created.record.id)
    other_after = started.store.get_key(other.record.id)
    assert after is not None
    assert other_after is not None
    assert after.use_count == 25
    assert after.last_used_at is not None
    assert other_after.use_count == 4

    # Nothing pending: no write at all.
    started.flush_usage()
    assert writes.calls == 1
    started.authenticator.authenticate(api_key(created.token))
    started.flush_usage()
    assert started.store.get_key(created.record.id).use_count == 26  # type: ignore[union-attr]


def test_usage_is_flushed_in_the_background_and_on_stop(
    make_settings: Callable[..., Any],
) -> None:
    runtime = Runtime(make_settings(usage_flush_seconds=0.1))
    runtime.start()
    try:
        created = runtime.keys.create(ACTOR, name="svc")
        for _ in range(7):
            runtime.authenticator.authenticate(api_key(created.token))

        def flushed(count: int) -> bool:
            record = runtime.store.get_key(created.record.id)
            return record is not None and record.use_count == count

        assert wait_until(lambda: flushed(7))
    finally:
        runtime.close()

    quiet = Runtime(make_settings(usage_flush_seconds=3600))
    quiet.start()
    for _ in range(2):
        quiet.authenticator.authenticate(api_key(created.token))
    quiet.close()
    reopened = open_store(make_settings().resolved_database_url, ROOMY_STORE)
    try:
        assert reopened.get_key(created.record.id).use_count == 9  # type: ignore[union-attr]
    finally:
        reopened.close()


def test_usage_survives_a_failed_flush(
    started: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    created = started.keys.create(ACTOR, name="svc")
    for _ in range(3):
        started.authenticator.authenticate(api_key(created.token))
    real_add_usage = started.store.add_usage

    def unreachable(_batch: object) -> None:
        raise NotReady("the store is down for this test")

    monkeypatch.setattr(started.store, "add_usage", unreachable)
    started.flush_usage()
    assert "usage counters not flushed yet" in caplog.text
    monkeypatch.setattr(started.store, "add_usage", real_add_usage)
    started.flush_usage()
    assert started.store.get_key(created.record.id).use_count == 3  # type: ignore[union-attr]


def test_not_started_runtime_answers_not_ready_never_401(
    make_settings: Callable[..., Any],
) -> None:
    runtime = Runtime(make_settings())
    try:
        for request in (
            facts(),
            api_key("garbage"),
            api_key(generate_token().token),
        ):
            decision = runtime.authenticator.authenticate(request)
            assert isinstance(decision, NotReady)
            assert (decision.status, decision.code) == (503, "not_ready")
    finally:
        runtime.close()


def test_store_down_answers_not_ready_for_a_lookup(data_dir: Path) -> None:
    url = f"postgresql://postgres:pw-never-shown@127.0.0.1:{free_port()}/authgate"
    runtime = Runtime(load_settings(data_dir=data_dir, database_url=url))
    try:
        with pytest.raises(NotReady) as caught:
            runtime.start()
        assert "pw-never-shown" not in caught.value.detail
        # The gate never opened: every credential, good-looking or not, gets 503.
        decision = runtime.authenticator.authenticate(api_key(generate_token().token))
        assert isinstance(decision, NotReady)
    finally:
        runtime.close()


def test_store_lost_after_start_answers_not_ready_for_uncached_keys(
    started: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = started.keys.create(ACTOR, name="cached")
    uncached = started.keys.create(ACTOR, name="uncached")
    assert isinstance(started.authenticator.authenticate(api_key(cached.token)), Principal)
    real_lookup = started.store.find_key_by_digest
    outage = {"on": True}

    def flaky(digest: str) -> object:
        if outage["on"]:
            raise NotReady("the store is down for this test")
        return real_lookup(digest)

    monkeypatch.setattr(started.store, "find_key_by_digest", flaky)
    decision = started.authenticator.authenticate(api_key(uncached.token))
    assert isinstance(decision, NotReady)
    assert decision.status == 503
    # The hot path does not need the store.
    assert isinstance(started.authenticator.authenticate(api_key(cached.token)), Principal)
    # An outage is not remembered as "unknown key": once the store is back, it works.
    outage["on"] = False
    assert isinstance(started.authenticator.authenticate(api_key(uncached.token)), Principal)


def test_admin_key_authenticates_as_admin(started: Runtime) -> None:
    assert started.admin_key is not None
    token = started.admin_key.path.read_text().strip()
    decision = started.authenticator.authenticate(api_key(token))
    assert isinstance(decision, Principal)
    assert decision.kind == "admin_key"
    assert decision.is_admin


def test_a_cached_key_is_looked_up_again_once_the_cache_ttl_ends(
    make_settings: Callable[..., Any], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounded in time: even a change the feed never announced is seen after the TTL."""
    runtime = Runtime(make_settings(cache_ttl_seconds=30, usage_flush_seconds=3600), clock=clock)
    runtime.start()
    try:
        created = runtime.keys.create(ACTOR, name="svc")
        spy = CallCounter(runtime.store.find_key_by_digest)
        monkeypatch.setattr(runtime.store, "find_key_by_digest", spy)
        assert isinstance(runtime.authenticator.authenticate(api_key(created.token)), Principal)
        clock.advance(seconds=29)
        assert isinstance(runtime.authenticator.authenticate(api_key(created.token)), Principal)
        assert spy.calls == 1
        clock.advance(seconds=2)
        assert isinstance(runtime.authenticator.authenticate(api_key(created.token)), Principal)
        assert spy.calls == 2
    finally:
        runtime.close()


@pytest.mark.parametrize("revoked", [False, True], ids=["live", "revoked"])
def test_requests_that_miss_memory_together_share_one_store_read(
    make_settings: Callable[..., Any], clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
    revoked: bool,
) -> None:  # fmt: skip
    """When a busy key is not in memory (its cache entry just ended), every request in
    flight misses at once: one reads the store and the others wait for its answer. A
    refusal is not shared, each waiting request reads it for itself, and all are refused."""
    runtime = Runtime(make_settings(usage_flush_seconds=3600), clock=clock)
    runtime.start()
    try:
        created = runtime.keys.create(ACTOR, name="busy")
        if revoked:
            runtime.keys.revoke(ACTOR, created.record.id)
        read = runtime.store.find_key_by_digest
        release = threading.Event()

        def held_read(digest: str) -> Any:  # the real store, once every request is waiting
            release.wait(10)
            return read(digest)

        spy = CallCounter(held_read)
        monkeypatch.setattr(runtime.store, "find_key_by_digest", spy)
        with ThreadPoolExecutor(8) as pool:
            asked = [
                pool.submit(runtime.authenticator.authenticate, api_key(created.token))
                for _ in range(8)
            ]
            wait_until(lambda: spy.calls == 1)
            time.sleep(0.3)  # the other seven reach the lookup meanwhile
            assert spy.calls == 1
            release.set()
            decisions = [future.result(timeout=20) for future in asked]
        if revoked:
            assert all(isinstance(d, InvalidCredentials) for d in decisions)
        else:
            assert all(isinstance(d, Principal) and d.id == created.record.id for d in decisions)
            assert spy.calls == 1
    finally:
        runtime.close()
