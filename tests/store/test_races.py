"""Writers racing each other, on SQLite and PostgreSQL: each race has exactly one winner."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from authgate.errors import Conflict
from authgate.store import SqlStore, open_store
from tests.store.support import T0, TABLES, make_key
from tests.support import sql_store

RACERS = 6


def race(attempt: Callable[[int], None]) -> tuple[int, list[BaseException]]:
    """Run ``attempt(i)`` in RACERS threads released together: (wins, failures)."""
    start = threading.Barrier(RACERS)
    wins: list[int] = []
    failures: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            attempt(i)
        except BaseException as exc:  # collected for the assertions
            failures.append(exc)
        else:
            wins.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return len(wins), failures


def test_creates_racing_for_one_name_have_one_winner(store: SqlStore) -> None:
    wins, failures = race(lambda i: store.insert_key(make_key("shared"), name_free_at=T0))
    assert wins == 1
    assert len(failures) == RACERS - 1
    assert all(isinstance(f, Conflict) and "shared" in str(f) for f in failures), failures
    assert len([k for k in store.list_keys() if k.name == "shared"]) == 1


def test_a_taken_name_is_refused_and_nothing_is_written(store: SqlStore) -> None:
    store.insert_key(make_key("taken"), name_free_at=T0)
    loser = make_key("taken")
    with pytest.raises(Conflict, match="taken"):
        store.insert_key(loser, name_free_at=T0)
    assert store.get_key(loser.id) is None


def test_a_name_is_free_again_once_its_key_expired_or_was_revoked(store: SqlStore) -> None:
    expired = make_key("reused", expires_at=T0 + timedelta(hours=1))
    store.insert_key(expired, name_free_at=T0)
    store.insert_key(make_key("reused"), name_free_at=T0 + timedelta(hours=2))
    revoked = make_key("again")
    store.insert_key(revoked, name_free_at=T0)
    store.revoke_key(revoked.id, T0)
    store.insert_key(make_key("again"), name_free_at=T0)


def test_rotations_racing_on_one_key_have_one_successor(store: SqlStore) -> None:
    old = make_key("rotating")
    store.insert_key(old)
    successors = [make_key("rotating") for _ in range(RACERS)]
    results: list[bool] = []

    def rotate(i: int) -> None:
        results.append(store.rotate_key(old.id, successors[i], T0 + timedelta(hours=1)))

    wins, failures = race(rotate)
    assert failures == []
    assert sorted(results) == [False] * (RACERS - 1) + [True]
    after = store.get_key(old.id)
    assert after is not None
    kept = [s.id for s in successors if store.get_key(s.id) is not None]
    assert kept == [after.rotated_to]


def test_a_revoked_key_is_not_rotated(store: SqlStore) -> None:
    old = make_key("gone")
    store.insert_key(old)
    store.revoke_key(old.id, T0)
    successor = make_key("gone")
    assert store.rotate_key(old.id, successor, T0 + timedelta(hours=1)) is False
    assert store.get_key(successor.id) is None


# Each process waits for the "go" file, so that all of them migrate at the same moment.
MIGRATE = """
import os, sys, time
from authgate.store import open_store
store = open_store(sys.argv[1])
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
store.migrate()
"""


def test_processes_migrating_a_fresh_database_together_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    """Instances started together on a fresh store: every one comes up."""
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, database_url, str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    time.sleep(3)  # every process imported authgate and waits
    go.touch()
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 6, errors
    migrated = open_store(database_url)
    try:
        assert TABLES <= set(sa.inspect(sql_store(migrated).engine).get_table_names())
    finally:
        migrated.close()
