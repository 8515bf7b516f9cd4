"""GitHub's secret-scanning alerts: the keys they are signed with, and the check.

GitHub signs the raw body of every alert with ECDSA (P-256, SHA-256), names the key in
``Github-Public-Key-Identifier`` and sends the DER signature, base64, in
``Github-Public-Key-Signature``. It publishes its keys at
``https://api.github.com/meta/public_keys/secret_scanning``; authgate fetches nothing
at run time and reads them from a file in that same JSON format
(``leak_alert_keys_file``), re-read when the file changes so a cron job can refresh it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from authgate.errors import ConfigurationError

__all__ = ["AlertKeys", "load_alert_keys"]

log = logging.getLogger("authgate.leaks")

# An identifier is a hex SHA-256 and a signature a DER ECDSA value: anything much longer
# is not GitHub's, and is refused before any work.
MAX_IDENTIFIER = 128
MAX_SIGNATURE = 256


def load_alert_keys(raw: bytes, origin: str) -> dict[str, ec.EllipticCurvePublicKey]:
    """The keys of a ``{"public_keys": [{"key_identifier", "key", ...}]}`` document."""
    try:
        document = json.loads(raw)
        entries = document["public_keys"]
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for entry in entries:
            key = load_pem_public_key(entry["key"].encode("ascii"))
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValueError("a key is not an elliptic-curve key")
            keys[str(entry["key_identifier"])] = key
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:
        raise ConfigurationError(
            f"{origin}: not GitHub's secret-scanning key list ({exc}); download it from "
            "https://api.github.com/meta/public_keys/secret_scanning"
        ) from None
    if not keys:
        raise ConfigurationError(f"{origin}: the key list is empty")
    return keys


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamp: tuple[int, int, int]
    keys: dict[str, ec.EllipticCurvePublicKey]


class AlertKeys:
    """GitHub's signing keys from ``path``; a file broken by a later edit keeps the keys
    read before (and says so), so a bad refresh cannot open or close the endpoint."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._loaded = self._read()  # at start-up a broken file is a configuration error

    def _stamp(self) -> tuple[int, int, int]:
        status = os.stat(self._path)
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def _read(self) -> _Loaded:
        try:
            stamp = self._stamp()
            raw = self._path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"{self._path}: cannot read ({exc.strerror})") from None
        return _Loaded(stamp, load_alert_keys(raw, str(self._path)))

    def _current(self) -> dict[str, ec.EllipticCurvePublicKey]:
        loaded = self._loaded
        try:
            changed = self._stamp() != loaded.stamp
        except OSError:
            changed = False
        if changed:
            with self._lock:
                try:
                    self._loaded = loaded = self._read()
                except ConfigurationError as exc:
                    log.error("%s; keeping the keys read before", exc.detail)
                    self._loaded = loaded = _Loaded(self._stamp_or(loaded.stamp), loaded.keys)
        return loaded.keys

    def _stamp_or(self, fallback: tuple[int, int, int]) -> tuple[int, int, int]:
        try:
            return self._stamp()
        except OSError:
            return fallback

    def verify(self, body: bytes, identifier: str, signature: str) -> bool:
        """Whether ``signature`` is GitHub's key ``identifier`` signing exactly ``body``."""
        if len(identifier) > MAX_IDENTIFIER or len(signature) > MAX_SIGNATURE:
            return False
        key = self._current().get(identifier)
        if key is None:
            return False
        try:
            der = base64.b64decode(signature, validate=True)
            key.verify(der, body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True
