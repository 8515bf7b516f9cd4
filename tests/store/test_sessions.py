"""Console sessions in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from authgate.errors import Conflict
from authgate.store import AuditEvent, SqlStore
from tests.store.support import T0, make_session, make_user


def test_an_operator_session_round_trips_by_id_and_digest(store: SqlStore) -> None:
    record = make_session(operator="admin")
    store.insert_session(record)
    assert store.get_session(record.id) == record
    assert store.find_session_by_digest(record.digest) == record
    assert record.user_email is None and record.user_active is None
    assert store.get_session("ses_missing") is None
    assert store.find_session_by_digest("0" * 64) is None


def test_a_users_session_carries_the_user_as_it_is_now(store: SqlStore) -> None:
    user = make_user("Ada@Example.com", role="admin")
    store.insert_user(user, "ada@example.com")
    record = make_session(user.id)
    store.insert_session(record)
    found = store.find_session_by_digest(record.digest)
    assert found == replace(
        record, user_email="Ada@Example.com", user_role="admin", user_active=True
    )
    store.update_user(user.id, T0 + timedelta(minutes=1), role="user", active=False)
    changed = store.get_session(record.id)
    assert changed is not None
    assert (changed.user_role, changed.user_active) == ("user", False)
    assert [s.user_email for s in store.list_sessions()] == ["Ada@Example.com"]


def test_insert_commits_its_audit_entry_with_it(store: SqlStore) -> None:
    record = make_session(operator="admin")
    store.insert_session(record, audit=AuditEvent(T0, "admin", "session.create", record.id))
    assert [(e.action, e.target) for e in store.list_audit()] == [("session.create", record.id)]


def test_a_taken_digest_or_id_or_an_unknown_user_is_a_conflict(store: SqlStore) -> None:
    first = make_session(operator="admin")
    store.insert_session(first)
    audit = AuditEvent(T0, "admin", "session.create", "ses_x")
    clash = replace(make_session(operator="admin"), digest=first.digest)
    with pytest.raises(Conflict):
        store.insert_session(clash, audit=audit)
    assert store.get_session(clash.id) is None
    with pytest.raises(Conflict):
        store.insert_session(replace(make_session(operator="admin"), id=first.id), audit=audit)
    stranger = make_session("usr_nobody")
    with pytest.raises(Conflict):
        store.insert_session(stranger, audit=audit)
    assert store.get_session(stranger.id) is None
    assert store.list_audit() == []  # refused inserts leave no entry behind


def test_a_long_user_agent_is_cut_the_same_on_every_back_end(store: SqlStore) -> None:
    record = make_session(operator="admin", user_agent="A" * 500)
    store.insert_session(record)
    stored = store.get_session(record.id)
    assert stored is not None
    assert stored.user_agent == "A" * 200


def test_touch_moves_last_seen_forward_only(store: SqlStore) -> None:
    record = make_session(operator="admin")
    store.insert_session(record)
    store.touch_session(record.id, T0 + timedelta(minutes=10))
    store.touch_session(record.id, T0 + timedelta(minutes=5))  # a request that finished late
    touched = store.get_session(record.id)
    assert touched is not None
    assert touched.last_seen_at == T0 + timedelta(minutes=10)
    assert (touched.created_at, touched.expires_at) == (record.created_at, record.expires_at)
    store.touch_session("ses_missing", T0)  # nothing to touch, nothing written


def test_revoke_marks_once_and_audits_only_a_real_revocation(store: SqlStore) -> None:
    record = make_session(operator="admin")
    store.insert_session(record)
    at = T0 + timedelta(minutes=3)
    audit = AuditEvent(at, "admin", "session.revoke", record.id)
    start = store.latest_change()
    assert store.revoke_session(record.id, at, audit=audit) is True
    assert store.revoke_session(record.id, at + timedelta(minutes=1), audit=audit) is False
    assert store.revoke_session("ses_missing", at, audit=audit) is False
    revoked = store.get_session(record.id)
    assert revoked is not None
    assert revoked.revoked_at == at
    assert [e.action for e in store.list_audit()] == ["session.revoke"]
    assert store.latest_change() == start  # sessions are not on the key change feed


def test_revoke_sessions_of_a_user_leaves_everyone_else_alone(store: SqlStore) -> None:
    ada, bob = make_user("ada@example.com"), make_user("bob@example.com")
    store.insert_user(ada, "ada@example.com")
    store.insert_user(bob, "bob@example.com")
    adas = [make_session(ada.id) for _ in range(3)]
    bobs, operators = make_session(bob.id), make_session(operator="admin")
    for record in (*adas, bobs, operators):
        store.insert_session(record)
    earlier = T0 + timedelta(minutes=1)
    store.revoke_session(adas[0].id, earlier)
    at = T0 + timedelta(minutes=2)
    assert store.revoke_sessions_of(ada.id, at) == 2
    assert store.revoke_sessions_of(ada.id, at) == 0
    assert store.revoke_sessions_of("usr_nobody", at) == 0
    revoked_at = {s.id: s.revoked_at for s in store.list_sessions()}
    assert revoked_at == {
        adas[0].id: earlier,  # its first revocation stands
        adas[1].id: at,
        adas[2].id: at,
        bobs.id: None,
        operators.id: None,
    }


def test_list_is_newest_first_by_user_and_live_at_a_time(store: SqlStore) -> None:
    user = make_user()
    store.insert_user(user, "ada@example.com")
    oldest = make_session(user.id, created_at=T0, lifetime=timedelta(hours=1))
    middle = make_session(operator="admin", created_at=T0 + timedelta(minutes=1))
    newest = make_session(user.id, created_at=T0 + timedelta(minutes=2))
    revoked = make_session(user.id, created_at=T0 + timedelta(minutes=3))
    for record in (oldest, middle, newest, revoked):
        store.insert_session(record)
    store.revoke_session(revoked.id, T0 + timedelta(minutes=4))

    assert [s.id for s in store.list_sessions()] == [revoked.id, newest.id, middle.id, oldest.id]
    assert [s.id for s in store.list_sessions(user_id=user.id)] == [
        revoked.id,
        newest.id,
        oldest.id,
    ]
    live = store.list_sessions(live_at=T0 + timedelta(minutes=30))
    assert [s.id for s in live] == [newest.id, middle.id, oldest.id]
    # Expiry is exclusive: a session is dead at its expires_at.
    at_expiry = store.list_sessions(user_id=user.id, live_at=oldest.expires_at)
    assert [s.id for s in at_expiry] == [newest.id]
    assert store.list_sessions(user_id="usr_nobody") == []


def test_sessions_created_in_the_same_instant_list_in_a_stable_order(store: SqlStore) -> None:
    records = [make_session(operator="admin") for _ in range(4)]
    for record in records:
        store.insert_session(record)
    expected = sorted((r.id for r in records), reverse=True)
    assert [s.id for s in store.list_sessions()] == expected
