"""The token format: ``<prefix>_<base62 secret><base62 CRC32 checksum>``.

Like GitHub's tokens, a prefix makes them recognisable to secret scanners and the
checksum lets us refuse a mistyped or made-up token offline, before any lookup.
Only the SHA-256 digest is ever stored; the token itself is shown once.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass

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


def digest(token: str) -> str:
    """The hex SHA-256 of a token, as UTF-8: what the store keeps."""
    return digest_bytes(token.encode("utf-8"))


def digest_bytes(token: bytes) -> str:
    """``digest`` of a token still in bytes, as adapters read it from raw headers."""
    return hashlib.sha256(token).hexdigest()


def hint(token: str) -> str:
    """What listings show: the prefix and the first few characters of the secret."""
    prefix, _, body = token.partition("_")
    return f"{prefix}_{body[:HINT_CHARS]}…"
