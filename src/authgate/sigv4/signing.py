"""Signing keys, strings to sign and signatures: the HMAC half of SigV4."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict

__all__ = [
    "ALGORITHM",
    "SigningKey",
    "SigningKeyCache",
    "chunk_string_to_sign",
    "derive_signing_key",
    "scope_of",
    "sign",
    "signatures_equal",
    "string_to_sign",
    "trailer_string_to_sign",
]

ALGORITHM = "AWS4-HMAC-SHA256"
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _hmac(key: bytes, msg: str) -> bytes:
    # hmac.digest is the one-shot C path, without the object hmac.new(...).digest() builds.
    return hmac.digest(key, msg.encode("utf-8"), "sha256")


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k_date = _hmac(b"AWS4" + secret.encode("utf-8"), date)
    return _hmac(_hmac(_hmac(k_date, region), service), "aws4_request")


def scope_of(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/aws4_request"


class SigningKey:
    """A derived signing key with its HMAC pads hashed once.

    HMAC-SHA256 is H(k^opad || H(k^ipad || m)); keeping the two pad states and copying
    them per message skips the per-call HMAC set-up, which costs more than hashing a
    whole canonical request.
    """

    __slots__ = ("_inner", "_outer", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        block = key.ljust(64, b"\0")  # a signing key is 32 bytes: never longer than a block
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def sign(self, to_sign: str) -> str:
        inner = self._inner.copy()
        inner.update(to_sign.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def __repr__(self) -> str:
        return "SigningKey(...)"


class SigningKeyCache:
    """A small LRU of derived signing keys: four HMACs saved on every request.

    Keyed by a SHA-256 of the secret, never the secret itself, so a rotated secret
    misses at once and no plaintext secret outlives its record here. Bounded, because a
    key per (secret, day, region, service) would otherwise grow without end.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ValueError("SigningKeyCache needs room for at least one key.")
        self._maxsize = maxsize
        self._keys: OrderedDict[tuple[bytes, str, str, str], SigningKey] = OrderedDict()
        self._lock = threading.Lock()

    def signing_key(self, secret: str, date: str, region: str, service: str) -> SigningKey:
        ident = (hashlib.sha256(secret.encode("utf-8")).digest(), date, region, service)
        with self._lock:
            key = self._keys.get(ident)
            if key is not None:
                self._keys.move_to_end(ident)
                return key
        key = SigningKey(derive_signing_key(secret, date, region, service))
        with self._lock:
            self._keys[ident] = key
            if len(self._keys) > self._maxsize:
                self._keys.popitem(last=False)
        return key

    def get(self, secret: str, date: str, region: str, service: str) -> bytes:
        return self.signing_key(secret, date, region, service).key

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)


def string_to_sign(timestamp: str, scope: str, canonical_request: bytes) -> str:
    digest = hashlib.sha256(canonical_request).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def chunk_string_to_sign(timestamp: str, scope: str, previous: str, chunk_sha256: str) -> str:
    return f"{ALGORITHM}-PAYLOAD\n{timestamp}\n{scope}\n{previous}\n{_EMPTY_SHA256}\n{chunk_sha256}"


def trailer_string_to_sign(timestamp: str, scope: str, previous: str, trailer_sha256: str) -> str:
    return f"{ALGORITHM}-TRAILER\n{timestamp}\n{scope}\n{previous}\n{trailer_sha256}"


def sign(signing_key: bytes, to_sign: str) -> str:
    return hmac.digest(signing_key, to_sign.encode("utf-8"), "sha256").hex()


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time, and safe on any input: compare_digest refuses non-ASCII str."""
    return hmac.compare_digest(expected.encode("ascii"), provided.encode("latin-1", "replace"))
