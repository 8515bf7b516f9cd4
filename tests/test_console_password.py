"""The console password cascade: PAM > AUTHGATE_PASSWORD > password file > generated file.

The real PAM stack is checked in tests/console/test_pam.py. Here a stand-in ``pam``
module with python-pam's interface, put into ``sys.modules``, reaches what a real stack
cannot be made to do on demand: a PAM library that fails to run, python-pam missing, and
the service name handed through.
"""

from __future__ import annotations

import getpass
import stat
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from authgate.console_password import console_password
from authgate.errors import ConfigurationError
from authgate.securefiles import write_secret_file
from authgate.settings import Settings, load_settings


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    return load_settings(data_dir=data_dir, **overrides)


class _FakePamHandle:
    calls: list[tuple[str, str, str]] = []

    def authenticate(self, username: str, password: str, service: str = "login") -> bool:
        self.calls.append((username, password, service))
        return password == "system secret"


@pytest.fixture
def fake_pam(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    module = types.ModuleType("pam")
    module.pam = _FakePamHandle  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pam", module)
    _FakePamHandle.calls = []
    return _FakePamHandle.calls


@pytest.fixture
def no_pam(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes ``import pam`` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "pam", None)


def test_pam_first_when_installed_and_enabled(
    data_dir: Path, fake_pam: list[tuple[str, str, str]]
) -> None:
    checker = console_password(
        _settings(data_dir, console_pam=True, password="from the environment")
    )
    assert checker.source == "pam"
    assert checker.user == getpass.getuser()
    assert checker.check(getpass.getuser(), "system secret")
    assert not checker.check(getpass.getuser(), "from the environment")
    assert fake_pam == [
        (getpass.getuser(), "system secret", "login"),
        (getpass.getuser(), "from the environment", "login"),
    ]


def test_pam_checks_only_the_configured_account(
    data_dir: Path, fake_pam: list[tuple[str, str, str]]
) -> None:
    checker = console_password(
        _settings(data_dir, console_pam=True, console_user="operator", console_pam_service="sshd")
    )
    assert checker.check("operator", "system secret")
    assert not checker.check("root", "system secret")
    assert fake_pam == [("operator", "system secret", "sshd")]


def test_pam_failing_to_run_is_a_refusal(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def authenticate(self, *args: Any, **kwargs: Any) -> bool:
            raise OSError("libpam.so not found")

    module = types.ModuleType("pam")
    module.pam = Broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pam", module)
    checker = console_password(_settings(data_dir, console_pam=True, console_user="op"))
    assert not checker.check("op", "anything")


def test_pam_enabled_but_missing_falls_through(data_dir: Path, no_pam: None) -> None:
    said: list[str] = []
    checker = console_password(
        _settings(data_dir, console_pam=True, password="from the environment"),
        announce=said.append,
    )
    assert checker.source == "environment"
    assert "python-pam is not installed" in said[0]


def test_pam_installed_but_not_enabled_is_not_used(
    data_dir: Path, fake_pam: list[tuple[str, str, str]]
) -> None:
    checker = console_password(_settings(data_dir, password="from the environment"))
    assert checker.source == "environment"
    assert fake_pam == []


def test_environment_password(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, no_pam: None
) -> None:
    monkeypatch.setenv("AUTHGATE_PASSWORD", "from the environment")
    checker = console_password(_settings(data_dir))
    assert checker.source == "environment"
    assert checker.user == "admin"
    assert checker.check("admin", "from the environment")
    assert not checker.check("admin", "from the environmen")
    assert not checker.check("root", "from the environment")
    assert "from the environment" not in repr(checker)
    assert not (data_dir / "console.password").exists()


def test_password_file(data_dir: Path, tmp_path: Path, no_pam: None) -> None:
    path = tmp_path / "secrets" / "console"
    write_secret_file(path, "from a file\n")
    checker = console_password(_settings(data_dir, console_password_file=path))
    assert (checker.source, checker.path) == ("file", path)
    assert checker.check("admin", "from a file")


def test_password_file_problems_are_refused(data_dir: Path, tmp_path: Path, no_pam: None) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        console_password(_settings(data_dir, console_password_file=tmp_path / "missing"))
    loose = tmp_path / "loose"
    loose.write_text("readable by all\n")
    loose.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by other users"):
        console_password(_settings(data_dir, console_password_file=loose))
    short = tmp_path / "private" / "short"
    write_secret_file(short, "abc\n")
    with pytest.raises(ConfigurationError, match="at least 8"):
        console_password(_settings(data_dir, console_password_file=short))


def test_generated_password_is_written_0600_and_reused(
    data_dir: Path, no_pam: None, capsys: pytest.CaptureFixture[str]
) -> None:
    first = console_password(_settings(data_dir))
    path = data_dir / "console.password"
    assert (first.source, first.path) == ("generated", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    secret = path.read_text().strip()
    assert len(secret) >= 24
    assert first.check("admin", secret)

    printed = capsys.readouterr()
    assert str(path) in printed.err
    assert secret not in printed.err + printed.out

    again = console_password(_settings(data_dir))
    assert again.check("admin", secret)
    assert path.read_text().strip() == secret


def test_an_empty_environment_password_is_refused(data_dir: Path, no_pam: None) -> None:
    with pytest.raises(ConfigurationError, match="AUTHGATE_PASSWORD"):
        console_password(_settings(data_dir, password=""))
