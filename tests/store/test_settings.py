"""Settings changed at run time, in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from authgate.errors import NotReady
from authgate.store import AuditEvent, SqlStore, open_store
from authgate.store.schema import settings
from tests.store.support import T0
from tests.support import ROOMY_STORE


def test_no_settings_stored_is_an_empty_mapping(store: SqlStore) -> None:
    assert store.get_settings() == {}


def test_a_database_not_migrated_yet_has_no_settings(database_url: str) -> None:
    unmigrated = open_store(database_url, ROOMY_STORE)
    try:
        assert unmigrated.get_settings() == {}
        unmigrated.ping()  # the failed read left the connection usable
        unmigrated.migrate()
        unmigrated.update_settings({"a": 1}, (), T0, "admin")
        assert unmigrated.get_settings() == {"a": 1}
    finally:
        unmigrated.close()


def test_values_of_every_json_kind_round_trip(store: SqlStore) -> None:
    values = {
        "rate_limit": 10,
        "ratio": 0.5,
        "banner": "héllo",
        "enabled": False,
        "nothing": None,
        "origins": ["https://a.example", "https://b.example"],
        "nested": {"a": [1, {"b": True}]},
    }
    store.update_settings(values, (), T0, "admin")
    assert store.get_settings() == values


def test_update_overwrites_adds_and_removes_in_one_go(store: SqlStore) -> None:
    store.update_settings({"a": 1, "b": "two", "c": [3]}, (), T0, "admin")
    later = T0 + timedelta(minutes=5)
    audit = AuditEvent(later, "usr_1", "settings.update", detail={"changed": ["a", "d"]})
    store.update_settings({"a": {"x": 1}, "d": True}, ["b", "missing"], later, "usr_1", audit=audit)
    assert store.get_settings() == {"a": {"x": 1}, "c": [3], "d": True}
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(settings.c.name, settings.c.updated_at, settings.c.updated_by).order_by(
                settings.c.name
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("a", later, "usr_1"),
        ("c", T0, "admin"),
        ("d", later, "usr_1"),
    ]
    assert [(e.action, e.detail) for e in store.list_audit()] == [
        ("settings.update", {"changed": ["a", "d"]})
    ]


def test_a_failed_update_writes_nothing(store: SqlStore) -> None:
    store.update_settings({"a": 1, "c": 3}, (), T0, "admin")
    audit = AuditEvent(T0, "admin", "settings.update")
    with pytest.raises(Exception, match="not JSON serializable") as caught:
        # The second value cannot be stored: the first, the removal and the entry go too.
        store.update_settings({"a": 2, "b": object()}, ["c"], T0, "admin", audit=audit)
    assert not isinstance(caught.value, NotReady)  # a caller's bug, not an outage
    assert store.get_settings() == {"a": 1, "c": 3}
    assert store.list_audit() == []


def test_names_both_written_and_removed_or_too_long_are_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="both"):
        store.update_settings({"a": 1}, ["a"], T0, "admin")
    with pytest.raises(ValueError, match="longer"):
        store.update_settings({"n" * 65: 1}, (), T0, "admin")
    assert store.get_settings() == {}
