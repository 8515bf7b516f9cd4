"""The SQL store, on SQLite and PostgreSQL: migrations, keys, change feed, usage, audit, users."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from authgate.errors import Conflict, NotReady
from authgate.store import AuditEvent, SqlStore, open_store
from authgate.store.schema import metadata
from tests.store.support import T0, TABLES, make_key, make_user
from tests.support import ROOMY_STORE

HEAD = "0003"

# -- migrations ------------------------------------------------------------------------


def test_migrations_create_every_table(store: SqlStore) -> None:
    tables = set(sa.inspect(store.engine).get_table_names())
    assert TABLES <= tables
    key_columns = {c["name"] for c in sa.inspect(store.engine).get_columns("api_keys")}
    assert {
        "id",
        "name",
        "owner_id",
        "scopes",
        "digest",
        "hint",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "use_count",
    } <= key_columns


def test_migrating_twice_is_harmless_and_keeps_data(store: SqlStore) -> None:
    record = make_key()
    store.insert_key(record)
    store.migrate()
    store.migrate()
    with store.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [row[0] for row in versions] == [HEAD]
    assert store.get_key(record.id) == record


def test_a_second_store_on_the_same_database_migrates_as_a_no_op(
    store: SqlStore, database_url: str
) -> None:
    record = make_key()
    store.insert_key(record)
    other = open_store(database_url, ROOMY_STORE)
    try:
        other.migrate()
        assert other.get_key(record.id) == record
    finally:
        other.close()


def test_a_database_of_the_first_revision_upgrades_and_keeps_its_data(
    database_url: str,
) -> None:
    older = open_store(database_url, ROOMY_STORE)
    assert isinstance(older, SqlStore)
    try:
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("authgate.store") / "migrations")
        )
        with older.engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.commit()
        assert "sessions" not in sa.inspect(older.engine).get_table_names()
        record = make_key()
        older.insert_key(record)
        older.migrate()
        assert TABLES <= set(sa.inspect(older.engine).get_table_names())
        assert older.get_key(record.id) == record
        older.add_usage({record.id: (2, T0)})
        assert older.usage_by_hour(record.id, T0) == [
            (T0.replace(minute=0, second=0, microsecond=0), 2)
        ]
    finally:
        older.close()


def test_the_migrated_schema_is_the_one_the_code_declares(store: SqlStore) -> None:
    # A table or column added to schema.py without its migration shows up here.
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


# -- API keys --------------------------------------------------------------------------


def test_insert_then_get_and_find_by_digest(store: SqlStore) -> None:
    record = make_key(expires_at=T0 + timedelta(days=30))
    store.insert_key(record)
    assert store.get_key(record.id) == record
    assert store.find_key_by_digest(record.digest) == record
    assert store.get_key("key_missing") is None
    assert store.find_key_by_digest("0" * 64) is None


def test_datetimes_come_back_aware_and_in_utc(store: SqlStore) -> None:
    local = datetime(2030, 5, 1, 14, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    record = make_key(created_at=local)
    store.insert_key(record)
    fetched = store.get_key(record.id)
    assert fetched is not None
    assert fetched.created_at.utcoffset() == timedelta(0)
    assert fetched.created_at == local


def test_naive_datetimes_are_refused_as_a_bug_not_an_outage(store: SqlStore) -> None:
    record = make_key(created_at=datetime(2030, 1, 1))
    with pytest.raises(Exception, match="naive datetime") as caught:
        store.insert_key(record)
    assert not isinstance(caught.value, NotReady)
    assert store.get_key(record.id) is None


def test_digest_is_unique(store: SqlStore) -> None:
    first = make_key("one")
    store.insert_key(first)
    clash = replace(make_key("two"), digest=first.digest)
    with pytest.raises(Conflict):
        store.insert_key(clash)
    assert store.get_key(clash.id) is None
    with pytest.raises(Conflict):
        store.insert_key(replace(make_key("three"), id=first.id))


def test_list_keys_by_owner_and_everyone(store: SqlStore) -> None:
    user = make_user()
    store.insert_user(user, "ada@example.com")
    service = make_key("service", created_at=T0)
    owned = make_key("personal", owner_id=user.id, created_at=T0 + timedelta(seconds=1))
    store.insert_key(service)
    store.insert_key(owned)
    assert [k.id for k in store.list_keys()] == [service.id]
    owned_list = store.list_keys(user.id)
    assert [k.id for k in owned_list] == [owned.id]
    assert owned_list[0].owner_role == "user"
    assert [k.id for k in store.list_keys(everyone=True)] == [service.id, owned.id]


def test_live_key_named_ignores_revoked_and_expired(store: SqlStore) -> None:
    record = make_key("dup", expires_at=T0 + timedelta(hours=1))
    store.insert_key(record)
    assert store.live_key_named(None, "dup", T0) == record
    assert store.live_key_named(None, "dup", T0 + timedelta(hours=2)) is None
    store.revoke_key(record.id, T0)
    assert store.live_key_named(None, "dup", T0) is None


def test_revoke_marks_once_and_announces(store: SqlStore) -> None:
    record = make_key()
    store.insert_key(record)
    start = store.latest_change()
    assert store.revoke_key(record.id, T0 + timedelta(minutes=5)) is True
    assert store.revoke_key(record.id, T0 + timedelta(minutes=6)) is False
    assert store.revoke_key("key_unknown", T0) is False
    revoked = store.get_key(record.id)
    assert revoked is not None
    assert revoked.revoked_at == T0 + timedelta(minutes=5)
    assert not revoked.is_live(T0 + timedelta(minutes=5))
    seq, changed = store.changes_since(start)
    assert changed == [record.id]
    assert seq > start


def test_rotate_inserts_successor_and_shortens_the_old_key(store: SqlStore) -> None:
    old = make_key("rotating", expires_at=T0 + timedelta(days=30))
    store.insert_key(old)
    start = store.latest_change()
    now = T0 + timedelta(days=1)
    new = replace(make_key("rotating", created_at=now), expires_at=now + timedelta(days=30))
    store.rotate_key(old.id, new, now + timedelta(hours=1))
    old_after = store.get_key(old.id)
    assert old_after is not None
    assert old_after.rotated_to == new.id
    assert old_after.expires_at == now + timedelta(hours=1)
    assert store.get_key(new.id) == new
    assert store.changes_since(start)[1] == [old.id]
    assert store.live_key_named(None, "rotating", now) == new


def test_rotate_never_extends_a_key_that_expires_sooner(store: SqlStore) -> None:
    old = make_key("short", expires_at=T0 + timedelta(minutes=10))
    store.insert_key(old)
    new = make_key("short", created_at=T0)
    store.rotate_key(old.id, new, T0 + timedelta(days=1))
    old_after = store.get_key(old.id)
    assert old_after is not None
    assert old_after.expires_at == T0 + timedelta(minutes=10)


# -- change feed -----------------------------------------------------------------------


def test_change_feed_returns_changes_in_order_once(store: SqlStore) -> None:
    assert store.latest_change() == 0
    assert store.changes_since(0) == (0, [])
    store.announce_change("key_a", T0)
    store.announce_change("key_b", T0)
    seq, changed = store.changes_since(0)
    assert changed == ["key_a", "key_b"]
    assert seq == store.latest_change()
    assert store.changes_since(seq) == (seq, [])
    store.announce_change("key_c", T0)
    assert store.changes_since(seq)[1] == ["key_c"]


# -- usage -----------------------------------------------------------------------------


def test_usage_flush_adds_counts_and_keeps_the_latest_time(store: SqlStore) -> None:
    record = make_key()
    other = make_key("other")
    store.insert_key(record)
    store.insert_key(other)
    store.add_usage({record.id: (3, T0 + timedelta(minutes=2))})
    store.add_usage({record.id: (4, T0 + timedelta(minutes=1)), other.id: (1, T0)})
    store.add_usage({})
    after = store.get_key(record.id)
    assert after is not None
    assert after.use_count == 7
    # An older batch arriving late does not move last-used backwards.
    assert after.last_used_at == T0 + timedelta(minutes=2)
    other_after = store.get_key(other.id)
    assert other_after is not None
    assert (other_after.use_count, other_after.last_used_at) == (1, T0)


# -- audit -----------------------------------------------------------------------------


def test_audit_append_and_filters(store: SqlStore) -> None:
    events = [
        AuditEvent(T0, "cli", "key.create", "key_1", "cli", detail={"name": "a", "n": [1]}),
        AuditEvent(T0 + timedelta(minutes=1), "admin", "key.revoke", "key_1", "10.0.0.1"),
        AuditEvent(T0 + timedelta(minutes=2), "cli", "key.create", "key_2", "cli"),
        AuditEvent(T0 + timedelta(minutes=3), "cli", "key.rotate", "key_2", "cli", "failure"),
    ]
    for event in events:
        store.append_audit(event)
    listed = store.list_audit()
    assert [e.action for e in listed] == ["key.rotate", "key.create", "key.revoke", "key.create"]
    first = listed[-1]
    assert first.id is not None
    assert (first.at, first.actor, first.target, first.source) == (T0, "cli", "key_1", "cli")
    assert first.detail == {"name": "a", "n": [1]}
    assert listed[0].outcome == "failure"
    assert [e.target for e in store.list_audit(actor="admin")] == ["key_1"]
    assert [e.target for e in store.list_audit(action="key.create")] == ["key_2", "key_1"]
    assert [e.action for e in store.list_audit(target="key_2")] == ["key.rotate", "key.create"]
    window = store.list_audit(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert [e.action for e in window] == ["key.create", "key.revoke"]
    assert [e.target for e in store.list_audit(limit=1, offset=1)] == ["key_2"]
    assert store.list_audit(actor="nobody") == []


def test_audit_pages_of_a_filter_cover_its_events_once_newest_first(store: SqlStore) -> None:
    user = make_user("Ada@Example.com")
    store.insert_user(user, "ada@example.com")
    for index in range(23):
        actor = user.id if index % 3 == 0 else "cli"
        action = "key.revoke" if index % 2 == 0 else "key.create"
        store.append_audit(AuditEvent(T0 + timedelta(seconds=index), actor, action, f"key_{index}"))

    def pages(action: str | None = None, email: str | None = None) -> list[list[str | None]]:
        return [
            [
                event.target
                for event in store.list_audit(
                    action=action, actor_email_key=email, limit=4, offset=offset
                )
            ]
            for offset in range(0, 16, 4)
        ]

    revoked = [f"key_{index}" for index in range(22, -1, -2)]
    assert pages(action="key.revoke") == [revoked[0:4], revoked[4:8], revoked[8:12], []]
    adas = [f"key_{index}" for index in range(21, -1, -3)]
    assert pages(email="ada@example.com") == [adas[0:4], adas[4:8], [], []]
    deep = store.list_audit(actor_email_key="ada@example.com", limit=4, offset=4)
    assert {event.actor_email for event in deep} == {"Ada@Example.com"}
    everything = [f"key_{index}" for index in range(22, -1, -1)]
    assert [e.target for e in store.list_audit(limit=5, offset=20)] == everything[20:]


# -- users -----------------------------------------------------------------------------


def test_users_insert_get_and_unique_email_key(store: SqlStore) -> None:
    user = make_user("Ada@Example.com")
    store.insert_user(user, "ada@example.com")
    assert store.get_user(user.id) == user
    assert store.get_user_by_email_key("ada@example.com") == user
    assert store.get_user_by_email_key("Ada@Example.com") is None
    twin = make_user("ADA@example.COM")
    with pytest.raises(Conflict):
        store.insert_user(twin, "ada@example.com")
    assert store.get_user(twin.id) is None
    assert [u.id for u in store.list_users()] == [user.id]


def test_update_user_announces_changes_for_the_users_keys(store: SqlStore) -> None:
    user = make_user()
    store.insert_user(user, "ada@example.com")
    first, second = make_key("a", owner_id=user.id), make_key("b", owner_id=user.id)
    unrelated = make_key("c")
    for record in (first, second, unrelated):
        store.insert_key(record)
    start = store.latest_change()

    assert store.update_user(user.id, T0 + timedelta(hours=1), password_hash="$argon2id$new")
    assert store.changes_since(start) == (start, [])

    assert store.update_user(user.id, T0 + timedelta(hours=2), role="admin")
    seq, changed = store.changes_since(start)
    assert sorted(changed) == sorted([first.id, second.id])
    updated = store.get_user(user.id)
    assert updated is not None
    assert (updated.role, updated.updated_at) == ("admin", T0 + timedelta(hours=2))
    assert store.get_key(first.id).owner_role == "admin"  # type: ignore[union-attr]

    assert store.update_user(user.id, T0 + timedelta(hours=3), active=False)
    assert sorted(store.changes_since(seq)[1]) == sorted([first.id, second.id])
    disabled = store.get_key(first.id)
    assert disabled is not None
    assert disabled.owner_active is False
    assert not disabled.is_live(T0)

    assert store.update_user("usr_missing", T0, role="admin") is False
    with pytest.raises(ValueError, match="email"):
        store.update_user(user.id, T0, email="x@example.com")


# -- who is calling --------------------------------------------------------------------


def test_a_users_key_and_audit_entries_carry_the_users_email(store: SqlStore) -> None:
    user = make_user("Ada@Example.com")
    store.insert_user(user, "ada@example.com")
    owned = make_key("laptop", owner_id=user.id)
    service = make_key("ci")
    store.insert_key(owned)
    store.insert_key(service)
    assert store.find_key_by_digest(owned.digest).owner_email == "Ada@Example.com"  # type: ignore[union-attr]
    assert store.get_key(service.id).owner_email is None  # type: ignore[union-attr]

    store.append_audit(AuditEvent(T0, user.id, "key.create", owned.id))
    store.append_audit(AuditEvent(T0, "cli", "key.create", service.id))
    by_email = store.list_audit(actor_email_key="ada@example.com")
    assert [(e.actor, e.actor_email, e.target) for e in by_email] == [
        (user.id, "Ada@Example.com", owned.id)
    ]
    assert [e.actor_email for e in store.list_audit(actor="cli")] == [None]
    assert store.list_audit(actor_email_key="nobody@example.com") == []
