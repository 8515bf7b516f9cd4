"""The ``authgate`` command on the local data folder or database, on both back ends."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from authgate.cli import app as cli_app
from authgate.credentials.tokens import is_well_formed
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.store import Store, open_store
from tests.foundation.helpers import api_key, run_authgate
from tests.support import ROOMY_STORE

TOKEN_RE = re.compile(r"ag_[0-9A-Za-z]{46}")

Invoke = Callable[..., Result]


@pytest.fixture
def cli(data_dir: Path, database_url: str) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(
            cli_app,
            ["--data-dir", str(data_dir), *args],
            env={"AUTHGATE_DATABASE_URL": database_url},
        )

    return invoke


@pytest.fixture
def audit_store(database_url: str) -> Iterator[Store]:
    store = open_store(database_url, ROOMY_STORE)
    try:
        yield store
    finally:
        store.close()


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def create_json(cli: Invoke, name: str, *extra: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        ok(cli("keys", "create", "--name", name, *extra, "--json")).stdout
    )
    return data


def authenticates(make_settings: Callable[..., Any], token: str) -> bool:
    runtime = Runtime(make_settings())
    try:
        runtime.start()
        return isinstance(runtime.authenticator.authenticate(api_key(token)), Principal)
    finally:
        runtime.close()


def test_create_prints_the_token_once_and_nothing_shows_it_again(
    cli: Invoke, data_dir: Path, database_url: str, make_settings: Callable[..., Any]
) -> None:
    before = datetime.now(UTC)
    created = create_json(
        cli, "billing", "--scope", "read", "--scope", "write", "--expires-in", "30d"
    )
    token = created["token"]
    assert is_well_formed(token)
    assert created["name"] == "billing"
    assert created["scopes"] == ["read", "write"]
    assert created["hint"] == token[:7] + "…"
    expires = datetime.fromisoformat(created["expires_at"])
    assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
    assert "digest" not in created
    token_digest = hashlib.sha256(token.encode()).hexdigest()

    outputs = [
        ok(cli("keys", "list")),
        ok(cli("keys", "list", "--json")),
        ok(cli("keys", "show", created["id"])),
        ok(cli("keys", "show", created["id"], "--json")),
    ]
    for result in outputs:
        assert created["id"] in result.stdout
        assert token not in result.output
        assert token[3:43] not in result.output
        assert token_digest not in result.output
    shown = json.loads(outputs[3].stdout)
    assert shown["id"] == created["id"]
    assert shown["hint"] == created["hint"]
    assert "token" not in shown
    assert "digest" not in shown
    listed = json.loads(outputs[1].stdout)
    assert [k["id"] for k in listed] == [created["id"]]
    assert authenticates(make_settings, token)

    if database_url.startswith("sqlite"):
        # Stored hashed: the plaintext is nowhere in the database files.
        for path in data_dir.glob("authgate.db*"):
            assert token.encode() not in path.read_bytes()


def test_create_in_text_mode_prints_the_token_and_a_warning(cli: Invoke) -> None:
    result = ok(cli("keys", "create", "--name", "plain"))
    tokens = TOKEN_RE.findall(result.stdout)
    assert len(tokens) == 1
    assert is_well_formed(tokens[0])
    assert "shown once" in result.stdout


def test_list_and_show_in_text_mode(cli: Invoke) -> None:
    first = create_json(cli, "first", "--scope", "read")
    second = create_json(cli, "second", "--expires-in", "12h")
    table = ok(cli("keys", "list")).stdout
    for key in (first, second):
        assert key["id"] in table
        assert key["name"] in table
        assert key["hint"] in table
    assert "active" in table
    shown = ok(cli("keys", "show", second["id"])).stdout
    assert second["id"] in shown
    assert second["expires_at"] in shown


def test_revoke(cli: Invoke, make_settings: Callable[..., Any]) -> None:
    created = create_json(cli, "doomed")
    assert authenticates(make_settings, created["token"])
    result = ok(cli("keys", "revoke", created["id"]))
    assert created["id"] in result.stdout
    shown = json.loads(ok(cli("keys", "show", created["id"], "--json")).stdout)
    assert shown["revoked"] is True
    assert shown["active"] is False
    assert not authenticates(make_settings, created["token"])
    again = cli("keys", "revoke", created["id"])
    assert again.exit_code == 5
    assert "already revoked" in again.stderr
    # The name is free again once the key is revoked.
    create_json(cli, "doomed")


def test_revoke_json(cli: Invoke) -> None:
    created = create_json(cli, "doomed")
    revoked = json.loads(ok(cli("keys", "revoke", created["id"], "--json")).stdout)
    assert revoked["id"] == created["id"]
    assert revoked["revoked"] is True
    assert "token" not in revoked


def test_rotate_with_grace(cli: Invoke, make_settings: Callable[..., Any]) -> None:
    old = create_json(cli, "rotating", "--scope", "read", "--expires-in", "30d")
    before = datetime.now(UTC)
    result = ok(cli("keys", "rotate", old["id"], "--grace", "1h"))
    tokens = TOKEN_RE.findall(result.stdout)
    assert len(tokens) == 1
    new_token = tokens[0]
    assert new_token != old["token"]
    assert "1h" in result.stdout
    assert authenticates(make_settings, old["token"])
    assert authenticates(make_settings, new_token)

    old_after = json.loads(ok(cli("keys", "show", old["id"], "--json")).stdout)
    assert old_after["rotated_to"] is not None
    old_expiry = datetime.fromisoformat(old_after["expires_at"])
    assert before + timedelta(hours=1) <= old_expiry <= datetime.now(UTC) + timedelta(hours=1)
    new = json.loads(ok(cli("keys", "show", old_after["rotated_to"], "--json")).stdout)
    assert (new["name"], new["scopes"]) == ("rotating", ["read"])
    assert new["hint"] == new_token[:7] + "…"

    again = cli("keys", "rotate", old["id"])
    assert again.exit_code == 5
    assert "already rotated" in again.stderr


def test_rotate_json(cli: Invoke) -> None:
    old = create_json(cli, "rotating")
    new = json.loads(ok(cli("keys", "rotate", old["id"], "--grace", "1h", "--json")).stdout)
    assert is_well_formed(new["token"])
    assert new["token"] != old["token"]
    assert new["id"] != old["id"]
    assert new["name"] == "rotating"


def test_token_generate() -> None:
    runner = CliRunner()
    tokens = set()
    for _ in range(5):
        result = ok(runner.invoke(cli_app, ["token", "generate"]))
        token = result.stdout.strip()
        assert is_well_formed(token)
        tokens.add(token)
    as_json = json.loads(ok(runner.invoke(cli_app, ["token", "generate", "--json"])).stdout)
    assert is_well_formed(as_json["token"])
    tokens.add(as_json["token"])
    assert len(tokens) == 6


def test_admin_key(cli: Invoke, data_dir: Path, make_settings: Callable[..., Any]) -> None:
    printed = ok(cli("admin-key")).stdout.strip()
    assert is_well_formed(printed)
    key_file = data_dir / "admin.key"
    assert key_file.read_text().strip() == printed
    as_json = json.loads(ok(cli("admin-key", "--json")).stdout)
    assert as_json == {"admin_key": printed, "path": str(key_file)}
    runtime = Runtime(make_settings())
    try:
        runtime.start()
        decision = runtime.authenticator.authenticate(api_key(printed))
        assert isinstance(decision, Principal)
        assert decision.is_admin
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("keys", "create", "--name", "x", "--expires-in", "30 days"), "--expires-in"),
        (("keys", "create", "--name", "x", "--expires-in", "d30"), "--expires-in"),
        (("keys", "create", "--name", "x", "--expires-in", "0d"), "future"),
        (("keys", "create", "--name", "x", "--expires-in", "99999999999d"), "too long"),
        (("keys", "create", "--name", "x", "--expires-in", "1000000w"), "too long"),
        (("keys", "create", "--name", "has space"), "name"),
        (("keys", "create", "--name", "x", "--scope", "bad scope!"), "scope"),
    ],
    ids=["words", "unit-first", "zero", "overflow", "past-year-9999", "bad-name", "bad-scope"],
)
def test_bad_input_exits_2_with_a_message(cli: Invoke, args: tuple[str, ...], needle: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output
    listed = json.loads(ok(cli("keys", "list", "--json")).stdout)
    assert listed == []


def test_bad_grace_exits_2(cli: Invoke) -> None:
    created = create_json(cli, "svc")
    result = cli("keys", "rotate", created["id"], "--grace", "soon")
    assert result.exit_code == 2
    assert "--grace" in result.stderr
    assert "30d" in result.stderr
    huge = cli("keys", "rotate", created["id"], "--grace", "99999999999d")
    assert huge.exit_code == 2
    assert "too long" in huge.stderr
    assert "Traceback" not in huge.output
    shown = json.loads(ok(cli("keys", "show", created["id"], "--json")).stdout)
    assert shown["rotated_to"] is None


def test_duplicate_name_exits_5(cli: Invoke) -> None:
    create_json(cli, "twin")
    result = cli("keys", "create", "--name", "twin")
    assert result.exit_code == 5
    assert "twin" in result.stderr
    assert "already exists" in result.stderr
    assert TOKEN_RE.search(result.output) is None
    assert len(json.loads(ok(cli("keys", "list", "--json")).stdout)) == 1


@pytest.mark.parametrize("command", ["show", "revoke", "rotate"])
def test_unknown_id_exits_4(cli: Invoke, command: str) -> None:
    result = cli("keys", command, "key_doesnotexist")
    assert result.exit_code == 4
    assert "key_doesnotexist" in result.stderr
    assert "Traceback" not in result.output


def test_every_key_lifecycle_event_is_audited(cli: Invoke, audit_store: Store) -> None:
    start = datetime.now(UTC)
    created = create_json(cli, "audited", "--scope", "read")
    rotated = json.loads(ok(cli("keys", "rotate", created["id"], "--grace", "1h", "--json")).stdout)
    ok(cli("keys", "revoke", rotated["id"]))
    end = datetime.now(UTC)

    events = list(reversed(audit_store.list_audit()))
    assert [e.action for e in events] == ["key.create", "key.rotate", "key.revoke"]
    by_action = {e.action: e for e in events}
    create = by_action["key.create"]
    rotate = by_action["key.rotate"]
    revoke = by_action["key.revoke"]
    assert create.target == created["id"]
    assert create.detail["name"] == "audited"
    assert create.detail["scopes"] == ["read"]
    assert rotate.target == created["id"]
    assert rotate.detail["successor"] == rotated["id"]
    assert rotate.detail["grace_seconds"] == 3600
    assert revoke.target == rotated["id"]
    for event in (create, rotate, revoke):
        assert event.actor == "cli"  # who
        assert event.source == "cli"  # from where
        assert event.outcome == "success"
        assert start <= event.at <= end  # when
        assert created["token"] not in json.dumps(event.as_dict())
        assert rotated["token"] not in json.dumps(event.as_dict())


def test_the_installed_command_in_its_own_process(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = run_authgate("--data-dir", data, "keys", "create", "--name", "proc", "--json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    assert is_well_formed(token)
    missing = run_authgate("--data-dir", data, "keys", "show", "key_nope")
    assert missing.returncode == 4
    assert "key_nope" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert token not in missing.stdout + missing.stderr
