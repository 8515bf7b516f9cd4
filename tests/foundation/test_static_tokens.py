"""Operator tokens: AUTHGATE_TOKENS and a token file re-read on change."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.credentials.tokens import generate_token
from authgate.errors import ConfigurationError, InvalidCredentials
from authgate.principal import Principal
from authgate.runtime import Runtime
from authgate.settings import load_settings
from tests.foundation.helpers import api_key
from tests.support import wait_until

LONG_A = "static-token-for-service-a-0123456789"
LONG_B = "static-token-for-service-b-0123456789"


def is_static(runtime: Runtime, token: str) -> bool:
    decision = runtime.authenticator.authenticate(api_key(token))
    return isinstance(decision, Principal) and decision.kind == "static_token"


def is_refused(runtime: Runtime, token: str) -> bool:
    return isinstance(runtime.authenticator.authenticate(api_key(token)), InvalidCredentials)


@pytest.fixture
def start_runtime(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def start(**overrides: Any) -> Runtime:
        runtime = Runtime(make_settings(**overrides))
        runtime.start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.close()


def write_replacing(path: Path, text: str) -> None:
    """Replace the file the way deploy tools do: write aside, then rename over it."""
    aside = path.with_name(path.name + ".new")
    aside.write_text(text)
    aside.chmod(0o600)  # a token file is a secret file: only its owner reads it
    os.replace(aside, path)


def test_tokens_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, database_url: str
) -> None:
    generated = generate_token().token
    monkeypatch.setenv("AUTHGATE_TOKENS", f"{LONG_A}, {generated} ,")
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    assert settings.tokens == (LONG_A, generated)
    runtime = Runtime(settings)
    runtime.start()
    try:
        for token in (LONG_A, generated):
            decision = runtime.authenticator.authenticate(api_key(token))
            assert isinstance(decision, Principal)
            assert decision.kind == "static_token"
            # The principal names its source, never the token.
            assert token not in repr(decision)
            assert "AUTHGATE_TOKENS" in decision.name
        assert is_refused(runtime, LONG_B)
    finally:
        runtime.close()


@pytest.mark.parametrize("value", ["short", f"{LONG_A},{'x' * 31}"])
def test_short_token_in_the_environment_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, value: str
) -> None:
    monkeypatch.setenv("AUTHGATE_TOKENS", value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(data_dir=data_dir)
    message = caught.value.detail
    assert "AUTHGATE_TOKENS" in message
    assert "at least 32" in message
    # The offending token is not echoed back.
    assert "x" * 31 not in message


def test_a_token_of_exactly_32_characters_is_accepted(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    monkeypatch.setenv("AUTHGATE_TOKENS", "y" * 32)
    assert load_settings(data_dir=data_dir).tokens == ("y" * 32,)


def test_short_token_in_the_file_stops_start_up_naming_file_and_line(
    tmp_path: Path, make_settings: Callable[..., Any]
) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"# service tokens\n{LONG_A}\n\ntoo-short\n")
    token_file.chmod(0o600)
    with pytest.raises(ConfigurationError) as caught:
        Runtime(make_settings(token_file=token_file))
    message = caught.value.detail
    assert str(token_file) in message
    assert "line 4" in message
    assert "at least 32" in message


def test_missing_token_file_stops_start_up(
    tmp_path: Path, make_settings: Callable[..., Any]
) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigurationError, match="does not exist"):
        Runtime(make_settings(token_file=missing))


def test_token_file_is_reread_without_restart(
    tmp_path: Path, start_runtime: Callable[..., Runtime]
) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"# comment\n{LONG_A}\n")
    token_file.chmod(0o600)
    runtime = start_runtime(token_file=token_file)
    assert is_static(runtime, LONG_A)
    assert is_refused(runtime, LONG_B)

    write_replacing(token_file, f"{LONG_B}\n")
    assert wait_until(lambda: is_static(runtime, LONG_B))
    assert is_refused(runtime, LONG_A)


def test_token_file_edited_in_place_is_reread(
    tmp_path: Path, start_runtime: Callable[..., Runtime]
) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"{LONG_A}\n")
    token_file.chmod(0o600)
    runtime = start_runtime(token_file=token_file)
    assert is_static(runtime, LONG_A)
    with token_file.open("a") as handle:
        handle.write(f"{LONG_B}\n")
    assert wait_until(lambda: is_static(runtime, LONG_B))
    assert is_static(runtime, LONG_A)


def test_broken_new_token_file_keeps_the_old_tokens(
    tmp_path: Path, start_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"{LONG_A}\n")
    token_file.chmod(0o600)
    runtime = start_runtime(token_file=token_file)
    assert is_static(runtime, LONG_A)

    write_replacing(token_file, f"{LONG_B}\nshort\n")
    assert wait_until(lambda: "token file not reloaded" in caplog.text)
    assert f"{token_file}, line 2" in caplog.text
    assert is_static(runtime, LONG_A)
    assert is_refused(runtime, LONG_B)

    # Fixed: the new tokens take over.
    write_replacing(token_file, f"{LONG_B}\n")
    assert wait_until(lambda: is_static(runtime, LONG_B))
    assert is_refused(runtime, LONG_A)


def test_deleted_token_file_keeps_the_old_tokens(
    tmp_path: Path, start_runtime: Callable[..., Runtime]
) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"{LONG_A}\n")
    token_file.chmod(0o600)
    runtime = start_runtime(token_file=token_file)
    token_file.unlink()
    assert runtime.static_tokens.reload_if_changed() is False
    assert is_static(runtime, LONG_A)


def test_token_file_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(f"{LONG_B}\n")
    token_file.chmod(0o600)
    monkeypatch.setenv("AUTHGATE_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AUTHGATE_TOKENS", LONG_A)
    runtime = Runtime(load_settings(data_dir=data_dir, database_url=database_url))
    runtime.start()
    try:
        assert is_static(runtime, LONG_A)
        assert is_static(runtime, LONG_B)
    finally:
        runtime.close()
