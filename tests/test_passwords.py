"""Argon2id with OWASP parameters, rehash detection, the dummy hash and length bounds."""

from __future__ import annotations

import argon2
import pytest

from authgate.errors import ConfigurationError, InvalidRequest
from authgate.passwords import (
    MAX_PASSWORD_LENGTH,
    Passwords,
    check_login_password,
    check_new_password,
)


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords()


def test_hashes_are_argon2id_with_owasp_parameters(passwords: Passwords) -> None:
    hashed = passwords.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(hashed, "correct horse battery staple")
    assert not passwords.verify(hashed, "correct horse battery stapler")
    assert not passwords.needs_rehash(hashed)


def test_unicode_is_normalised(passwords: Passwords) -> None:
    composed = "caf\u00e9 au lait"
    decomposed = "cafe\u0301 au lait"
    assert passwords.verify(passwords.hash(composed), decomposed)


def test_older_parameters_still_verify_and_need_a_rehash(passwords: Passwords) -> None:
    old = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("s3cret pass")
    assert passwords.verify(old, "s3cret pass")
    assert passwords.needs_rehash(old)


def test_absent_or_damaged_hashes_fail_after_a_verification(
    passwords: Passwords, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = passwords.verify_dummy

    def counting(password: str) -> None:
        calls.append(password)
        real(password)

    monkeypatch.setattr(passwords, "verify_dummy", counting)
    assert not passwords.verify(None, "anything")
    assert not passwords.verify("not-a-hash", "anything")
    assert calls == ["anything", "anything"]
    assert passwords.needs_rehash("not-a-hash")


def test_the_dummy_hash_has_the_current_parameters(passwords: Passwords) -> None:
    passwords.prepare()
    assert passwords.dummy_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.dummy_hash == passwords.dummy_hash  # made once


def test_weak_parameters_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="19 MiB"):
        Passwords(memory_kib=4096)
    with pytest.raises(ConfigurationError):
        Passwords(time_cost=1)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "must not be empty"),
        ("x" * (MAX_PASSWORD_LENGTH + 1), "at most 1024"),
        ("x" * 10_000, "at most 1024"),
    ],
)
def test_login_password_bounds(password: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_login_password(password)


def test_new_password_bounds() -> None:
    with pytest.raises(InvalidRequest, match="at least 8"):
        check_new_password("1234567")
    assert check_new_password("12345678") == "12345678"
    assert check_new_password("x" * MAX_PASSWORD_LENGTH)
    with pytest.raises(InvalidRequest, match="at most 1024"):
        check_new_password("x" * 10_000)
