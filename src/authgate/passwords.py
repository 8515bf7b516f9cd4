"""Password hashing: Argon2id with the OWASP parameters, on argon2-cffi.

Parameters follow the OWASP Password Storage Cheat Sheet
(https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id):
"a minimum configuration of 19 MiB of memory, an iteration count of 2, and 1 degree of
parallelism". A hash made with other parameters still verifies, and is replaced on the
next successful login (``needs_rehash``).
"""

from __future__ import annotations

import secrets
import threading
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from authgate.errors import ConfigurationError, InvalidRequest

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_NEW_PASSWORD_LENGTH",
    "Passwords",
    "check_login_password",
    "check_new_password",
]

OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2
OWASP_PARALLELISM = 1

# NIST SP 800-63B asks for at least 8 characters and for accepting at least 64. 1024 is far
# beyond any passphrase or password-manager output, and low enough that a login body stays
# small: a 10,000-character "password" is refused before it costs a hash or a big read.
MIN_NEW_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def _normalise(password: str) -> str:
    # NFKC, as NIST SP 800-63B recommends: the same passphrase typed on another keyboard
    # (composed or decomposed accents, full-width letters) is the same password.
    return unicodedata.normalize("NFKC", password)


def check_login_password(password: str) -> str:
    """Bounds for a password offered at login: not empty, not absurdly long."""
    if not password:
        raise InvalidRequest("password must not be empty.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(f"password must be at most {MAX_PASSWORD_LENGTH} characters.")
    return password


def check_new_password(password: str) -> str:
    """Bounds for a password being set: at least 8 characters, at most 1024."""
    check_login_password(password)
    if len(password) < MIN_NEW_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"password must be at least {MIN_NEW_PASSWORD_LENGTH} characters long."
        )
    return password


class Passwords:
    """Hash, verify, and spend one verification on nothing when there is no user.

    Refuses parameters weaker than OWASP's minimum: a weak hash is a configuration
    mistake, not a trade-off to make quietly.
    """

    def __init__(
        self,
        *,
        memory_kib: int = OWASP_MEMORY_KIB,
        time_cost: int = OWASP_TIME_COST,
        parallelism: int = OWASP_PARALLELISM,
    ) -> None:
        if memory_kib < OWASP_MEMORY_KIB or time_cost < OWASP_TIME_COST or parallelism < 1:
            raise ConfigurationError(
                "Argon2id needs at least 19 MiB of memory, 2 iterations and 1 lane "
                "(OWASP Password Storage Cheat Sheet)."
            )
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._dummy: str | None = None
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        """The hash of ``password``; callers check the length policy first
        (``check_new_password``), which a rehash at login must not re-apply."""
        return self._hasher.hash(_normalise(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; an absent or damaged hash costs a verification too,
        so no answer comes back faster than a real mismatch."""
        if password_hash is None:
            self.verify_dummy(password)
            return False
        try:
            return self._hasher.verify(password_hash, _normalise(password))
        except InvalidHashError:
            self.verify_dummy(password)
            return False
        except VerificationError:
            return False

    def verify_dummy(self, password: str) -> None:
        """One verification against a hash nobody's password matches: the cost of a login
        for an email that has no user."""
        try:
            self._hasher.verify(self.dummy_hash, _normalise(password))
        except VerificationError:
            pass

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def prepare(self) -> None:
        """Make the dummy hash now, before a login branches on whether its user exists."""
        _ = self.dummy_hash

    @property
    def dummy_hash(self) -> str:
        """Made on first use (a hash costs tens of milliseconds, which a CLI need not pay)
        with the current parameters, so verifying it costs what a real verification does."""
        if self._dummy is None:
            with self._lock:
                if self._dummy is None:
                    self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
        return self._dummy
