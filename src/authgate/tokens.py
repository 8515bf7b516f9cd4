"""The token format: ``<prefix>_<base62 secret><base62 CRC32 checksum>``.

Like GitHub's tokens, a prefix makes them recognisable to secret scanners and the
checksum lets us refuse a mistyped or made-up token offline, before any lookup.
Only the SHA-256 digest is ever stored; the token itself is shown once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

__all__ = [
    "DEFAULT_PREFIX",
    "GeneratedToken",
    "digest",
    "digest_bytes",
    "generate_token",
    "hint",
    "is_well_formed",
]

DEFAULT_PREFIX = "ag"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# 40 base62 characters carry 238 bits; the 4 shown in the hint still leave 214.
SECRET_LENGTH = 40
CHECKSUM_LENGTH = 6  # 62**6 > 2**32: any CRC32 fits
HINT_CHARS = 4
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class GeneratedToken:
    token: str
    digest: str
    hint: str


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, remainder = divmod(number, 62)
        chars.append(BASE62[remainder])
    return "".join(reversed(chars))


def _checksum(secret: str) -> str:
    return _base62(zlib.crc32(secret.encode("ascii")), CHECKSUM_LENGTH)


def check_prefix(prefix: str) -> str:
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"token prefix {prefix!r} must be 2-10 lower-case letters or digits")
    return prefix


def generate_token(prefix: str = DEFAULT_PREFIX) -> GeneratedToken:
    check_prefix(prefix)
    secret = "".join(secrets.choice(BASE62) for _ in range(SECRET_LENGTH))
    token = f"{prefix}_{secret}{_checksum(secret)}"
    return GeneratedToken(token=token, digest=digest(token), hint=hint(token))


@functools.cache
def _shape(prefix: str) -> re.Pattern[str]:
    secret, checksum = SECRET_LENGTH, CHECKSUM_LENGTH
    return re.compile(rf"{re.escape(prefix)}_([0-9A-Za-z]{{{secret}}})([0-9A-Za-z]{{{checksum}}})")


def is_well_formed(token: str, prefix: str = DEFAULT_PREFIX) -> bool:
    """Prefix, alphabet, length and checksum: everything checkable without a lookup."""
    match = _shape(prefix).fullmatch(token)
    if match is None:
        return False
    # The checksum is public information (anyone can compute it), so a plain compare is fine.
    return _checksum(match.group(1)) == match.group(2)


class _Digest(Protocol):
    def hexdigest(self) -> str: ...


def _short_input_sha256() -> Callable[[bytes], _Digest]:
    """SHA-256 as CPython's own implementation, when it has one, else hashlib's.

    Every request with a key hashes its token, and a token is about 50 bytes: at that
    size OpenSSL 3's per-call set-up (allocating a context and fetching the algorithm)
    costs more than the hashing, and CPython's built-in SHA-256 computes the same digest
    in about two thirds of the time. Its module is private (``_sha256`` up to Python
    3.11, ``_sha2`` from 3.12), hence the fallback; ``hashlib`` itself falls back to it
    the same way when OpenSSL lacks SHA-256.
    """
    for module_name in ("_sha2", "_sha256"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        constructor = getattr(module, "sha256", None)
        if callable(constructor):
            return cast(Callable[[bytes], _Digest], constructor)
    return hashlib.sha256


_new_sha256 = _short_input_sha256()


def digest(token: str) -> str:
    """The hex SHA-256 of a token, as UTF-8: what the store keeps."""
    return digest_bytes(token.encode("utf-8"))


def digest_bytes(token: bytes) -> str:
    """``digest`` of a token still in bytes, as adapters read it from raw headers."""
    return _new_sha256(token).hexdigest()


def hint(token: str) -> str:
    """What listings show: the prefix and the first few characters of the secret."""
    prefix, _, body = token.partition("_")
    return f"{prefix}_{body[:HINT_CHARS]}…"
