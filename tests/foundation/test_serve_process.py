"""``authgate serve`` as a real process: banner, start-up refusals, cross-process revocation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from authgate.credentials.tokens import generate_token
from tests.foundation.helpers import clean_env, run_authgate, serve_process
from tests.support import free_port

WHOAMI = "/authgate/v1/whoami"


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    return {
        entry.name: (entry.read_bytes() if entry.is_file() else None, entry.stat().st_mode)
        for entry in sorted(folder.iterdir())
    }


def test_serve_prints_the_key_path_never_the_key_and_reuses_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key_file = data / "admin.key"
    with serve_process(tmp_path / "first", free_port(), "--data-dir", str(data)) as server:
        token = key_file.read_text().strip()
        bodies = []
        for path in ("health", "info", "whoami"):
            for headers in ({}, {"X-API-Key": token}, {"Authorization": f"Bearer {token}"}):
                response = httpx.get(f"{server.url}/authgate/v1/{path}", headers=headers)
                assert response.status_code < 500
                bodies.append(response.text + str(response.headers))
        whoami = httpx.get(f"{server.url}{WHOAMI}", headers={"Authorization": f"Bearer {token}"})
        assert whoami.status_code == 200
        assert whoami.json()["kind"] == "admin_key"
    for body in bodies:
        assert token not in body
    out, err = server.output()
    assert server.process.returncode == 0
    assert f"Admin key created: {key_file}" in err
    assert "authgate admin-key" in err
    assert token not in out + err
    assert token[3:43] not in out + err
    assert "Traceback" not in out + err

    with serve_process(tmp_path / "second", free_port(), "--data-dir", str(data)) as again:
        response = httpx.get(f"{again.url}{WHOAMI}", headers={"X-API-Key": token})
        assert response.status_code == 200
    out, err = again.output()
    assert f"Admin key found: {key_file}" in err
    assert token not in out + err
    assert key_file.read_text().strip() == token


def _revoked_within_a_second(
    url: str, data: Path, env: dict[str, str], created: dict[str, str]
) -> None:
    headers = {"X-API-Key": created["token"]}
    for _ in range(5):
        assert httpx.get(f"{url}{WHOAMI}", headers=headers).status_code == 200

    revoked = run_authgate("--data-dir", str(data), "keys", "revoke", created["id"], env=env)
    deadline = time.monotonic() + 1.0
    assert revoked.returncode == 0, revoked.stderr

    status = 200
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}{WHOAMI}", headers=headers, timeout=1).status_code
        if status == 401:
            break
        time.sleep(0.02)
    assert status == 401, "the server still accepted the key 1 s after the CLI revoked it"
    assert httpx.get(f"{url}{WHOAMI}", headers=headers).status_code == 401


def _create_key(data: Path, env: dict[str, str]) -> dict[str, str]:
    created = run_authgate(
        "--data-dir", str(data), "keys", "create", "--name", "svc", "--json", env=env
    )
    assert created.returncode == 0, created.stderr
    result: dict[str, str] = json.loads(created.stdout)
    return result


def test_cli_revocation_reaches_a_server_on_the_same_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_env()
    with serve_process(
        tmp_path / "serve",
        free_port(),
        "--data-dir",
        str(data),
        "--localhost-bypass",
        "off",
        env=env,
    ) as server:
        created = _create_key(data, env)
        _revoked_within_a_second(server.url, data, env, created)


def test_cli_revocation_reaches_a_server_on_the_same_postgres_database(
    tmp_path: Path, postgres_url: str
) -> None:
    data = tmp_path / "data"
    env = clean_env(AUTHGATE_DATABASE_URL=postgres_url)
    with serve_process(
        tmp_path / "serve",
        free_port(),
        "--data-dir",
        str(data),
        "--localhost-bypass",
        "off",
        env=env,
    ) as server:
        created = _create_key(tmp_path / "cli-data", env)
        _revoked_within_a_second(server.url, tmp_path / "cli-data", env, created)
        out, err = server.output()
        assert "127.0.0.1:5432" in err


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://postgres@127.0.0.1:1/x", "postgresql://postgres@127.0.0.1:1/x"),
        (
            "postgresql://postgres:topsecret@127.0.0.1:1/x",
            "postgresql://postgres:***@127.0.0.1:1/x",
        ),
        ("sqlite:////nonexistent-authgate-folder/x.db", "/nonexistent-authgate-folder/x.db"),
    ],
    ids=["postgres", "postgres-with-password", "sqlite-missing-folder"],
)
def test_database_down_at_start_up(tmp_path: Path, url: str, named: str) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "notes.txt").write_text("left alone\n")
    before = snapshot(data)
    result = run_authgate(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data),
        env=clean_env(AUTHGATE_DATABASE_URL=url),
    )
    assert result.returncode != 0
    assert named in result.stderr
    assert "topsecret" not in result.stdout + result.stderr
    assert "check that" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert snapshot(data) == before


def _corrupt_admin_key(data: Path) -> tuple[Path, str]:
    data.mkdir(mode=0o700)
    key_file = data / "admin.key"
    key_file.write_text("not-an-authgate-key\n")
    key_file.chmod(0o600)
    return key_file, "delete it and start again"


def _loose_folder(data: Path) -> tuple[Path, str]:
    data.mkdir()
    data.chmod(0o755)
    key_file = data / "admin.key"
    key_file.write_text(generate_token().token + "\n")
    key_file.chmod(0o600)
    return data, "chmod 700"


def _world_readable_key(data: Path) -> tuple[Path, str]:
    data.mkdir(mode=0o700)
    key_file = data / "admin.key"
    key_file.write_text(generate_token().token + "\n")
    key_file.chmod(0o644)
    return key_file, "chmod 600"


@pytest.mark.parametrize(
    "damage",
    [_corrupt_admin_key, _loose_folder, _world_readable_key],
    ids=["corrupt-admin-key", "folder-0755", "admin-key-0644"],
)
def test_unsafe_data_folder_stops_start_up_and_overwrites_nothing(
    tmp_path: Path, damage: Callable[[Path], tuple[Path, str]]
) -> None:
    data = tmp_path / "data"
    named, advice = damage(data)
    before = snapshot(data)
    result = run_authgate("serve", "--port", str(free_port()), "--data-dir", str(data))
    assert result.returncode == 2
    assert str(named) in result.stderr
    assert advice in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Uvicorn running" not in result.stderr
    assert snapshot(data)["admin.key"] == before["admin.key"]


def test_short_static_tokens_stop_start_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    from_env = run_authgate(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data),
        env=clean_env(AUTHGATE_TOKENS="tooshort"),
    )
    assert from_env.returncode == 2
    assert "AUTHGATE_TOKENS" in from_env.stderr
    assert "at least 32" in from_env.stderr
    assert "Traceback" not in from_env.stderr

    token_file = tmp_path / "tokens"
    token_file.write_text(f"{generate_token().token}\nshort\n")
    token_file.chmod(0o600)
    from_file = run_authgate(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(data),
        env=clean_env(AUTHGATE_TOKEN_FILE=str(token_file)),
    )
    assert from_file.returncode == 2
    assert f"{token_file}, line 2" in from_file.stderr
    assert "at least 32" in from_file.stderr
    assert "Traceback" not in from_file.stderr
