"""Master key rotation re-encrypts every secret and loses none, even when it stops half-way:
after a crash at any step every secret still decrypts, verifies a botocore-signed request,
and the next rotation finishes the job."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from authgate import masterkey
from authgate.manage.access_keys import CreatedAccessKey
from authgate.runtime import Runtime
from authgate.store.records import AccessKeyRecord
from authgate.store.sql import SqlStore
from tests.access_keys.conftest import (
    ADMIN,
    fernet_of,
    file_keys,
    raw_secrets,
    verifies,
)


class Crash(Exception):
    """Stands for the process dying at this point."""


def make_keys(runtime: Runtime, count: int = 4) -> list[CreatedAccessKey]:
    return [
        runtime.access_keys.create(ADMIN, name=f"key-{i}", grants={f"bucket-{i}": "read"})
        for i in range(count)
    ]


def assert_nothing_lost(
    open_runtime: Callable[..., Runtime], created: list[CreatedAccessKey], key_file: Path
) -> None:
    """A new process, reading only the files and the store, verifies every key."""
    fresh = open_runtime()
    for item in created:
        result = verifies(fresh, item.record.access_key_id, item.secret)
        assert result.access_key.key_id == item.record.id
    fernet = fernet_of(key_file)
    for item in created:
        record = fresh.store.get_access_key(item.record.id)
        assert record is not None
        assert fernet.decrypt(record.secret_encrypted.encode()).decode() == item.secret


def test_rotating_twice_re_encrypts_every_secret_and_loses_none(
    open_runtime: Callable[..., Runtime], database_url: str, data_dir: Path
) -> None:
    server = open_runtime(start=True)
    created = make_keys(server, 5)
    key_file = data_dir / "master.key"
    for item in created:  # the server has them all cached
        assert verifies(server, item.record.access_key_id, item.secret)

    seen_keys = {file_keys(key_file)[0]}
    for _round in range(2):
        before = raw_secrets(database_url)
        report = server.access_keys.rotate_master_key(ADMIN)
        assert report.reencrypted == len(created)
        assert report.dropped_keys == 1
        keys = file_keys(key_file)
        assert len(keys) == 1 and keys[0] not in seen_keys
        seen_keys.add(keys[0])
        after = raw_secrets(database_url)
        assert set(after) == set(before)
        assert all(after[key_id] != before[key_id] for key_id in after)
        assert_nothing_lost(open_runtime, created, key_file)
        server.access_keys.cache.clear()
        for item in created:
            assert verifies(server, item.record.access_key_id, item.secret)

    events = server.store.list_audit(action="master_key.rotate")
    assert len(events) == 2
    assert events[0].detail == {"reencrypted": 5, "dropped_keys": 1}


def test_rotation_with_no_secrets_just_makes_a_key(
    open_runtime: Callable[..., Runtime], data_dir: Path
) -> None:
    runtime = open_runtime()
    report = runtime.access_keys.rotate_master_key(ADMIN)
    assert (report.reencrypted, report.dropped_keys) == (0, 0)
    assert len(file_keys(data_dir / "master.key")) == 1


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make rotation die at one step: writing the key file the first or the second time,
    or half-way through the transaction that stores the re-encrypted secrets."""

    def arm(step: str) -> None:
        if step in ("first file write", "final file write"):
            real = masterkey.write_secret_file  # type: ignore[attr-defined]
            calls = {"n": 0}
            wanted = 1 if step == "first file write" else 2

            def write(path: Path, content: str, **kwargs: Any) -> None:
                calls["n"] += 1
                if calls["n"] == wanted:
                    raise Crash(step)
                real(path, content, **kwargs)

            monkeypatch.setattr(masterkey, "write_secret_file", write)
        else:
            real_replace = SqlStore.replace_access_key_secrets

            def replace(self: SqlStore, encrypted: Mapping[str, str]) -> None:
                def dying() -> Iterator[tuple[str, str]]:
                    items = list(encrypted.items())
                    yield items[0]  # the first UPDATE runs inside the transaction...
                    raise Crash(step)  # ...then the process dies before COMMIT

                real_replace(self, _LazyMapping(dying))

            monkeypatch.setattr(SqlStore, "replace_access_key_secrets", replace)

    return arm


class _LazyMapping(Mapping[str, str]):
    def __init__(self, items: Callable[[], Iterator[tuple[str, str]]]) -> None:
        self._items = items

    def items(self) -> Any:
        return self._items()

    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items())

    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize("step", ["first file write", "store transaction", "final file write"])
def test_a_crash_during_rotation_loses_nothing_and_the_next_rotation_finishes(
    open_runtime: Callable[..., Runtime],
    database_url: str,
    data_dir: Path,
    crash_at: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    runtime = open_runtime()
    created = make_keys(runtime)
    key_file = data_dir / "master.key"
    old_key = file_keys(key_file)
    before = raw_secrets(database_url)

    crash_at(step)
    with pytest.raises(Crash):
        runtime.access_keys.rotate_master_key(ADMIN)
    monkeypatch.undo()

    keys = file_keys(key_file)
    after = raw_secrets(database_url)
    if step == "first file write":
        assert keys == old_key
        assert after == before
    elif step == "store transaction":
        # The new key was added in front; the transaction left every secret as it was.
        assert keys[1:] == old_key and len(keys) == 2
        assert after == before
    else:
        # Every secret moved to the new key; the old one is still in the file.
        assert keys[1:] == old_key and len(keys) == 2
        assert all(after[key_id] != before[key_id] for key_id in after)
    assert_nothing_lost(open_runtime, created, key_file)

    # The state is usable: new keys work, and a later rotation completes.
    extra = runtime.access_keys.create(ADMIN, name="after-crash")
    created.append(extra)
    report = open_runtime().access_keys.rotate_master_key(ADMIN)
    assert report.reencrypted == len(created)
    assert len(file_keys(key_file)) == 1
    assert file_keys(key_file)[0] not in keys
    assert_nothing_lost(open_runtime, created, key_file)


def test_a_secret_stored_under_the_old_key_during_rotation_is_carried_over(
    open_runtime: Callable[..., Runtime], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process that read the key file before the rotation started stores a new
    access key under the old key while the rotation commits; it must not be lost."""
    rotating = open_runtime()
    created = make_keys(rotating, 2)
    laggard = open_runtime()
    laggard.master_key.keys()  # loads the current (soon old) key
    key_file = data_dir / "master.key"
    late: list[CreatedAccessKey] = []
    real_replace = SqlStore.replace_access_key_secrets
    real_stat = os.lstat  # how the master key sees a change of its file

    def replace(self: SqlStore, encrypted: Mapping[str, str]) -> None:
        real_replace(self, encrypted)
        if not late:
            # The laggard does not notice the new file (same signature as before) and
            # encrypts with the old key, committing just after the rotation's commit.
            monkeypatch.setattr(os, "lstat", stale_stat)
            late.append(laggard.access_keys.create(ADMIN, name="late"))
            monkeypatch.setattr(os, "lstat", real_stat)

    loaded = laggard.master_key._loaded
    assert loaded is not None
    ino, mtime, size = loaded.signature

    def stale_stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_stat(path, *args, **kwargs)
        if Path(path) == key_file:
            return _Stat(result, ino, mtime, size)
        return result

    monkeypatch.setattr(SqlStore, "replace_access_key_secrets", replace)
    report = rotating.access_keys.rotate_master_key(ADMIN)
    monkeypatch.undo()

    assert late
    assert report.reencrypted == len(created) + 1
    assert len(file_keys(key_file)) == 1
    assert_nothing_lost(open_runtime, [*created, *late], key_file)


class _Stat:
    def __init__(self, real: Any, ino: int, mtime: int, size: int) -> None:
        self._real = real
        self.st_ino, self.st_mtime_ns, self.st_size = ino, mtime, size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_other_processes_follow_a_rotation(
    open_runtime: Callable[..., Runtime], data_dir: Path
) -> None:
    """A server that loaded the old key still decrypts rotated secrets (it re-reads the
    file) and encrypts new ones under the new key."""
    server = open_runtime(start=True)
    created = make_keys(server, 2)
    open_runtime().access_keys.rotate_master_key(ADMIN)

    server.access_keys.cache.clear()
    for item in created:
        assert verifies(server, item.record.access_key_id, item.secret)
    newer = server.access_keys.create(ADMIN, name="after-rotation")
    only_new = fernet_of(data_dir / "master.key")
    record = server.store.get_access_key(newer.record.id)
    assert isinstance(record, AccessKeyRecord)
    assert only_new.decrypt(record.secret_encrypted.encode()).decode() == newer.secret
