"""The console's PAM rung against the machine's real PAM stack (pam_unix on Debian).

Each test makes throwaway system accounts with ``useradd`` and ``chpasswd`` and removes
them with ``userdel`` afterwards, so the suite must run as root, as ``./scripts/test`` and
CI do. Not being root is a failure, never a skip: a skipped test would hide that the rung
was never checked.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from authgate.console_password import ConsolePassword, console_password
from authgate.settings import Settings, load_settings

# The product's default; on Debian it is login's stack: common-auth (pam_unix) and
# common-account, with pam_nologin and a failure delay in front.
SERVICE = "login"


@dataclass(frozen=True)
class Account:
    name: str
    password: str


def _run(*command: str, stdin: str | None = None) -> None:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr.strip()}"


@pytest.fixture
def make_account() -> Iterator[Callable[[], Account]]:
    """Makes system accounts with fresh passwords; every one is deleted at the end."""
    if os.geteuid() != 0:
        pytest.fail(
            "tests/console/test_pam.py creates system accounts and must run as root "
            "(./scripts/test and CI do)"
        )
    made: list[str] = []

    def make() -> Account:
        account = Account(f"agtest{secrets.token_hex(4)}", secrets.token_urlsafe(18))
        _run(
            "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", account.name
        )
        made.append(account.name)
        _run("chpasswd", stdin=f"{account.name}:{account.password}\n")
        return account

    try:
        yield make
    finally:
        # Every account goes, even when one removal fails; a leftover is an error.
        failures = []
        for name in made:
            done = subprocess.run(["userdel", name], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                failures.append(f"userdel {name}: {done.stderr.strip()}")
        assert failures == []


def _pam_checker(data_dir: Path, user: str) -> ConsolePassword:
    checker = console_password(
        load_settings(
            data_dir=data_dir, console_pam=True, console_user=user, console_pam_service=SERVICE
        )
    )
    assert checker.source == "pam", "python-pam is missing: the test extra installs it"
    assert checker.user == user
    return checker


def test_the_default_service_is_the_one_checked_here() -> None:
    assert Settings.model_fields["console_pam_service"].default == SERVICE


def test_the_accounts_password_is_accepted_and_a_wrong_one_refused(
    data_dir: Path, make_account: Callable[[], Account]
) -> None:
    account = make_account()
    checker = _pam_checker(data_dir, account.name)
    assert checker.check(account.name, account.password)
    assert not checker.check(account.name, account.password + "x")
    assert not checker.check(account.name, "")


def test_another_accounts_valid_password_is_refused(
    data_dir: Path, make_account: Callable[[], Account]
) -> None:
    operator, bystander = make_account(), make_account()
    # PAM vouches for the bystander (its own rung accepts it) ...
    assert _pam_checker(data_dir, bystander.name).check(bystander.name, bystander.password)
    # ... but the operator's rung accepts only the operator, whatever the password.
    checker = _pam_checker(data_dir, operator.name)
    assert not checker.check(bystander.name, bystander.password)
    assert not checker.check(bystander.name, operator.password)
    assert not checker.check("root", operator.password)


def test_a_locked_account_is_refused(data_dir: Path, make_account: Callable[[], Account]) -> None:
    account = make_account()
    _run("usermod", "--lock", account.name)
    assert not _pam_checker(data_dir, account.name).check(account.name, account.password)


def test_an_account_that_does_not_exist_is_refused(data_dir: Path) -> None:
    name = f"agnone{secrets.token_hex(4)}"
    checker = _pam_checker(data_dir, name)
    assert not checker.check(name, "any password at all")
