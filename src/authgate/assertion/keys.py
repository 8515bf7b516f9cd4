"""The keys assertions are signed with: a JSON file in the data folder, newest first.

``<data_dir>/assertion.key`` (``assertion_key_file`` to move it) is written 0600 in a
0700 folder from its first byte (``authgate.securefiles``) and made on first use. Each
entry is a private JWK with its ``kid`` and the time it was retired, if it was. A
rotation puts a new key first and retires the old one: a retired key signs nothing
more but stays in the published JWKS for the overlap, so assertions it signed (and
upstreams' cached key sets) stay good until they expire. Entries retired for longer
than the overlap are dropped at the next rotation and are no longer published.

Running processes notice a rotation by the file's inode, mtime and size, looked at no
more than once a second, so a sign costs no ``stat``.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from joserfc.jwk import ECKey, OKPKey

from authgate.errors import ConfigurationError
from authgate.securefiles import check_secret_file, read_secret_bytes, write_secret_file

__all__ = ["JOSE_ALGORITHMS", "AssertionKeys", "KeyRotation", "SigningKey"]

Algorithm = Literal["ES256", "EdDSA"]
# RFC 9864: the fully specified name for Ed25519 signatures; bare "EdDSA" is deprecated.
JOSE_ALGORITHMS: dict[str, str] = {"ES256": "ES256", "EdDSA": "Ed25519"}
# How often a signing process looks at the file for a rotation.
RELOAD_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str  # the JOSE name that goes in the header
    key: ECKey | OKPKey


@dataclass(frozen=True, slots=True)
class KeyRotation:
    path: Path
    kid: str
    published: int  # keys the JWKS now holds, the new one included
    dropped: int  # retired keys past their overlap, removed from the file


@dataclass(frozen=True, slots=True)
class _Entry:
    jwk: dict[str, Any]
    retired: float | None


@dataclass(frozen=True, slots=True)
class _Loaded:
    entries: tuple[_Entry, ...]
    signing: SigningKey
    signature: tuple[int, int, int]


class AssertionKeys:
    """The signing key file: the current key, the public key set, rotation."""

    def __init__(
        self,
        path: Path,
        algorithm: Algorithm,
        *,
        overlap_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.algorithm = algorithm
        self.overlap_seconds = overlap_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._checked_at = float("-inf")

    def current(self) -> SigningKey:
        """The key to sign with now (the file made if missing, re-read if it changed)."""
        now = time.monotonic()
        loaded = self._loaded
        if loaded is not None and now - self._checked_at < RELOAD_SECONDS:
            return loaded.signing
        with self._lock:
            self._checked_at = now
            signing = self._fresh().signing
        if signing.alg != JOSE_ALGORITHMS[self.algorithm]:
            # Also after a rotation by a process configured otherwise: sign nothing then.
            self._loaded = None
            raise ConfigurationError(
                f"the assertion key in {self.path} is not a {self.algorithm} key, but "
                f"assertion_algorithm is {self.algorithm}: run authgate assertion-key rotate "
                "to make one (the old key stays published for the overlap)"
            )
        return signing

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys an upstream may see signatures of: current and overlapping."""
        with self._lock:
            loaded = self._fresh()
        cutoff = self._clock() - self.overlap_seconds
        keys = [
            _public(entry.jwk)
            for entry in loaded.entries
            if entry.retired is None or entry.retired > cutoff
        ]
        return {"keys": keys}

    def rotate(self) -> KeyRotation:
        """A new current key; the old one retired (published for the overlap)."""
        with self._lock:
            loaded = self._fresh()
            now = self._clock()
            cutoff = now - self.overlap_seconds
            kept = [
                _Entry(entry.jwk, now if entry.retired is None else entry.retired)
                for entry in loaded.entries
            ]
            live = [entry for entry in kept if entry.retired is not None and entry.retired > cutoff]
            new = _Entry(_generate(self.algorithm), None)
            self._write([new, *live])
            fresh = self._fresh()
            return KeyRotation(
                self.path, fresh.signing.kid, len(live) + 1, dropped=len(kept) - len(live)
            )

    # -- the file ----------------------------------------------------------------------
    def _fresh(self) -> _Loaded:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            self._create()
            info = os.lstat(self.path)
        signature = (info.st_ino, info.st_mtime_ns, info.st_size)
        loaded = self._loaded
        if loaded is not None and loaded.signature == signature:
            return loaded
        check_secret_file(self.path, info)
        self._loaded = self._parse(read_secret_bytes(self.path), signature)
        return self._loaded

    def _create(self) -> None:
        try:
            self._write([_Entry(_generate(self.algorithm), None)], overwrite=False)
        except FileExistsError:
            pass  # another process made it first, whole: use theirs

    def _write(self, entries: list[_Entry], *, overwrite: bool = True) -> None:
        document = {
            "note": "authgate assertion signing keys, newest first; rotate with: "
            "authgate assertion-key rotate",
            "keys": [{"jwk": entry.jwk, "retired": entry.retired} for entry in entries],
        }
        write_secret_file(self.path, json.dumps(document, indent=1) + "\n", overwrite=overwrite)

    def _parse(self, data: bytes, signature: tuple[int, int, int]) -> _Loaded:
        try:
            document = json.loads(data)
            entries = tuple(
                _Entry(
                    dict(item["jwk"]), None if item["retired"] is None else float(item["retired"])
                )
                for item in document["keys"]
            )
            current = entries[0]
            if current.retired is not None:
                raise ValueError("the first key is retired")
            key = _import(current.jwk)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigurationError(
                f"the assertion key file {self.path} is damaged ({exc}); delete it or run "
                "authgate assertion-key rotate after restoring it (upstreams then fetch the "
                "new key from the JWKS)"
            ) from None
        signing = SigningKey(str(current.jwk["kid"]), _algorithm_of(key), key)
        return _Loaded(entries, signing, signature)


def _entry(item: dict[str, Any]) -> _Entry:
    retired = item["retired"]
    return _Entry(dict(item["jwk"]), None if retired is None else float(retired))


def _generate(algorithm: Algorithm) -> dict[str, Any]:
    kid = secrets.token_urlsafe(12)
    key: ECKey | OKPKey
    if algorithm == "ES256":
        key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)
    else:
        key = OKPKey.generate_key("Ed25519", parameters={"kid": kid}, private=True)
    jwk = dict(key.as_dict(private=True))
    jwk["alg"] = JOSE_ALGORITHMS[algorithm]
    jwk["use"] = "sig"
    return jwk


def _import(jwk: dict[str, Any]) -> ECKey | OKPKey:
    if "kid" not in jwk:
        raise ValueError("a key has no kid")
    if jwk.get("kty") == "EC":
        return ECKey.import_key(jwk)
    if jwk.get("kty") == "OKP":
        return OKPKey.import_key(jwk)
    raise ValueError(f"unsupported key type {jwk.get('kty')!r}")


def _algorithm_of(key: ECKey | OKPKey) -> str:
    if isinstance(key, ECKey):
        return "ES256" if key.curve_name == "P-256" else "unsupported"
    return "Ed25519" if key.curve_name == "Ed25519" else "unsupported"


def _public(jwk: dict[str, Any]) -> dict[str, Any]:
    public: dict[str, Any] = dict(_import(jwk).as_dict(private=False))
    public["alg"] = jwk.get("alg")
    public["use"] = "sig"
    return public
