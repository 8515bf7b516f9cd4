"""The master key file: private from its first byte, made on first use, never replaced;
secrets at rest are Fernet tokens under it; a damaged or wrong key is a clear error."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from authgate.masterkey import MasterKeyError, SecretUndecryptable
from authgate.runtime import Runtime
from tests.access_keys.conftest import (
    ADMIN,
    fernet_of,
    file_keys,
    raw_secrets,
    verifies,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_created_0600_in_a_0700_folder_from_the_first_byte_under_a_permissive_umask(
    open_runtime: Callable[..., Runtime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "keys" / "master.key"
    observed: list[str] = []
    real_mkstemp, real_link, real_replace = tempfile.mkstemp, os.link, os.replace

    def everything_private(folder: Path) -> None:
        assert mode(folder) == 0o700
        for entry in folder.iterdir():
            assert mode(entry) & 0o077 == 0, (entry, oct(mode(entry)))

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)
        if Path(name).parent == key_file.parent:
            # Before its first byte the file already has its final, private mode.
            assert os.fstat(fd).st_size == 0
            assert mode(Path(name)) == 0o600
            everything_private(key_file.parent)
            observed.append("created")
        return fd, name

    def named(real: Callable[..., None]) -> Callable[..., None]:
        def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if Path(dst) == key_file:
                # The moment it gets its name: whole, private, in a private folder.
                assert mode(Path(src)) == 0o600
                assert len(file_keys(Path(src))) == 1
                everything_private(key_file.parent)
                observed.append("named")
            real(src, dst, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "link", named(real_link))
    monkeypatch.setattr(os, "replace", named(real_replace))
    previous = os.umask(0)
    try:
        runtime = open_runtime(master_key_file=key_file)
        assert not key_file.exists()  # made on first use, not at start
        created = runtime.access_keys.create(ADMIN, name="first")
    finally:
        os.umask(previous)
    assert observed == ["created", "named"]
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700
    assert len(file_keys(key_file)) == 1
    assert verifies(runtime, created.record.access_key_id, created.secret)


def test_made_on_first_use_in_the_data_folder_and_reused(
    open_runtime: Callable[..., Runtime], data_dir: Path
) -> None:
    key_file = data_dir / "master.key"
    first = open_runtime(start=True)
    assert not key_file.exists()
    created = first.access_keys.create(ADMIN, name="one")
    assert first.master_key.path == key_file
    content = key_file.read_bytes()
    assert (mode(key_file), mode(data_dir)) == (0o600, 0o700)

    later = open_runtime()
    later.access_keys.create(ADMIN, name="two")
    assert key_file.read_bytes() == content
    assert verifies(later, created.record.access_key_id, created.secret)


def test_master_key_file_setting_moves_it(
    make_settings: Callable[..., Any],
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "vault" / "authgate-master.key"
    monkeypatch.setenv("AUTHGATE_MASTER_KEY_FILE", str(elsewhere))
    runtime = Runtime(make_settings())
    try:
        runtime.prepare_store()
        runtime.access_keys.create(ADMIN, name="moved")
    finally:
        runtime.close()
    assert elsewhere.exists()
    assert mode(elsewhere) == 0o600
    assert not (data_dir / "master.key").exists()


def test_secrets_are_stored_as_fernet_tokens_under_the_master_key(
    open_runtime: Callable[..., Runtime], database_url: str, data_dir: Path
) -> None:
    runtime = open_runtime()
    created = [runtime.access_keys.create(ADMIN, name=f"k{i}") for i in range(3)]
    stored = raw_secrets(database_url)
    fernet = fernet_of(data_dir / "master.key")
    for item in created:
        raw = stored[item.record.id]
        assert raw != item.secret
        assert item.secret not in raw
        assert fernet.decrypt(raw.encode()).decode() == item.secret
    if database_url.startswith("sqlite"):
        for path in data_dir.glob("authgate.db*"):
            content = path.read_bytes()
            for item in created:
                assert item.secret.encode() not in content


DAMAGED = {
    "garbage": b"this is not a key\n",
    "truncated": Fernet.generate_key()[:-5] + b"\n",
    "binary": b"\xff\xfe\x00\x01",
    "empty": b"",
    "comments only": b"# the key used to be here\n",
}


@pytest.mark.parametrize("content", list(DAMAGED.values()), ids=list(DAMAGED))
def test_a_damaged_master_key_is_a_clear_error_and_is_never_replaced(
    open_runtime: Callable[..., Runtime], data_dir: Path, content: bytes
) -> None:
    first = open_runtime()
    created = first.access_keys.create(ADMIN, name="victim")
    key_file = data_dir / "master.key"
    key_file.write_bytes(content)
    before = (key_file.read_bytes(), os.stat(key_file).st_mtime_ns, os.stat(key_file).st_ino)

    later = open_runtime()
    attempts: list[Callable[[], object]] = [
        lambda: later.access_keys.secret_lookup(created.record.access_key_id),
        lambda: later.access_keys.create(ADMIN, name="another"),
        lambda: later.access_keys.rotate_master_key(ADMIN),
    ]
    for attempt in attempts:
        with pytest.raises(MasterKeyError) as caught:
            attempt()
        assert str(key_file) in caught.value.detail
        assert "damaged" in caught.value.detail
        assert "restore it from a backup" in caught.value.detail

    after = (key_file.read_bytes(), os.stat(key_file).st_mtime_ns, os.stat(key_file).st_ino)
    assert after == before
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".master.key")] == []


def test_a_different_master_key_cannot_decrypt_and_says_so(
    open_runtime: Callable[..., Runtime], data_dir: Path, database_url: str
) -> None:
    first = open_runtime()
    created = first.access_keys.create(ADMIN, name="victim")
    key_file = data_dir / "master.key"
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    stored = raw_secrets(database_url)
    before = key_file.read_bytes()

    later = open_runtime()
    with pytest.raises(SecretUndecryptable) as caught:
        later.access_keys.secret_lookup(created.record.access_key_id)
    message = caught.value.detail
    assert f"cannot be decrypted with the master key in {key_file}" in message
    assert created.record.access_key_id in message
    assert caught.value.status == 500

    with pytest.raises(SecretUndecryptable, match="nothing was changed"):
        later.access_keys.rotate_master_key(ADMIN)
    assert key_file.read_bytes() == before
    assert raw_secrets(database_url) == stored


def test_a_missing_master_key_is_not_remade_while_secrets_need_it(
    open_runtime: Callable[..., Runtime], data_dir: Path
) -> None:
    first = open_runtime()
    created = first.access_keys.create(ADMIN, name="victim")
    key_file = data_dir / "master.key"
    key_file.unlink()

    later = open_runtime()
    with pytest.raises(MasterKeyError, match="is missing, but the store holds 1 access key"):
        later.access_keys.create(ADMIN, name="another")
    with pytest.raises(MasterKeyError, match="is missing") as caught:
        later.access_keys.secret_lookup(created.record.access_key_id)
    assert str(key_file) in caught.value.detail
    assert not key_file.exists()


def test_a_master_key_open_to_others_is_refused(
    open_runtime: Callable[..., Runtime], data_dir: Path
) -> None:
    runtime = open_runtime()
    created = runtime.access_keys.create(ADMIN, name="k")
    key_file = data_dir / "master.key"
    key_file.chmod(0o644)
    later = open_runtime()
    with pytest.raises(MasterKeyError, match="chmod 600") as caught:
        later.access_keys.secret_lookup(created.record.access_key_id)
    assert str(key_file) in caught.value.detail
