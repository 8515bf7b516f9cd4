"""``authgate access-keys`` on the local data folder and, in client mode, through a
server's API: the secret printed once, never listed, clear messages and exit codes."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner, Result

from authgate.cli import app as cli_app
from authgate.credentials.bootstrap import read_admin_key
from authgate.runtime import Runtime
from authgate.server import create_app
from tests.access_keys.conftest import ADMIN, file_keys, raw_secrets, verifies
from tests.support import live_server

Invoke = Callable[..., Result]

ID_RE = re.compile(r"\bAKAG[A-Z2-7]{16}\b")
SECRET_RE = re.compile(r"^[A-Za-z0-9+/]{40}$", re.M)


@pytest.fixture
def cli(data_dir: Path, database_url: str) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            cli_app,
            ["--data-dir", str(data_dir), *args],
            env={"AUTHGATE_DATABASE_URL": database_url, **(env or {})},
        )

    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def json_of(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def test_create_prints_the_id_and_the_secret_once(
    cli: Invoke, open_runtime: Callable[..., Runtime]
) -> None:
    result = ok(cli("access-keys", "create", "--name", "backup", "--grant", "photos=read"))
    (access_key_id,) = set(ID_RE.findall(result.stdout))
    (secret,) = SECRET_RE.findall(result.stdout)
    assert result.stdout.count(secret) == 1
    assert "shown once" in result.stdout
    assert "photos=read" in result.stdout
    result_of = verifies(open_runtime(), access_key_id, secret)
    assert dict(result_of.access_key.grants) == {"photos": "read"}


def test_create_json(cli: Invoke, open_runtime: Callable[..., Runtime], database_url: str) -> None:
    created = json_of(
        cli(
            "access-keys",
            "create",
            "--name",
            "backup",
            "--grant",
            "photos=read",
            "--grant",
            "backups=admin",
            "--json",
        )
    )
    assert ID_RE.fullmatch(created["access_key_id"])
    assert SECRET_RE.fullmatch(created["secret_access_key"])
    assert created["name"] == "backup"
    assert created["grants"] == {"backups": "admin", "photos": "read"}
    assert created["id"].startswith("ak_")
    assert created["created_at"] and created["active"] is True
    assert raw_secrets(database_url)[created["id"]] != created["secret_access_key"]
    assert verifies(open_runtime(), created["access_key_id"], created["secret_access_key"])


def test_list_and_show_never_show_the_secret(cli: Invoke, database_url: str) -> None:
    created = json_of(
        cli("access-keys", "create", "--name", "k", "--grant", "logs=write", "--json")
    )
    encrypted = raw_secrets(database_url)[created["id"]]
    outputs = [
        ok(cli("access-keys", "list")),
        ok(cli("access-keys", "list", "--json")),
        ok(cli("access-keys", "show", created["access_key_id"])),
        ok(cli("access-keys", "show", created["id"], "--json")),
    ]
    for result in outputs:
        assert created["access_key_id"] in result.stdout
        assert created["secret_access_key"] not in result.output
        assert encrypted not in result.output
        assert "secret" not in result.output.lower()
    assert "logs=write" in outputs[0].stdout
    listed = json_of(outputs[1])
    assert [item["access_key_id"] for item in listed] == [created["access_key_id"]]
    assert json_of(outputs[3])["grants"] == {"logs": "write"}


def test_grant_revoke_grant_and_revoke(cli: Invoke, open_runtime: Callable[..., Runtime]) -> None:
    created = json_of(cli("access-keys", "create", "--name", "k", "--json"))
    ident = created["access_key_id"]
    granted = ok(cli("access-keys", "grant", ident, "photos=write"))
    assert f"{ident} may now write photos" in granted.stdout
    changed = json_of(cli("access-keys", "grant", created["id"], "photos=read", "--json"))
    assert changed["grants"] == {"photos": "read"}
    taken = ok(cli("access-keys", "revoke-grant", ident, "photos"))
    assert "no longer has photos" in taken.stdout
    revoked = ok(cli("access-keys", "revoke", ident))
    assert f"{ident} revoked" in revoked.stdout
    shown = json_of(cli("access-keys", "show", ident, "--json"))
    assert (shown["revoked"], shown["active"], shown["grants"]) == (True, False, {})
    runtime = open_runtime()
    actions = [event.action for event in runtime.store.list_audit(target=created["id"])]
    assert actions == [
        "access_key.revoke",
        "access_key.revoke_grant",
        "access_key.grant",
        "access_key.grant",
        "access_key.create",
    ]
    assert {event.actor for event in runtime.store.list_audit(target=created["id"])} == {"cli"}


def test_bad_input_gets_a_sentence_and_an_exit_code(cli: Invoke) -> None:
    created = json_of(cli("access-keys", "create", "--name", "k", "--json"))
    ident = created["access_key_id"]
    cases: list[tuple[tuple[str, ...], int, str]] = [
        (("create", "--name", "x", "--grant", "Bad_Bucket=read"), 2, "bucket name 'Bad_Bucket'"),
        (("create", "--name", "x", "--grant", "photos=owner"), 2, "permission 'owner'"),
        (("create", "--name", "x", "--grant", "photos"), 2, "BUCKET=read|write|admin"),
        (("create", "--name", "not ok"), 2, "name must be"),
        (("grant", ident, "ab=read"), 2, "bucket name 'ab' is not valid"),
        (("grant", ident, "photos=everything"), 2, "use read, write or admin"),
        (("grant", ident, "photos"), 2, "BUCKET=read|write|admin"),
        (("grant", "AKAGAAAAAAAAAAAAAAAA", "photos=read"), 4, "no access key with id"),
        (("revoke-grant", ident, "photos"), 4, "has no grant on bucket 'photos'"),
        (("revoke-grant", ident, "Photos"), 2, "bucket name 'Photos'"),
        (("revoke", "AKAGAAAAAAAAAAAAAAAA"), 4, "no access key with id"),
        (("show", "ak_nothing"), 4, "no access key with id 'ak_nothing'"),
    ]
    for args, code, message in cases:
        result = cli("access-keys", *args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
    ok(cli("access-keys", "revoke", ident))
    twice = cli("access-keys", "revoke", ident)
    assert twice.exit_code == 5
    assert "already revoked" in twice.stderr
    revoked_grant = cli("access-keys", "grant", ident, "photos=read")
    assert revoked_grant.exit_code == 5
    assert len(json_of(cli("access-keys", "list", "--json"))) == 1


@pytest.fixture
def server(open_runtime: Callable[..., Runtime]) -> Iterator[tuple[str, Runtime, str]]:
    runtime = open_runtime(start=True)
    assert runtime.admin_key is not None
    admin_key = read_admin_key(runtime.admin_key.path)
    with live_server(create_app(runtime, manage_runtime=False)) as url:
        yield url, runtime, admin_key


def test_client_mode(cli: Invoke, server: tuple[str, Runtime, str], tmp_path: Path) -> None:
    url, runtime, admin_key = server
    env = {"AUTHGATE_URL": url, "AUTHGATE_TOKEN": admin_key}

    def remote(*args: str) -> Any:
        return cli("access-keys", *args, env=env)

    created = json_of(remote("create", "--name", "remote", "--grant", "photos=read", "--json"))
    assert verifies(runtime, created["access_key_id"], created["secret_access_key"])
    listed = ok(remote("list"))
    assert created["access_key_id"] in listed.stdout
    assert created["secret_access_key"] not in listed.output
    assert json_of(remote("grant", created["id"], "logs=admin", "--json"))["grants"] == {
        "logs": "admin",
        "photos": "read",
    }
    assert json_of(remote("revoke-grant", created["id"], "photos", "--json"))["grants"] == {
        "logs": "admin"
    }
    ok(remote("revoke", created["access_key_id"]))
    assert runtime.access_keys.get(created["id"]).revoked_at is not None
    (event,) = runtime.store.list_audit(action="access_key.revoke")
    assert (event.actor, event.source) == ("admin", "127.0.0.1")

    for args, code, message in [
        (("revoke", created["access_key_id"]), 5, "already revoked"),
        (("show", "AKAGAAAAAAAAAAAAAAAA"), 4, "no access key with id"),
        (("revoke-grant", created["id"], "photos"), 4, "no grant on bucket"),
    ]:
        result = remote(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.stderr

    member = runtime.keys.create(ADMIN, name="not-admin", scopes=["read"])
    refused = cli("access-keys", "list", env={"AUTHGATE_URL": url, "AUTHGATE_TOKEN": member.token})
    assert refused.exit_code == 3
    assert "admin" in refused.stderr
    no_token = cli(
        "access-keys",
        "list",
        env={"AUTHGATE_URL": url, "XDG_CONFIG_HOME": str(tmp_path / "empty-config")},
    )
    assert no_token.exit_code == 3
    assert "no token for" in no_token.stderr


def test_cli_rotate(
    cli: Invoke, open_runtime: Callable[..., Runtime], data_dir: Path, database_url: str
) -> None:
    created = json_of(cli("access-keys", "create", "--name", "k", "--json"))
    before = file_keys(data_dir / "master.key")
    report = json_of(cli("master-key", "rotate", "--json"))
    assert report == {
        "path": str(data_dir / "master.key"),
        "reencrypted": 1,
        "dropped_keys": 1,
    }
    assert file_keys(data_dir / "master.key") != before
    text = cli("master-key", "rotate")
    assert text.exit_code == 0
    assert "1 secrets re-encrypted" in text.stdout
    assert verifies(open_runtime(), created["access_key_id"], created["secret_access_key"])

    remote = cli("--url", "http://127.0.0.1:9", "master-key", "rotate")
    assert remote.exit_code == 2
    assert "run it on that" in remote.stderr


def test_cli_reports_a_damaged_master_key_and_leaves_it_alone(cli: Invoke, data_dir: Path) -> None:
    ok(cli("access-keys", "create", "--name", "victim"))
    key_file = data_dir / "master.key"
    key_file.write_bytes(b"not a key\n")

    def state() -> tuple[bytes, int, int]:
        info = os.stat(key_file)
        return key_file.read_bytes(), info.st_ino, info.st_mtime_ns

    before = state()
    for args in (("master-key", "rotate"), ("access-keys", "create", "--name", "another")):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert str(key_file) in result.stderr
        assert "damaged" in result.stderr
        assert "Traceback" not in result.output
    assert (
        key_file.read_bytes(),
        os.stat(key_file).st_ino,
        os.stat(key_file).st_mtime_ns,
    ) == before


def test_cli_reports_secrets_the_master_key_cannot_decrypt(
    cli: Invoke, data_dir: Path, database_url: str
) -> None:
    ok(cli("access-keys", "create", "--name", "victim"))
    key_file = data_dir / "master.key"
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    stored = raw_secrets(database_url)
    before = key_file.read_bytes()
    result = cli("master-key", "rotate")
    assert result.exit_code == 2
    assert f"cannot be decrypted with the master key in {key_file}" in result.stderr
    assert "nothing was changed" in result.stderr
    assert key_file.read_bytes() == before
    assert raw_secrets(database_url) == stored


BAD_PATTERNS = [
    ("backup-?", "(the only wildcard)"),
    ("backup-[0-9]", "(the only wildcard)"),
    ("Backup-*", "(the only wildcard)"),
    ("backup-**", "'**'"),
    ("xn--*", "reserves"),
]


def test_cli_grants_patterns_and_takes_them_back(cli: Invoke) -> None:
    created = json_of(cli("access-keys", "create", "--name", "ops", "--grant", "*=admin", "--json"))
    assert created["grants"] == {"*": "admin"}
    ident = created["access_key_id"]
    granted = cli("access-keys", "grant", ident, "backup-*=write")
    assert granted.exit_code == 0 and f"{ident} may now write backup-*" in granted.stdout
    assert json_of(cli("access-keys", "show", ident, "--json"))["grants"] == {
        "*": "admin",
        "backup-*": "write",
    }
    assert cli("access-keys", "revoke-grant", ident, "*").exit_code == 0
    assert json_of(cli("access-keys", "show", ident, "--json"))["grants"] == {"backup-*": "write"}


@pytest.mark.parametrize(("pattern", "hint"), BAD_PATTERNS)
def test_cli_refuses_what_is_no_pattern_with_exit_2_and_the_rule(
    cli: Invoke, pattern: str, hint: str
) -> None:
    ident = json_of(cli("access-keys", "create", "--name", "k", "--json"))["access_key_id"]
    for args in (
        ("create", "--name", "x", "--grant", f"{pattern}=read"),
        ("grant", ident, f"{pattern}=read"),
    ):
        result = cli("access-keys", *args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{pattern!r} is not valid" in result.stderr, result.stderr
        said = " ".join(result.stderr.split())  # as wrapped for the terminal
        assert hint in said and "such as backup-* or *" in said
        assert "Traceback" not in result.output
    assert json_of(cli("access-keys", "show", ident, "--json"))["grants"] == {}


def test_cli_client_mode_grants_a_pattern(cli: Invoke, server: tuple[str, Runtime, str]) -> None:
    url, runtime, admin_key = server
    env = {"AUTHGATE_URL": url, "AUTHGATE_TOKEN": admin_key}
    created = json_of(
        cli("access-keys", "create", "--name", "r", "--grant", "ci-*=write", "--json", env=env)
    )
    ident = created["id"]
    assert json_of(cli("access-keys", "grant", ident, "*=read", "--json", env=env))["grants"] == {
        "*": "read",
        "ci-*": "write",
    }
    refused = cli("access-keys", "grant", ident, "ci-?=read", env=env)
    assert refused.exit_code == 2 and "'ci-?' is not valid" in refused.stderr
    assert json_of(cli("access-keys", "revoke-grant", ident, "ci-*", "--json", env=env))[
        "grants"
    ] == {"*": "read"}
    assert runtime.access_keys.get(ident).grants == {"*": "read"}
