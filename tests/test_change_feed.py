"""The two races around the key cache: a late-committing change, and a revoke mid-lookup."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from authgate.errors import InvalidCredentials
from authgate.facts import RequestFacts
from authgate.manage.keys import Actor
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.settings import load_settings
from authgate.store.schema import key_changes
from tests.support import sql_store


def _facts(token: str) -> RequestFacts:
    return RequestFacts(method="GET", path="/", headers=(("x-api-key", token),))


def test_a_change_committed_after_a_later_one_is_still_seen(
    postgres_url: str, data_dir: Path
) -> None:
    # PostgreSQL only: SQLite has one writer at a time, so it cannot commit out of order.
    settings = load_settings(data_dir=data_dir, database_url=postgres_url, change_poll_seconds=3600)
    runtime = Runtime(settings)
    runtime.start()
    try:
        early = runtime.keys.create(Actor("t"), name="early")
        late = runtime.keys.create(Actor("t"), name="late")
        for created in (early, late):
            assert isinstance(runtime.authenticator.authenticate(_facts(created.token)), Principal)
        now = datetime.now(UTC)
        engine = sql_store(runtime.store).engine
        with engine.connect() as slow, engine.connect() as fast:
            slow_tx = slow.begin()
            # Takes its sequence number first, but commits last.
            slow.execute(sa.insert(key_changes).values(key_id=early.record.id, at=now))
            with fast.begin():
                fast.execute(sa.insert(key_changes).values(key_id=late.record.id, at=now))
            runtime.poll_changes()
            assert runtime.cache.get(late.record.digest) is None
            assert runtime.cache.get(early.record.digest) is not None
            slow_tx.commit()
        runtime.poll_changes()
        assert runtime.cache.get(early.record.digest) is None
    finally:
        runtime.close()


def test_a_revoke_during_a_store_read_does_not_put_the_key_back(runtime: Runtime) -> None:
    created = runtime.keys.create(Actor("t"), name="racy")
    store = runtime.store
    real_find = store.find_key_by_digest

    def find_then_revoke(digest: str) -> Any:
        record = real_find(digest)  # the read sees the key still live...
        runtime.keys.revoke(Actor("t"), created.record.id)  # ...and a revoke lands now
        return record

    store.find_key_by_digest = find_then_revoke  # type: ignore[method-assign]
    try:
        runtime.authenticator.authenticate(_facts(created.token))
    finally:
        store.find_key_by_digest = real_find  # type: ignore[method-assign]
    assert runtime.cache.get(created.record.digest) is None
    assert isinstance(runtime.authenticator.authenticate(_facts(created.token)), InvalidCredentials)
