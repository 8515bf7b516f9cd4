"""Settings from flags, AUTHGATE_* and a TOML file; durations as operators type them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authgate.cli import app as cli_app
from authgate.clock import parse_duration
from authgate.errors import ConfigurationError
from authgate.settings import load_settings

LONG = "a-static-token-of-more-than-32-characters"


def test_precedence_flag_over_environment_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "from-file"}"\nport = 9001\nhost = "127.0.0.2"\n'
        f'tokens = ["{LONG}"]\n'
    )
    from_file = load_settings(config)
    assert from_file.data_dir == tmp_path / "from-file"
    assert (from_file.port, from_file.host, from_file.tokens) == (9001, "127.0.0.2", (LONG,))

    monkeypatch.setenv("AUTHGATE_PORT", "9002")
    assert load_settings(config).port == 9002
    assert load_settings(config, port=9003).port == 9003
    assert load_settings(config, port=None).port == 9002
    # The file is read for one load only.
    assert load_settings().data_dir != tmp_path / "from-file"


def test_short_token_in_the_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text('tokens = ["short"]\n')
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_settings(config)


def test_bad_settings_are_a_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    monkeypatch.setenv("AUTHGATE_PORT", "eighty")
    with pytest.raises(ConfigurationError, match="port"):
        load_settings()
    monkeypatch.delenv("AUTHGATE_PORT")
    monkeypatch.setenv("AUTHGATE_LOCALHOST_BYPASS", "sometimes")
    with pytest.raises(ConfigurationError, match="localhost_bypass"):
        load_settings()
    monkeypatch.delenv("AUTHGATE_LOCALHOST_BYPASS")
    monkeypatch.setenv("AUTHGATE_NO_SUCH_SETTING", "1")
    assert load_settings().port == 8080


def test_database_url_and_admin_key_file_resolve(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'authgate.db'}"
    assert settings.resolved_admin_key_file == tmp_path / "admin.key"


def test_cli_reads_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "configured"
    config = tmp_path / "authgate.toml"
    config.write_text(f'data_dir = "{data}"\n')
    result = CliRunner().invoke(cli_app, ["--config", str(config), "keys", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert (data / "authgate.db").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        (" 1H ", timedelta(hours=1)),
        ("36500d", timedelta(days=36500)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "d", "30", "30 d", "-1d", "1.5h", "3y", "d30", "３d", "²d", "1e3s"]
)
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["36501d", "1000000w", "99999999999999999999d"])
def test_durations_too_long_for_a_date(text: str) -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)
