"""The bootstrap admin key and the data folder's safety checks."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from authgate.cli import app as cli_app
from authgate.credentials.tokens import digest, generate_token, is_well_formed
from authgate.errors import ConfigurationError, InvalidCredentials
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.server import create_app
from authgate.settings import load_settings
from tests.foundation.helpers import api_key
from tests.support import live_server


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start(settings_factory: Callable[..., Any], **overrides: Any) -> Runtime:
    runtime = Runtime(settings_factory(**overrides))
    try:
        runtime.start()
    except BaseException:
        runtime.close()
        raise
    return runtime


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry of a folder with its bytes and mode, to prove nothing was touched."""
    return {
        entry.name: (entry.read_bytes() if entry.is_file() else None, mode(entry))
        for entry in folder.iterdir()
    }


def test_first_start_creates_a_private_key_file_in_a_private_folder(
    tmp_path: Path, make_settings: Callable[..., Any]
) -> None:
    fresh = tmp_path / "fresh" / "authgate"
    runtime = start(make_settings, data_dir=fresh)
    try:
        key_file = fresh / "admin.key"
        assert runtime.admin_key is not None
        assert runtime.admin_key.created is True
        assert runtime.admin_key.path == key_file
        assert mode(fresh) == 0o700
        assert mode(key_file) == 0o600
        token = key_file.read_text().strip()
        assert is_well_formed(token)
        assert runtime.admin_key.digest == digest(token)
        decision = runtime.authenticator.authenticate(api_key(token))
        assert isinstance(decision, Principal)
        assert decision.is_admin
    finally:
        runtime.close()


def test_embedded_default_creates_the_data_folder_0700(tmp_path: Path) -> None:
    fresh = tmp_path / "embedded"
    runtime = Runtime(load_settings(data_dir=fresh))
    runtime.start()
    try:
        assert mode(fresh) == 0o700
        assert mode(fresh / "admin.key") == 0o600
        assert mode(fresh / "authgate.db") == 0o600
    finally:
        runtime.close()


def test_later_starts_reuse_the_key(make_settings: Callable[..., Any], data_dir: Path) -> None:
    first = start(make_settings)
    first.close()
    key_file = data_dir / "admin.key"
    before = key_file.read_bytes()
    before_stat = key_file.stat()
    second = start(make_settings)
    try:
        assert second.admin_key is not None
        assert first.admin_key is not None
        assert second.admin_key.created is False
        assert second.admin_key.digest == first.admin_key.digest
        assert key_file.read_bytes() == before
        assert key_file.stat().st_mtime_ns == before_stat.st_mtime_ns
        assert isinstance(
            second.authenticator.authenticate(api_key(before.decode().strip())), Principal
        )
    finally:
        second.close()


def test_deleting_the_key_and_restarting_rotates_it(
    make_settings: Callable[..., Any], data_dir: Path
) -> None:
    first = start(make_settings)
    first.close()
    key_file = data_dir / "admin.key"
    old_token = key_file.read_text().strip()
    key_file.unlink()
    second = start(make_settings)
    try:
        assert second.admin_key is not None
        assert second.admin_key.created is True
        new_token = key_file.read_text().strip()
        assert new_token != old_token
        assert mode(key_file) == 0o600
        assert isinstance(second.authenticator.authenticate(api_key(new_token)), Principal)
        assert isinstance(second.authenticator.authenticate(api_key(old_token)), InvalidCredentials)
    finally:
        second.close()


def test_admin_key_file_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    elsewhere = tmp_path / "secrets" / "authgate-admin.key"
    monkeypatch.setenv("AUTHGATE_ADMIN_KEY_FILE", str(elsewhere))
    runtime = Runtime(load_settings(data_dir=data_dir, database_url=database_url))
    runtime.start()
    try:
        assert runtime.admin_key is not None
        assert runtime.admin_key.path == elsewhere
        assert not (data_dir / "admin.key").exists()
        assert mode(elsewhere) == 0o600
        assert mode(elsewhere.parent) == 0o700
        token = elsewhere.read_text().strip()
        assert isinstance(runtime.authenticator.authenticate(api_key(token)), Principal)
    finally:
        runtime.close()


def test_admin_key_is_never_in_an_http_response(runtime: Runtime) -> None:
    assert runtime.admin_key is not None
    token = runtime.admin_key.path.read_text().strip()
    secrets = (token, token[3:], runtime.admin_key.digest)
    bad = generate_token().token
    credentials: list[dict[str, str]] = [
        {},
        {"X-API-Key": token},
        {"Authorization": f"Bearer {token}"},
        {"X-API-Key": bad},
        {"X-API-Key": token, "Authorization": f"Bearer {bad}"},
        {"X-API-Key": token + "x"},
    ]
    paths = ["health", "info", "whoami", "openapi.json", "docs", "nowhere"]
    with live_server(create_app(runtime, manage_runtime=False)) as url:
        seen = 0
        for path in paths:
            for headers in credentials:
                response = httpx.get(f"{url}/authgate/v1/{path}", headers=headers)
                everything = response.text + "".join(
                    f"{k}:{v}" for k, v in response.headers.items()
                )
                for secret in secrets:
                    assert secret not in everything, (path, headers)
                seen += 1
        openapi = httpx.get(f"{url}/authgate/openapi.json").text
        assert token not in openapi
        whoami = httpx.get(f"{url}/authgate/v1/whoami", headers={"X-API-Key": token})
        assert whoami.status_code == 200
        assert whoami.json()["kind"] == "admin_key"
    assert seen == len(paths) * len(credentials)


# -- damaged admin key files -------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_text("this is not a key\n")
    path.chmod(0o600)


def _truncated(path: Path) -> None:
    path.write_text(generate_token().token[:-2] + "\n")
    path.chmod(0o600)


def _not_utf8(path: Path) -> None:
    path.write_bytes(b"ag_\xff\xfe\x00\x81 broken")
    path.chmod(0o600)


def _empty(path: Path) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)


def _world_readable(path: Path) -> None:
    path.write_text(generate_token().token + "\n")
    path.chmod(0o644)


def _a_folder(path: Path) -> None:
    path.mkdir(mode=0o700)


DAMAGE = {
    "garbage": (_garbage, "delete it and start again"),
    "bad checksum": (_truncated, "delete it and start again"),
    "not utf-8": (_not_utf8, "fix or delete the file"),
    "empty": (_empty, "delete it and start again"),
    "world readable": (_world_readable, "chmod 600"),
    "a folder": (_a_folder, "fix or delete the file"),
}


@pytest.mark.parametrize(("damage", "advice"), DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_admin_key_is_reported_and_left_alone(
    make_settings: Callable[..., Any],
    data_dir: Path,
    damage: Callable[[Path], None],
    advice: str,
) -> None:
    key_file = data_dir / "admin.key"
    damage(key_file)
    before = snapshot(data_dir)
    runtime = Runtime(make_settings())
    try:
        with pytest.raises(ConfigurationError) as caught:
            runtime.start()
        assert str(key_file) in caught.value.detail
        assert advice in caught.value.detail
        assert not runtime.authenticator.ready
    finally:
        runtime.close()
    after = snapshot(data_dir)
    assert after["admin.key"] == before["admin.key"]


def test_unreadable_admin_key_is_reported_and_left_alone(
    make_settings: Callable[..., Any], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = data_dir / "admin.key"
    key_file.write_text(generate_token().token + "\n")
    key_file.chmod(0o000)
    before = key_file.read_bytes(), mode(key_file)
    # The suite may run as root, which reads any file; refuse the open the way the
    # kernel would for anybody else.
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(key_file):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    runtime = Runtime(make_settings())
    try:
        with pytest.raises(ConfigurationError) as caught:
            runtime.start()
    finally:
        runtime.close()
    monkeypatch.undo()
    assert str(key_file) in caught.value.detail
    assert "Permission denied" in caught.value.detail
    assert "fix or delete the file" in caught.value.detail
    assert (key_file.read_bytes(), mode(key_file)) == before


def test_damaged_admin_key_through_the_cli(data_dir: Path) -> None:
    key_file = data_dir / "admin.key"
    _garbage(key_file)
    before = key_file.read_bytes()
    result = CliRunner().invoke(cli_app, ["--data-dir", str(data_dir), "admin-key"])
    assert result.exit_code == 2
    assert str(key_file) in result.stderr
    assert "delete it and start again" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert key_file.read_bytes() == before


# -- the data folder ---------------------------------------------------------------------


def test_data_folder_open_to_others_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "loose"
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "admin.key").write_text(generate_token().token + "\n")
    (folder / "admin.key").chmod(0o600)
    before = snapshot(folder)
    with pytest.raises(ConfigurationError) as caught:
        Runtime(load_settings(data_dir=folder))
    assert str(folder) in caught.value.detail
    assert "0755" in caught.value.detail
    assert f"chmod 700 {folder}" in caught.value.detail
    assert snapshot(folder) == before
    assert mode(folder) == 0o755

    result = CliRunner().invoke(cli_app, ["--data-dir", str(folder), "keys", "list"])
    assert result.exit_code == 2
    assert f"chmod 700 {folder}" in result.stderr
    assert snapshot(folder) == before


def test_data_folder_open_to_others_is_refused_with_a_shared_database(
    tmp_path: Path, postgres_url: str
) -> None:
    folder = tmp_path / "loose"
    folder.mkdir()
    folder.chmod(0o755)
    runtime = Runtime(load_settings(data_dir=folder, database_url=postgres_url))
    try:
        with pytest.raises(ConfigurationError, match="chmod 700"):
            runtime.start()
    finally:
        runtime.close()
    assert list(folder.iterdir()) == []


def test_data_folder_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    (folder / "admin.key").write_text(generate_token().token + "\n")
    (folder / "admin.key").chmod(0o600)
    before = snapshot(folder)
    owner = folder.stat().st_uid
    # Seen from a process of another user: the folder's owner is not us.
    monkeypatch.setattr(os, "getuid", lambda: owner + 4242)
    with pytest.raises(ConfigurationError) as caught:
        Runtime(load_settings(data_dir=folder))
    result = CliRunner().invoke(cli_app, ["--data-dir", str(folder), "admin-key"])
    monkeypatch.undo()
    assert str(folder) in caught.value.detail
    assert f"uid {owner}" in caught.value.detail
    assert "--data-dir" in caught.value.detail
    assert result.exit_code == 2
    assert "belongs to uid" in result.stderr
    assert result.stdout == ""
    assert snapshot(folder) == before


def test_data_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    in_the_way = tmp_path / "data"
    in_the_way.write_text("precious\n")
    runner = CliRunner()
    result = runner.invoke(cli_app, ["--data-dir", str(in_the_way), "keys", "list"])
    assert result.exit_code == 2
    assert f"{in_the_way} is not a folder" in result.stderr
    assert "Traceback" not in result.output
    below = runner.invoke(cli_app, ["--data-dir", str(in_the_way / "sub"), "admin-key"])
    assert below.exit_code == 2
    assert f"cannot create the folder {in_the_way / 'sub'}" in below.stderr
    assert below.stdout == ""
    assert in_the_way.read_text() == "precious\n"


def test_admin_key_file_in_an_impossible_place_is_refused(
    tmp_path: Path, make_settings: Callable[..., Any]
) -> None:
    in_the_way = tmp_path / "secrets"
    in_the_way.write_text("precious\n")
    runtime = Runtime(make_settings(admin_key_file=in_the_way / "admin.key"))
    try:
        with pytest.raises(ConfigurationError, match=f"{in_the_way} is not a folder"):
            runtime.start()
    finally:
        runtime.close()
    assert in_the_way.read_text() == "precious\n"
