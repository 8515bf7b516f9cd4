"""Client mode: ``keys``, ``users`` and ``audit`` through a live server's API give the same
output as on the local data folder, and ``authgate login`` keeps a token for later."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from authgate.cli import app
from authgate.runtime import Runtime
from tests.api.service import PASSWORD, Service, serve


@pytest.fixture
def service(runtime: Runtime) -> Iterator[Service]:
    with serve(runtime) as live:
        yield live


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def remote_cli(service: Service, config_home: Path, tmp_path: Path) -> Any:
    """The CLI in client mode, with the admin key unless told otherwise. Its data folder is
    empty: everything must come from the server."""
    runner = CliRunner()
    elsewhere = tmp_path / "no-data-here"

    def invoke(
        *args: str, input: str | None = None, token: str | None = service.admin_key, **env: str
    ) -> Result:
        prefix = ["--data-dir", str(elsewhere), "--url", service.base_url]
        if token is not None:
            prefix += ["--token", token]
        return runner.invoke(app, [*prefix, *args], input=input, env=env or None)

    return invoke


def _same(local: Result, remote: Result) -> None:
    assert local.exit_code == remote.exit_code == 0, (local.output, remote.output)
    assert local.stdout == remote.stdout


def test_keys_users_and_audit_print_the_same_both_ways(
    service: Service, local_cli: Any, remote_cli: Any, tmp_path: Path
) -> None:
    created = remote_cli(
        "keys", "create", "--name", "ci", "--scope", "read", "--expires-in", "7d", "--json"
    )
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert list(key)[0] == "token" and key["token"].startswith("ag_")
    assert (
        remote_cli("users", "add", "bob@example.com", "--password-stdin", input=PASSWORD).exit_code
        == 0
    )
    service.login("bob@example.com")
    local_cli("keys", "create", "--name", "local-made")

    for command in (
        # Everyone's on both sides: the data folder's operator sees every key.
        ["keys", "list", "--all"],
        ["keys", "list", "--all", "--json"],
        ["keys", "show", key["id"]],
        ["keys", "show", key["id"], "--json"],
        ["users", "list"],
        ["users", "list", "--json"],
        ["audit"],
        ["audit", "--json", "--action", "key.create"],
        ["audit", "--json", "--limit", "2"],
    ):
        _same(local_cli(*command), remote_cli(*command))
    assert not (tmp_path / "no-data-here").exists()  # nothing local was opened


def test_changes_through_the_api(service: Service, remote_cli: Any) -> None:
    key = json.loads(remote_cli("keys", "create", "--name", "ci", "--json").stdout)
    rotated = remote_cli("keys", "rotate", key["id"], "--grace", "1h", "--json")
    assert rotated.exit_code == 0, rotated.output
    successor = json.loads(rotated.stdout)
    assert successor["name"] == "ci" and successor["token"] != key["token"]
    revoked = remote_cli("keys", "revoke", successor["id"])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    assert service.runtime.store.get_key(successor["id"]).revoked_at is not None  # type: ignore[union-attr]

    remote_cli("users", "add", "bob@example.com", "--password-stdin", input=PASSWORD)
    assert "disabled" in remote_cli("users", "disable", "bob@example.com").stdout
    assert (
        json.loads(remote_cli("users", "set-role", "bob@example.com", "admin", "--json").stdout)[
            "role"
        ]
        == "admin"
    )
    reset = remote_cli(
        "users", "reset-password", "bob@example.com", "--password-stdin", input="new passphrase"
    )
    assert reset.exit_code == 0, reset.output
    remote_cli("users", "enable", "bob@example.com")
    assert service.login("bob@example.com", password="new passphrase")["token"]

    # The server recorded who did it: the admin key, from the CLI's address.
    actions = {(e["actor"], e["action"]) for e in service.audit(actor="admin")}
    assert {("admin", "user.disable"), ("admin", "user.role"), ("admin", "key.rotate")} <= actions


@pytest.mark.parametrize(
    ("command", "stdin", "code"),
    [
        (["keys", "show", "key_missing"], None, 4),
        (["keys", "revoke", "key_missing"], None, 4),
        (["keys", "create", "--name", "bad name"], None, 2),
        (["users", "add", "al\u200bice@example.com", "--password-stdin"], PASSWORD, 2),
        (["users", "add", "carol@example.com", "--role", "root", "--password-stdin"], PASSWORD, 2),
        (["users", "add", "BOB@example.com", "--password-stdin"], PASSWORD, 5),
        (["users", "disable", "nobody@example.com"], None, 4),
        (["users", "reset-password", "bob@example.com", "--password-stdin"], "short", 2),
    ],
)
def test_errors_read_the_same_both_ways(
    service: Service,
    local_cli: Any,
    remote_cli: Any,
    command: list[str],
    stdin: str | None,
    code: int,
) -> None:
    service.user("bob@example.com")
    local = local_cli(*command, input=stdin)
    remote = remote_cli(*command, input=stdin)
    assert local.exit_code == remote.exit_code == code, (local.output, remote.output)
    assert local.stderr == remote.stderr
    assert local.stderr.startswith("error:")


def test_remote_errors_of_its_own(service: Service, remote_cli: Any) -> None:
    service.user("bob@example.com")
    member = service.login("bob@example.com")["token"]
    refused = remote_cli("users", "list", token=member)
    assert refused.exit_code == 3
    assert "users:manage" in refused.stderr
    bad_token = remote_cli("users", "list", token="ag_" + "x" * 46)
    assert bad_token.exit_code == 3
    assert "Invalid, expired or revoked credentials." in bad_token.stderr
    no_token = remote_cli("users", "list", token=None)
    assert no_token.exit_code == 3
    assert "authgate login --url" in no_token.stderr
    whole_days = remote_cli("keys", "create", "--name", "x", "--expires-in", "12h")
    assert whole_days.exit_code == 2
    assert "whole days" in whole_days.stderr


def test_an_unreachable_server_is_exit_6(config_home: Path) -> None:
    from tests.support import free_port

    result = CliRunner().invoke(
        app, ["--url", f"http://127.0.0.1:{free_port()}", "--token", "t", "users", "list"]
    )
    assert result.exit_code == 6
    assert "cannot reach" in result.stderr


def test_environment_variables_select_client_mode(service: Service, remote_cli: Any) -> None:
    service.user("bob@example.com")
    result = CliRunner().invoke(
        app,
        ["users", "list", "--json"],
        env={"AUTHGATE_URL": service.base_url, "AUTHGATE_TOKEN": service.admin_key},
    )
    assert result.exit_code == 0, result.output
    assert [u["email"] for u in json.loads(result.stdout)] == ["bob@example.com"]


def test_login_stores_a_private_token_used_by_later_commands(
    service: Service, config_home: Path
) -> None:
    service.user("root@example.com", role="admin")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["login", "--url", service.base_url, "--email", "root@example.com", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    path = config_home / "authgate" / "credentials.json"
    assert str(path) in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())[service.base_url]
    assert stored["token"] not in result.output
    assert stored["email"] == "root@example.com"

    listed = runner.invoke(app, ["--url", service.base_url, "users", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [u["email"] for u in json.loads(listed.stdout)] == ["root@example.com"]
    [event] = [e for e in service.audit(action="login") if e["outcome"] == "success"]
    assert event["actor"] == json.loads(listed.stdout)[0]["id"]

    # Logging in again (prompted this time) replaces the stored token.
    again = runner.invoke(
        app,
        ["--url", service.base_url, "login", "--email", "root@example.com", "--json"],
        input=PASSWORD + "\n",
    )
    assert again.exit_code == 0, again.output
    assert "token" not in json.loads(again.stdout)
    assert json.loads(path.read_text())[service.base_url]["token"] != stored["token"]


def test_failed_login_stores_nothing(service: Service, config_home: Path) -> None:
    service.user("root@example.com", role="admin")
    result = CliRunner().invoke(
        app,
        ["login", "--url", service.base_url, "--email", "root@example.com", "--password-stdin"],
        input="wrong password\n",
    )
    assert result.exit_code == 3
    assert "Invalid email or password." in result.stderr
    assert not (config_home / "authgate" / "credentials.json").exists()
    assert CliRunner().invoke(app, ["login", "--email", "x@example.com"]).exit_code == 2
