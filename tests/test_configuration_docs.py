"""docs/configuration.md is the settings model, written out, and says what is true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from authgate.docgen import PAGE, render
from authgate.settings import Settings, load_settings

README = PAGE.parents[1] / "README.md"


def docgen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "authgate.docgen", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_page_matches_the_settings_model() -> None:
    done = docgen("--check")
    assert done.returncode == 0, done.stderr


def test_a_stale_page_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(PAGE.read_text().replace("`AUTHGATE_PORT`", "`AUTHGATE_PROT`"))
    done = docgen("--check", "--output", str(stale))
    assert done.returncode == 1
    assert "does not match the settings model" in done.stderr
    assert "python -m authgate.docgen" in done.stderr
    # Writing it again makes it current.
    assert docgen("--output", str(stale)).returncode == 0
    assert stale.read_text() == PAGE.read_text()


def test_every_setting_has_a_row_with_its_variable_and_meaning() -> None:
    rows = {
        match[0]: match[1:]
        for match in re.findall(
            r"^\| `(\w+)` \| (.*?) \| (.*?) \| (.*?) \| (.*?) \|$", PAGE.read_text(), re.M
        )
    }
    settable = {name for name, info in Settings.model_fields.items() if not info.exclude}
    assert set(rows) == settable
    for name, (environment, type_, default, meaning) in rows.items():
        assert f"`AUTHGATE_{name.upper()}`" in environment, name
        assert type_ and default and len(meaning) > 10, name
    assert "`WEB_CONCURRENCY`" in rows["workers"][0]
    assert rows["port"][1:3] == ("integer (≥ 0, ≤ 65535)", "`8080`")
    assert rows["localhost_bypass"][1] == r"`auto` \| `on` \| `off`"


def test_a_setting_without_a_docstring_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    info = Settings.model_fields["port"]
    monkeypatch.setattr(info, "description", None)
    with pytest.raises(ValueError, match="'port' has no docstring"):
        render()


def test_the_pages_examples_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = PAGE.read_text()
    (toml,) = re.findall(r"```toml\n(.*?)```", text, re.S)
    config = tmp_path / "authgate.toml"
    config.write_text(toml)
    settings = load_settings(config)
    assert (settings.port, settings.trusted_proxies) == (9000, ("10.0.0.0/8",))

    monkeypatch.setenv("AUTHGATE_TRUSTED_PROXIES", "10.0.0.0/8")
    monkeypatch.setenv("AUTHGATE_ROLE_SCOPES", '{"member": ["read"]}')
    assert "AUTHGATE_TRUSTED_PROXIES=10.0.0.0/8" in text
    assert """AUTHGATE_ROLE_SCOPES='{"member": ["read"]}'""" in text
    settings = load_settings()
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.role_scopes == {"member": ("read",)}


def test_the_readme_links_the_reference() -> None:
    assert "(docs/configuration.md)" in README.read_text()
