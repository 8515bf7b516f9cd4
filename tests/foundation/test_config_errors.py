"""A bad configuration stops ``authgate serve`` with one sentence per problem that names the
file and line (or the environment variable), the setting and its likely spelling; exit 2,
never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from authgate.errors import ConfigurationError
from authgate.policy import Rule
from authgate.settings import load_settings
from tests.foundation.helpers import clean_env, run_authgate


def _serve_with(tmp_path: Path, toml: str, **env: str) -> tuple[int, str]:
    config = tmp_path / "authgate.toml"
    config.write_text(toml)
    result = run_authgate(
        "--data-dir", str(tmp_path / "data"), "--config", str(config), "serve", env=clean_env(**env)
    )
    return result.returncode, result.stdout + result.stderr


def test_a_toml_syntax_error_names_the_file_and_line_without_a_traceback(tmp_path: Path) -> None:
    code, output = _serve_with(tmp_path, "port = 9000\nport 9001\n")
    assert code == 2
    assert "Traceback" not in output
    assert "authgate.toml: not valid TOML" in output
    assert "line 2" in output


def test_an_unknown_setting_names_file_line_and_the_closest_setting(tmp_path: Path) -> None:
    code, output = _serve_with(tmp_path, "# mine\nhost = '127.0.0.1'\nprot = 27005\n")
    assert code == 2
    assert "Traceback" not in output
    assert "authgate.toml:3: prot: no such setting (did you mean 'port'?)" in output


def test_a_mistyped_rule_method_is_refused_with_the_method_it_resembles(tmp_path: Path) -> None:
    toml = '[[rules]]\npath = "/public/**"\nmethod = "GETT"\npublic = true\n'
    code, output = _serve_with(tmp_path, toml)
    assert code == 2
    assert "authgate.toml:1: rules.0: unknown HTTP method in a rule: GETT (did you mean GET?)" in (
        output
    )


def test_an_unknown_key_in_a_rule_suggests_the_rule_key(tmp_path: Path) -> None:
    code, output = _serve_with(tmp_path, 'port = 9000\n\n[[rules]]\npath = "/a"\npublik = true\n')
    assert code == 2
    assert "authgate.toml:5: rules.0.publik: no such setting (did you mean 'public'?)" in output


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    code, output = _serve_with(tmp_path, "", AUTHGATE_PORT="eighty")
    assert code == 2
    assert "AUTHGATE_PORT: port:" in output
    assert "authgate.toml" not in output


def test_a_bad_value_in_the_file_names_its_line(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text('host = "127.0.0.1"\n\nport = "eighty"\n')
    with pytest.raises(ConfigurationError) as refused:
        load_settings(config_file=config)
    assert f"{config}:3: port: Input should be a valid integer" in refused.value.detail


def test_a_flag_given_value_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    config = tmp_path / "authgate.toml"
    config.write_text("port = 9000\n")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(config_file=config, port=-1)
    assert refused.value.detail.startswith("invalid configuration: port:")


@pytest.mark.parametrize("method", ["PROPFIND", "MKCOL", "PATCH", "get", "*"])
def test_real_methods_are_accepted(method: str) -> None:
    assert Rule(method, "/dav/**").matches(method.upper() if method != "*" else "GET", "/dav/x")


def test_an_unknown_method_without_a_close_match_is_still_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown HTTP method in a rule: FROBNICATE$"):
        Rule("FROBNICATE", "/a")


def test_a_taken_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = tmp_path / "data"
        result = run_authgate("--data-dir", str(data), "serve", "--port", str(port))
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "--port N" in output
    assert "Traceback" not in output and "Errno" not in output
    assert not data.exists()  # nothing migrated, no admin key made
