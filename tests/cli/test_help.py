"""Every command's ``--help``, as a user's shell prints it, shows flags as flags."""

from __future__ import annotations

import subprocess

import pytest

from tests.foundation.helpers import AUTHGATE, clean_env
from tests.support import cli_commands

COMMANDS = list(cli_commands())


def test_every_command_is_walked() -> None:
    assert ("serve",) in COMMANDS and ("keys", "create") in COMMANDS
    assert ("scopes", "list") in COMMANDS and ("login",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "authgate")
def test_help_shows_no_value_for_an_on_off_flag(path: tuple[str, ...]) -> None:
    done = subprocess.run(
        [AUTHGATE, *path, "--help"],
        env=clean_env(COLUMNS="160"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--help" in done.stdout
    assert "<bool>" not in done.stdout, done.stdout
    # Options that take a value still say what it is.
    if path == ("keys", "create"):
        assert "<str>" in done.stdout
