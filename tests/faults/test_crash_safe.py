"""Crash-safe writes: a process killed (SIGKILL) in the middle of changing keys leaves
every change with its audit entry and every acknowledged change in the store.

Writer processes (forked by ``crash_writer.py``) create, rotates and revokes keys and note each
change once the store has acknowledged it; the test kills it at random points, then
reads the store. A second test kills it while its audit entry waits for a lock the test
holds on the audit table: the moment the issue's 17 unaudited keys were lost in.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, KeyService
from authgate.store import Store, open_store
from authgate.store.sql import engine_url
from tests.support import wait_until

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = 8
# Bound on every wait for a writer: one that takes longer is stuck, and the test fails.
WAIT_SECONDS = 60.0


class Writers:
    """The forking writer program (``crash_writer.py``), driven over its stdin."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._count = 0
        self._program = subprocess.Popen(
            [sys.executable, str(WRITER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, line: str) -> int:
        assert self._program.stdin is not None and self._program.stdout is not None
        self._program.stdin.write(line + "\n")
        self._program.stdin.flush()
        watchdog = threading.Timer(WAIT_SECONDS, self._program.kill)
        watchdog.start()
        try:
            return int(self._program.stdout.readline())
        finally:
            watchdog.cancel()

    def start(self, mode: str, url: str, arg: str = "-") -> tuple[int, Path]:
        self._count += 1
        out = self._folder / f"writer-{self._count}.out"
        out.touch()
        return self._ask(f"{mode} {url} {arg} {out}"), out

    def kill(self, pid: int) -> int:
        """SIGKILL a writer; its exit code (``-SIGKILL`` unless it had ended by itself)."""
        os.kill(pid, signal.SIGKILL)
        return self._ask(f"reap {pid}")

    def close(self) -> None:
        assert self._program.stdin is not None and self._program.stdout is not None
        self._program.stdin.close()
        self._program.wait(timeout=WAIT_SECONDS)
        self._program.stdout.close()


@pytest.fixture(scope="module")
def writers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Writers]:
    program = Writers(tmp_path_factory.mktemp("writers"))
    try:
        yield program
    finally:
        program.close()


def lines_of(out: Path) -> list[str]:
    return [line for line in out.read_text().splitlines(keepends=True) if line.endswith("\n")]


def kill_after_changes(writers: Writers, url: str, changes: int, rng: random.Random) -> list[str]:
    """Run a writer until it has acknowledged ``changes`` changes, a moment more, then
    SIGKILL it; the changes it acknowledged."""
    pid, out = writers.start("loop", url, str(rng.randrange(1 << 30)))
    try:
        assert wait_until(lambda: len(lines_of(out)) > changes, timeout=WAIT_SECONDS), (
            out.read_text()
        )
        # The kill lands somewhere in a later change: its insert, its audit entry or its
        # commit.
        threading.Event().wait(rng.random() * 0.004)
    finally:
        status = writers.kill(pid)
    lines = lines_of(out)
    assert status == -signal.SIGKILL, lines
    assert lines[0] == "ready\n", lines
    return lines[1:]


def settle(url: str) -> None:
    """Wait until no other PostgreSQL backend is mid-statement or mid-transaction.

    A killed writer's backend still runs what already reached its socket: a COMMIT sent
    just before the SIGKILL lands a moment later, and reading the keys before it and the
    audit log after it would see half of one atomic change."""
    if not url.startswith("postgresql"):
        return
    engine = sa.create_engine(engine_url(url))
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle'"
    )

    def quiet() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(query).scalar_one() == 0)

    try:
        assert wait_until(quiet, timeout=WAIT_SECONDS), "a killed writer's backend never ended"
    finally:
        engine.dispose()


def assert_consistent(store: Store, url: str, acknowledged: list[str]) -> None:
    settle(url)
    keys = {record.id: record for record in store.list_keys(everyone=True)}
    events = store.list_audit(limit=1_000_000)
    created = {e.target for e in events if e.action == "key.create" and e.outcome == "success"}
    rotated = {e.target: e.detail["successor"] for e in events if e.action == "key.rotate"}
    revoked = {e.target for e in events if e.action == "key.revoke"}
    successors = set(rotated.values())
    for key in keys.values():
        assert key.id in created or key.id in successors, f"{key.id} exists with no audit entry"
        if key.revoked_at is not None:
            assert key.id in revoked, f"{key.id} is revoked with no key.revoke entry"
        if key.rotated_to is not None:
            assert rotated.get(key.id) == key.rotated_to, f"{key.id} rotated with no entry"
    for target in created | revoked | set(rotated) | successors:
        assert target in keys, f"the audit log names {target}, which was never written"
    for line in acknowledged:
        change, *ids = line.split()
        assert all(key_id in keys for key_id in ids), f"acknowledged {line!r} is missing"
        if change == "rotate":
            assert keys[ids[0]].rotated_to == ids[1], f"acknowledged {line!r} is missing"
        elif change == "revoke":
            assert keys[ids[0]].revoked_at is not None, f"acknowledged {line!r} is missing"


def test_sigkill_at_random_points_leaves_every_change_audited_and_every_ack_stored(
    writers: Writers, database_url: str
) -> None:
    store = open_store(database_url)
    store.migrate()
    rng = random.Random(secrets.randbits(32))
    acknowledged: list[str] = []
    try:
        for _ in range(ROUNDS):
            acknowledged += kill_after_changes(writers, database_url, rng.randint(3, 30), rng)
            assert_consistent(store, database_url, acknowledged)
        assert any(line.startswith("rotate") for line in acknowledged)
        assert any(line.startswith("revoke") for line in acknowledged)
    finally:
        store.close()


def _writer_waits_on_audit(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO audit_events%'"
            )
        ).scalar_one()
    return bool(waiting)


@pytest.mark.postgres
@pytest.mark.parametrize("change", ["create", "rotate", "revoke"])
def test_sigkill_while_the_audit_entry_waits_leaves_no_unaudited_change(
    writers: Writers, postgres_url: str, change: str
) -> None:
    store = open_store(postgres_url)
    store.migrate()
    keys = KeyService(store, Auditor(store), token_prefix="ag")
    target = keys.create(Actor("admin"), name="target").record.id
    engine = sa.create_engine(engine_url(postgres_url))
    try:
        with engine.connect() as locker:
            # Inserts need ROW EXCLUSIVE, which this lock refuses until it is let go.
            locker.execute(sa.text("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE"))
            pid, out = writers.start(change, postgres_url, target)
            try:
                reached = wait_until(lambda: _writer_waits_on_audit(engine), timeout=WAIT_SECONDS)
            finally:
                status = writers.kill(pid)
            locker.rollback()
        assert reached, f"the writer never reached its audit entry: {out.read_text()}"
        assert status == -signal.SIGKILL, out.read_text()
        assert_consistent(store, postgres_url, [])
    finally:
        engine.dispose()
        store.close()
