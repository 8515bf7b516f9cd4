"""The CLI as a newcomer meets it, each command a process of its own against a live server:
one scope catalogue everywhere, and ``authgate login`` without a terminal and with its
client state where ``AUTHGATE_CONFIG_DIR`` says."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from authgate.runtime import Runtime
from tests.api.service import PASSWORD, Service, serve
from tests.foundation.helpers import AUTHGATE, clean_env

TYPO_HINT = "unknown scope 'pakages:write' (did you mean 'packages:write'?)"


@pytest.fixture
def database_url(data_dir: Path) -> str:
    # What is tested is the CLI; the store suites cover both back ends.
    return f"sqlite:///{data_dir / 'authgate.db'}"


@pytest.fixture
def service(make_settings: Any) -> Iterator[Service]:
    runtime = Runtime(make_settings(login_rate_limit="1000/minute", scopes="packages:write"))
    runtime.start()
    try:
        with serve(runtime) as live:
            yield live
    finally:
        runtime.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME of the test's own, so the platform's default folders are watched too."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def authgate(
    *args: str, env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``authgate`` in a session of its own, so it has no controlling terminal: as in CI,
    cron or a container, whatever terminal runs the tests."""
    return subprocess.run(
        [AUTHGATE, *args],
        env=dict(env),
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = clean_env(HOME=str(home), **extra)
    env.pop("XDG_CONFIG_HOME", None)
    return env


# -- one scope catalogue --------------------------------------------------------------------
def test_the_local_cli_refuses_a_mistyped_scope_and_names_the_right_one(
    tmp_path: Path, home: Path
) -> None:
    env = _env(home, AUTHGATE_DATA_DIR=str(tmp_path / "local"), AUTHGATE_SCOPES="packages:write")
    typo = authgate("keys", "create", "--name", "ci", "--scope", "pakages:write", env=env)
    assert typo.returncode == 2, typo.stderr
    assert TYPO_HINT in typo.stderr
    assert "Traceback" not in typo.stderr
    listed = authgate("keys", "list", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []  # nothing was made

    made = authgate("keys", "create", "--name", "ci", "--scope", "packages:write", env=env)
    assert made.returncode == 0, made.stderr
    # Unknown without the setting, however well formed: the catalogue decides.
    del env["AUTHGATE_SCOPES"]
    unknown = authgate("keys", "create", "--name", "ci2", "--scope", "packages:write", env=env)
    assert unknown.returncode == 2
    assert "unknown scope 'packages:write'" in unknown.stderr
    assert "scopes setting" in unknown.stderr


def test_client_mode_refuses_the_same_typo_in_the_same_words(
    service: Service, home: Path, tmp_path: Path
) -> None:
    env = _env(home, AUTHGATE_DATA_DIR=str(tmp_path / "empty"))
    remote = ("--url", service.base_url, "--token", service.admin_key)
    typo = authgate(*remote, "keys", "create", "--name", "ci", "--scope", "pakages:write", env=env)
    assert typo.returncode == 2, typo.stderr
    assert TYPO_HINT in typo.stderr
    made = authgate(
        *remote, "keys", "create", "--name", "ci", "--scope", "packages:write", "--json", env=env
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["scopes"] == ["packages:write"]


def test_scopes_list_shows_the_same_catalogue_both_ways(
    service: Service, home: Path, tmp_path: Path
) -> None:
    env = _env(home, AUTHGATE_DATA_DIR=str(tmp_path / "local"), AUTHGATE_SCOPES="packages:write")
    local = authgate("scopes", "list", "--json", env=env)
    remote = authgate(
        "--url", service.base_url, "--token", service.admin_key, "scopes", "list", "--json", env=env
    )
    assert local.returncode == remote.returncode == 0, (local.stderr, remote.stderr)
    assert json.loads(local.stdout) == json.loads(remote.stdout)
    names = [scope["name"] for scope in json.loads(local.stdout)]
    assert names == [
        "read",
        "write",
        "tokens:manage",
        "users:manage",
        "metrics:read",
        "packages:write",
    ]
    table = authgate("scopes", "list", env=env)
    assert "packages:write" in table.stdout and "scopes setting" in table.stdout


# -- authgate login ---------------------------------------------------------------------------
def test_login_without_a_terminal_asks_for_password_stdin(
    service: Service, home: Path, tmp_path: Path
) -> None:
    service.user("alice@example.com")
    config = tmp_path / "client"
    env = _env(home, AUTHGATE_CONFIG_DIR=str(config))
    result = authgate("login", "--url", service.base_url, "--email", "alice@example.com", env=env)
    assert result.returncode == 2
    assert "no terminal to ask for the password on" in result.stderr
    assert "--password-stdin" in result.stderr
    assert "GetPassWarning" not in result.stderr and "echoed" not in result.stderr
    assert not config.exists()
    assert service.audit(action="login") == []  # nothing was sent


def test_login_with_password_stdin_keeps_its_token_in_the_config_dir(
    service: Service, home: Path, tmp_path: Path
) -> None:
    service.user("root@example.com", role="admin")
    config = tmp_path / "client" / "authgate"
    data = tmp_path / "data-of-the-cli"
    env = _env(home, AUTHGATE_CONFIG_DIR=str(config), AUTHGATE_DATA_DIR=str(data))
    login = ("login", "--url", service.base_url, "--email", "root@example.com", "--password-stdin")
    result = authgate(*login, env=env, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    path = config / "credentials.json"
    assert str(path) in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())[service.base_url]
    assert stored["token"] not in result.stdout + result.stderr
    # Neither the platform's default folder nor the data folder got a copy.
    assert not (home / ".config").exists()
    assert not data.exists() or not any(data.rglob("credentials.json"))

    listed = authgate("--url", service.base_url, "keys", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert stored["key_id"] in [key["id"] for key in json.loads(listed.stdout)]
    elsewhere = authgate("--url", service.base_url, "keys", "list", env=_env(home))
    assert elsewhere.returncode == 3
    assert "no token for" in elsewhere.stderr


def test_a_wrong_password_is_exit_3_and_stores_nothing(
    service: Service, home: Path, tmp_path: Path
) -> None:
    service.user("alice@example.com")
    config = tmp_path / "client"
    env = _env(home, AUTHGATE_CONFIG_DIR=str(config))
    login = ("login", "--url", service.base_url, "--email", "alice@example.com", "--password-stdin")
    result = authgate(*login, env=env, stdin="wrong password\n")
    assert result.returncode == 3
    assert "Invalid email or password." in result.stderr
    assert not (config / "credentials.json").exists()


def test_users_add_without_a_terminal_asks_for_password_stdin(tmp_path: Path, home: Path) -> None:
    env = _env(home, AUTHGATE_DATA_DIR=str(tmp_path / "local"))
    result = authgate("users", "add", "bob@example.com", env=env)
    assert result.returncode == 2
    assert "--password-stdin" in result.stderr and "GetPassWarning" not in result.stderr
    added = authgate("users", "add", "bob@example.com", "--password-stdin", env=env, stdin=PASSWORD)
    assert added.returncode == 0, added.stderr
