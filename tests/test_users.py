"""The user service on every back end: emails, passwords, roles, login and the audit."""

from __future__ import annotations

from typing import Any

import argon2
import pytest
import sqlalchemy as sa

from authgate.errors import Conflict, InvalidCredentials, InvalidRequest, NotFound
from authgate.facts import RequestFacts
from authgate.manage.keys import Actor
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.store.schema import users as users_table
from tests.support import sql_store

ACTOR = Actor("tester", source="test")
PASSWORD = "correct horse battery staple"


def _user_rows(runtime: Runtime) -> list[dict[str, Any]]:
    with sql_store(runtime.store).engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.select(users_table))]


def test_create_normalises_and_keeps_emails_unique(runtime: Runtime) -> None:
    user = runtime.users.create(ACTOR, email="Alice@Example.COM", password=PASSWORD, role="member")
    assert user.email == "Alice@example.com"
    [row] = _user_rows(runtime)
    assert row["email_key"] == "alice@example.com"
    assert row["password_hash"].startswith("$argon2id$")
    for twin in ("alice@example.com", "ALICE@EXAMPLE.COM", "ａｌｉｃｅ@example.com"):
        with pytest.raises(Conflict, match="already exists"):
            runtime.users.create(ACTOR, email=twin, password=PASSWORD, role="member")
    assert runtime.users.get("ＡＬＩＣＥ@example.com").id == user.id
    assert len(_user_rows(runtime)) == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"email": "al\u200bice@example.com"}, "unsafe characters"),
        ({"email": "bidi\u202e@example.com"}, "unsafe characters"),
        ({"email": "no-at-sign"}, "email is not valid"),
        ({"email": "x" * 330 + "@example.com"}, "at most 320"),
        ({"password": ""}, "must not be empty"),
        ({"password": "short"}, "at least 8"),
        ({"password": "p" * 10_000}, "at most 1024"),
        ({"role": "root"}, "unknown role 'root'"),
    ],
)
def test_bad_users_are_refused_and_nothing_written(
    runtime: Runtime, fields: dict[str, str], error: str
) -> None:
    values = {"email": "bob@example.com", "password": PASSWORD, "role": "member", **fields}
    with pytest.raises(InvalidRequest, match=error):
        runtime.users.create(ACTOR, **values)
    assert _user_rows(runtime) == []
    assert runtime.store.list_audit() == []


def test_login_outcomes_and_their_audit(runtime: Runtime) -> None:
    alice = runtime.users.create(ACTOR, email="alice@example.com", password=PASSWORD, role="member")
    assert runtime.users.authenticate("ALICE@example.com", PASSWORD, source="10.0.0.1") == alice
    runtime.users.create(ACTOR, email="bob@example.com", password=PASSWORD, role="member")
    runtime.users.set_active(ACTOR, "bob@example.com", False)

    for email, password in (
        ("alice@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("bob@example.com", PASSWORD),
    ):
        with pytest.raises(InvalidCredentials) as refused:
            runtime.users.authenticate(email, password, source="10.0.0.1")
        assert refused.value.detail == "Invalid email or password."

    logins = runtime.store.list_audit(action="login")
    assert [(e.outcome, e.detail.get("reason")) for e in logins] == [
        ("failure", "disabled"),
        ("failure", "unknown_email"),
        ("failure", "bad_password"),
        ("success", None),
    ]
    assert {e.source for e in logins} == {"10.0.0.1"}


def test_every_login_path_costs_one_argon2_verification(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The equal-cost rule, checked by counting rather than timing: an unknown email, a
    wrong password, a disabled account and a user without a password all verify once."""
    runtime.users.create(ACTOR, email="alice@example.com", password=PASSWORD, role="member")
    runtime.users.create(ACTOR, email="bob@example.com", password=PASSWORD, role="member")
    runtime.users.set_active(ACTOR, "bob@example.com", False)
    carol = runtime.users.create(ACTOR, email="carol@example.com", password=PASSWORD, role="member")
    runtime.store.update_user(carol.id, runtime.clock(), password_hash=None)
    runtime.passwords.prepare()

    calls: list[str] = []

    class Counting:
        def __init__(self, hasher: argon2.PasswordHasher) -> None:
            self._hasher = hasher

        def verify(self, hash: str, password: str | bytes) -> bool:
            calls.append(hash)
            return self._hasher.verify(hash, password)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._hasher, name)

    monkeypatch.setattr(runtime.passwords, "_hasher", Counting(runtime.passwords._hasher))
    for email, password in (
        ("alice@example.com", PASSWORD),
        ("alice@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("bob@example.com", PASSWORD),
        ("carol@example.com", PASSWORD),
    ):
        calls.clear()
        try:
            runtime.users.authenticate(email, password, source=None)
        except InvalidCredentials:
            pass
        assert len(calls) == 1, email
        assert calls[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_login_rehashes_a_hash_with_older_parameters(runtime: Runtime) -> None:
    alice = runtime.users.create(ACTOR, email="alice@example.com", password=PASSWORD, role="member")
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    runtime.store.update_user(alice.id, runtime.clock(), password_hash=weak)

    runtime.users.authenticate("alice@example.com", PASSWORD, source=None)
    stored = runtime.store.get_user(alice.id)
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert runtime.passwords.verify(stored.password_hash, PASSWORD)
    assert [e.action for e in runtime.store.list_audit(target=alice.id)][:2] == [
        "login",
        "user.password_rehash",
    ]
    # A failed login never rehashes.
    runtime.store.update_user(alice.id, runtime.clock(), password_hash=weak)
    with pytest.raises(InvalidCredentials):
        runtime.users.authenticate("alice@example.com", "wrong password", source=None)
    assert runtime.store.get_user(alice.id).password_hash == weak  # type: ignore[union-attr]


def test_disabling_drops_the_users_keys_from_the_cache_at_once(runtime: Runtime) -> None:
    alice = runtime.users.create(ACTOR, email="alice@example.com", password=PASSWORD, role="member")
    created = runtime.keys.create(ACTOR, name="laptop", owner_id=alice.id)
    facts = RequestFacts(method="GET", path="/", headers=(("x-api-key", created.token),))
    assert isinstance(runtime.authenticator.authenticate(facts), Principal)
    assert runtime.cache.get(created.record.digest) is not None

    runtime.users.disable(ACTOR, alice.id)
    assert runtime.cache.get(created.record.digest) is None
    assert isinstance(runtime.authenticator.authenticate(facts), InvalidCredentials)
    [event] = runtime.store.list_audit(action="user.disable")
    assert (event.actor, event.target, event.source) == ("tester", alice.id, "test")


def test_role_changes_and_password_resets_are_audited(runtime: Runtime) -> None:
    alice = runtime.users.create(ACTOR, email="alice@example.com", password=PASSWORD, role="member")
    assert runtime.users.set_role(ACTOR, alice.id, "admin").role == "admin"
    runtime.users.reset_password(ACTOR, "alice@example.com", "another long one")
    runtime.users.authenticate("alice@example.com", "another long one", source=None)
    actions = [e.action for e in runtime.store.list_audit(target=alice.id)]
    assert actions[-3:] == ["user.password_reset", "user.role", "user.create"]
    with pytest.raises(InvalidRequest):
        runtime.users.set_role(ACTOR, alice.id, "root")
    with pytest.raises(NotFound):
        runtime.users.set_role(ACTOR, "usr_missing", "member")
