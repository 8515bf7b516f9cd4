"""The access key store (SigV4 keys and bucket grants), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from authgate.errors import Conflict
from authgate.manage.access_keys import generate_access_key_id
from authgate.manage.keys import new_id
from authgate.store import AccessKeyRecord, AuditEvent, SqlStore
from tests.store.support import T0


def make_access_key(name: str = "backup", **grants: str) -> AccessKeyRecord:
    return AccessKeyRecord(
        id=new_id("ak"),
        access_key_id=generate_access_key_id(),
        name=name,
        owner_id=None,
        created_by="tester",
        secret_encrypted="gAAAA-not-a-real-fernet-token",
        created_at=T0,
        grants=dict(grants),
    )


def event(action: str, target: str) -> AuditEvent:
    return AuditEvent(at=T0, actor="tester", action=action, target=target)


def test_insert_then_get_by_either_id_with_grants(store: SqlStore) -> None:
    record = make_access_key(photos="read", logs="write")
    store.insert_access_key(record, audit=event("access_key.create", record.id))
    assert store.get_access_key(record.id) == record
    assert store.get_access_key(record.access_key_id) == record
    assert store.get_access_key("AKAGUNKNOWNUNKNOWNUN") is None
    assert [e.action for e in store.list_audit(target=record.id)] == ["access_key.create"]
    with pytest.raises(Conflict):
        store.insert_access_key(replace(make_access_key("other"), id=record.id))


def test_list_in_creation_order(store: SqlStore) -> None:
    first = make_access_key("first")
    second = replace(make_access_key("second"), created_at=T0 + timedelta(seconds=1))
    store.insert_access_key(second)
    store.insert_access_key(first)
    assert [r.id for r in store.list_access_keys()] == [first.id, second.id]


def test_revoke_marks_once_announces_and_audits_together(store: SqlStore) -> None:
    record = make_access_key()
    store.insert_access_key(record)
    start = store.latest_change()
    at = T0 + timedelta(minutes=5)
    assert store.revoke_access_key(record.id, at, audit=event("access_key.revoke", record.id))
    assert not store.revoke_access_key(record.id, at, audit=event("access_key.revoke", record.id))
    assert not store.revoke_access_key("ak_unknown", at)
    revoked = store.get_access_key(record.id)
    assert revoked is not None
    assert revoked.revoked_at == at
    assert store.changes_since(start)[1] == [record.id]
    # The refused second revoke wrote no audit entry.
    assert [e.action for e in store.list_audit(target=record.id)] == ["access_key.revoke"]


def test_grants_are_added_changed_and_taken_back_each_announced(store: SqlStore) -> None:
    record = make_access_key()
    store.insert_access_key(record)
    start = store.latest_change()
    assert store.set_grant(record.id, "photos", "read", T0)
    assert store.set_grant(record.id, "photos", "admin", T0)
    assert store.set_grant(record.id, "logs", "write", T0)
    fetched = store.get_access_key(record.id)
    assert fetched is not None
    assert fetched.grants == {"photos": "admin", "logs": "write"}
    assert store.set_grant(record.id, "photos", None, T0)
    assert store.set_grant(record.id, "photos", None, T0) is False
    fetched = store.get_access_key(record.id)
    assert fetched is not None
    assert fetched.grants == {"logs": "write"}
    assert store.changes_since(start)[1] == [record.id] * 4


def test_secrets_are_replaced_for_every_key_given(store: SqlStore) -> None:
    one, two = make_access_key("one"), make_access_key("two")
    store.insert_access_key(one)
    store.insert_access_key(two)
    store.replace_access_key_secrets({one.id: "gAAAA-one", two.id: "gAAAA-two"})
    secrets = {r.id: r.secret_encrypted for r in store.list_access_keys()}
    assert secrets == {one.id: "gAAAA-one", two.id: "gAAAA-two"}


def test_usage_moves_last_used_forward_only(store: SqlStore) -> None:
    record = make_access_key()
    store.insert_access_key(record)
    later = T0 + timedelta(hours=1)
    store.add_access_key_usage({record.access_key_id: (3, later)})
    store.add_access_key_usage({record.access_key_id: (1, T0)})  # a flush arriving late
    fetched = store.get_access_key(record.id)
    assert fetched is not None
    assert fetched.last_used_at == later
