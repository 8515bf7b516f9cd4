"""``authgate users`` and ``authgate audit`` on the local data folder, on every back end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from authgate.manage.keys import Actor
from authgate.runtime import Runtime

PASSWORD = "correct horse battery staple"


@pytest.fixture
def cli(local_cli: Any) -> Any:
    return local_cli


def test_add_with_a_prompted_password(cli: Any, local: Runtime) -> None:
    result = cli("users", "add", "Alice@Example.com", "--role", "admin", input=f"{PASSWORD}\n" * 2)
    assert result.exit_code == 0, result.output
    assert "User Alice@example.com" in result.stdout and "role admin" in result.stdout
    assert PASSWORD not in result.output
    user = local.users.authenticate("alice@example.com", PASSWORD, source=None)
    assert user.role == "admin"


def test_add_with_password_stdin_and_json(cli: Any) -> None:
    result = cli("users", "add", "bob@example.com", "--password-stdin", "--json", input=PASSWORD)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["email"] == "bob@example.com" and body["role"] == "member"
    assert set(body) == {"id", "email", "role", "active", "created_at", "updated_at"}


def test_mismatched_confirmation_is_asked_again(cli: Any) -> None:
    result = cli(
        "users",
        "add",
        "bob@example.com",
        input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output


def test_the_password_is_never_an_argument(cli: Any) -> None:
    result = cli("users", "add", "bob@example.com", "--password", PASSWORD)
    assert result.exit_code == 2
    assert "No such option" in result.output


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["users", "add", "al\u200bice@example.com", "--password-stdin"], PASSWORD, 2, "unsafe"),
        (["users", "add", "bob@example.com", "--password-stdin"], "short", 2, "at least 8"),
        (["users", "add", "bob@example.com", "--password-stdin"], "p" * 10_000, 2, "at most 1024"),
        (["users", "add", "bob@example.com", "--password-stdin"], "", 2, "standard input is empty"),
        (
            ["users", "add", "b@example.com", "--role", "root", "--password-stdin"],
            PASSWORD,
            2,
            "root",
        ),
        (["users", "disable", "nobody@example.com"], None, 4, "no user"),
        (["users", "set-role", "nobody@example.com", "admin"], None, 4, "no user"),
    ],
)
def test_errors_are_sentences_with_exit_codes(
    cli: Any, local: Runtime, args: list[str], stdin: str | None, code: int, message: str
) -> None:
    result = cli(*args, input=stdin)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert local.users.list() == []


def test_duplicate_email_is_exit_5(cli: Any) -> None:
    assert cli("users", "add", "bob@example.com", "--password-stdin", input=PASSWORD).exit_code == 0
    again = cli("users", "add", "BOB@example.com", "--password-stdin", input=PASSWORD)
    assert again.exit_code == 5
    assert "already exists" in again.stderr


def test_list_disable_enable_set_role_reset(cli: Any, local: Runtime) -> None:
    cli("users", "add", "bob@example.com", "--password-stdin", input=PASSWORD)
    listed = cli("users", "list")
    assert listed.exit_code == 0
    for column in ("id", "email", "role", "status", "created"):
        assert column in listed.stdout
    assert "bob@example.com" in listed.stdout and "active" in listed.stdout

    assert "disabled" in cli("users", "disable", "bob@example.com").stdout
    assert local.users.get("bob@example.com").active is False
    assert "disabled" in cli("users", "list").stdout
    assert "enabled" in cli("users", "enable", "bob@example.com").stdout

    changed = cli("users", "set-role", "bob@example.com", "admin", "--json")
    assert json.loads(changed.stdout)["role"] == "admin"

    reset = cli(
        "users", "reset-password", "bob@example.com", "--password-stdin", input="new passphrase"
    )
    assert reset.exit_code == 0, reset.output
    local.users.authenticate("bob@example.com", "new passphrase", source=None)

    actions = [e.action for e in local.store.list_audit(actor="cli")]
    assert actions[:5] == [
        "user.password_reset",
        "user.role",
        "user.enable",
        "user.disable",
        "user.create",
    ]


def test_audit_command(cli: Any) -> None:
    cli("users", "add", "bob@example.com", "--password-stdin", input=PASSWORD)
    cli("keys", "create", "--name", "ci")
    cli("users", "disable", "bob@example.com")

    table = cli("audit")
    assert table.exit_code == 0, table.output
    for column in ("id", "at", "actor", "action", "target", "outcome", "source"):
        assert column in table.stdout
    events = json.loads(cli("audit", "--json").stdout)
    assert [e["action"] for e in events] == ["user.disable", "key.create", "user.create"]

    assert [
        e["action"] for e in json.loads(cli("audit", "--json", "--action", "key.create").stdout)
    ] == ["key.create"]
    user_id = events[0]["target"]
    by_key = json.loads(cli("audit", "--json", "--key", user_id).stdout)
    assert [e["action"] for e in by_key] == ["user.disable", "user.create"]
    assert len(json.loads(cli("audit", "--json", "--limit", "1").stdout)) == 1
    assert json.loads(cli("audit", "--json", "--actor", "nobody").stdout) == []
    assert len(json.loads(cli("audit", "--json", "--since", "1h").stdout)) == 3
    assert json.loads(cli("audit", "--json", "--until", "2000-01-01").stdout) == []
    assert (
        len(json.loads(cli("audit", "--json", "--since", "2000-01-01T00:00:00+00:00").stdout)) == 3
    )

    bad = cli("audit", "--since", "last tuesday")
    assert bad.exit_code == 2
    assert "neither a time" in bad.stderr


def test_audit_shows_users_by_email_and_filters_by_email(cli: Any, local: Runtime) -> None:
    cli("users", "add", "alice@example.com", "--password-stdin", input=PASSWORD)
    alice = local.users.get("alice@example.com")
    local.keys.create(Actor(alice.id, source="test"), name="laptop", owner_id=alice.id)

    mine = json.loads(cli("audit", "--json", "--actor", "Alice@Example.com").stdout)
    assert [(e["action"], e["actor"], e["actor_email"]) for e in mine] == [
        ("key.create", alice.id, "alice@example.com")
    ]
    table = cli("audit", "--actor", "alice@example.com")
    assert table.exit_code == 0, table.output
    assert "alice@example.com" in table.stdout
    assert alice.id not in table.stdout
    assert json.loads(cli("audit", "--json", "--actor", "carol@example.com").stdout) == []
