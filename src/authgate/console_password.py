"""The console's password, from the first source that is there:

1. PAM, when the ``pam`` extra (python-pam) is installed and ``console_pam = true``: the
   password of a system account (``console_user``, by default the account authgate runs as);
2. ``AUTHGATE_PASSWORD``;
3. the file named by ``console_password_file`` (0600, like every secret file);
4. a generated password in ``<data_dir>/console.password`` (0600), made on first use and
   reused after; its path is printed, never the password.

The rungs below PAM have one operator account, ``console_user`` (``admin`` by default).

PAM is tested against the machine's real PAM stack (on Debian, pam_unix through the
default ``login`` service), with throwaway system accounts the suite makes and removes as
root. Outside root, pam_unix checks only the password of the account the process runs as,
so ``console_user`` should be authgate's own account unless authgate runs as root.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import importlib
import logging
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from authgate.errors import ConfigurationError
from authgate.passwords import MIN_NEW_PASSWORD_LENGTH
from authgate.securefiles import read_secret_file, write_secret_file
from authgate.settings import Settings

__all__ = ["ConsolePassword", "console_password"]

log = logging.getLogger("authgate.console")

Source = Literal["pam", "environment", "file", "generated"]
GENERATED_NAME = "console.password"
DEFAULT_USER = "admin"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _same(given: str, expected: str) -> bool:
    # Digests first, so the comparison takes the same time whatever the lengths.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


@dataclass(frozen=True, slots=True)
class ConsolePassword:
    """How a console login is checked: ``check(user, password)``."""

    source: Source
    user: str
    path: Path | None = None
    _verify: Callable[[str, str], bool] = field(default=lambda user, password: False, repr=False)

    def check(self, user: str, password: str) -> bool:
        return self._verify(user, password)

    @property
    def where(self) -> str:
        """Where the password is, for the start-up log (never the password)."""
        if self.source == "pam":
            return "the system account's, checked by PAM"
        if self.source == "environment":
            return "AUTHGATE_PASSWORD"
        verb = "generated in" if self.source == "generated" else "in"
        return f"{verb} {self.path}"


def console_password(
    settings: Settings, *, announce: Callable[[str], None] = _stderr
) -> ConsolePassword:
    """The first rung of the cascade that is available; refuses a broken one loudly."""
    if settings.console_pam:
        pam = _load_pam()
        if pam is not None:
            return _pam_rung(settings, pam)
        announce(
            "console_pam is on but python-pam is not installed "
            "(pip install 'authgate[pam]'); using the next password source."
        )
    user = settings.console_user or DEFAULT_USER
    if settings.password is not None:
        secret = _strong(settings.password.get_secret_value(), "AUTHGATE_PASSWORD")
        return _fixed("environment", user, secret, None)
    if settings.console_password_file is not None:
        path = settings.console_password_file
        try:
            secret = read_secret_file(path)
        except FileNotFoundError:
            raise ConfigurationError(f"console_password_file {path} does not exist") from None
        return _fixed("file", user, _strong(secret, str(path)), path)
    return _generated(settings.data_dir / GENERATED_NAME, user, announce)


def _load_pam() -> Any:
    try:
        return importlib.import_module("pam")
    except ImportError:
        return None


def _pam_rung(settings: Settings, pam: Any) -> ConsolePassword:
    user = settings.console_user or getpass.getuser()
    service = settings.console_pam_service

    def verify(given_user: str, password: str) -> bool:
        # Only the configured account: PAM would vouch for any account on the machine.
        if not _same(given_user, user):
            return False
        try:
            return bool(pam.pam().authenticate(user, password, service=service))
        except Exception:  # a PAM stack failure is a refusal, never an opening
            log.exception("PAM authentication failed to run")
            return False

    return ConsolePassword("pam", user, None, verify)


def _fixed(source: Source, user: str, secret: str, path: Path | None) -> ConsolePassword:
    def verify(given_user: str, password: str) -> bool:
        # Both compared every time (no short cut), so timing says nothing about which failed.
        return _same(given_user, user) & _same(password, secret)

    return ConsolePassword(source, user, path, verify)


def _strong(secret: str, where: str) -> str:
    if len(secret) < MIN_NEW_PASSWORD_LENGTH:
        raise ConfigurationError(
            f"{where}: the console password needs at least {MIN_NEW_PASSWORD_LENGTH} characters"
        )
    return secret


def _generated(path: Path, user: str, announce: Callable[[str], None]) -> ConsolePassword:
    try:
        secret = read_secret_file(path)
    except FileNotFoundError:
        secret = secrets.token_urlsafe(24)
        try:
            write_secret_file(path, secret + "\n")
        except FileExistsError:
            secret = read_secret_file(path)  # another instance made it first: use theirs
            announce(f"Console password for user {user!r}: {path}")
        else:
            announce(f"Console password generated for user {user!r}: {path}")
    else:
        announce(f"Console password for user {user!r}: {path}")
    return _fixed("generated", user, _strong(secret, str(path)), path)
