"""Grants on bucket patterns (``backup-*``, ``*``) in the store, on SQLite and PostgreSQL:
kept as written, beside exact names, changed and taken back one by one."""

from __future__ import annotations

from authgate.store import SqlStore
from tests.store.support import T0
from tests.store.test_access_keys import make_access_key


def test_patterns_are_stored_beside_names_as_written(store: SqlStore) -> None:
    record = make_access_key("ops")
    record.grants.update({"*": "admin", "backup-*": "write", "backup-keep": "read"})
    store.insert_access_key(record)
    assert store.get_access_key(record.id) == record
    assert store.get_access_key(record.access_key_id).grants == {  # type: ignore[union-attr]
        "*": "admin",
        "backup-*": "write",
        "backup-keep": "read",
    }


def test_a_pattern_grant_is_set_changed_and_taken_back_alone(store: SqlStore) -> None:
    record = make_access_key("job", **{"backup-keep": "read"})
    store.insert_access_key(record)
    assert store.set_grant(record.id, "backup-*", "write", T0)
    assert store.set_grant(record.id, "backup-*", "admin", T0)
    got = store.get_access_key(record.id)
    assert got is not None and got.grants == {"backup-keep": "read", "backup-*": "admin"}
    # Taking the pattern back leaves the name it would have matched.
    assert store.set_grant(record.id, "backup-*", None, T0)
    got = store.get_access_key(record.id)
    assert got is not None and got.grants == {"backup-keep": "read"}
    assert not store.set_grant(record.id, "*", None, T0)
