"""The master key: access key secrets at rest are Fernet tokens made with it.

SigV4 needs each secret itself for its HMAC, so secrets cannot be hashed like API keys;
they are encrypted with ``cryptography``'s Fernet under a key kept in a file
(``<data_dir>/master.key`` by default, ``AUTHGATE_MASTER_KEY_FILE`` to move it), written
0600 in a 0700 folder from its first byte and made on first use.

The file holds one Fernet key a line, newest first; ``MultiFernet`` encrypts with the
first and decrypts with any, which is what makes rotation safe. A damaged file is
reported and never replaced: a new key could not decrypt what the old one encrypted.

Rotation, and why no crash loses a secret (``MasterKey.rotate``):

1. every stored secret is decrypted first; if one cannot be, nothing changes;
2. the file becomes ``[new, *old]`` (one atomic replace). The database still holds
   tokens made with an old key, which the file still has;
3. every secret is re-encrypted under the new key (``MultiFernet.rotate``) and all of
   them are written in one transaction: the database holds all-old or all-new tokens,
   and the file decrypts both;
4. only when every stored token decrypts with the new key alone does the file become
   ``[new]``.

A crash before 4 leaves a file with every key the database needs, so everything still
decrypts and the next rotation finishes the job. Other processes reload the file when it
changes: before encrypting (so they encrypt under the newest key) and when a token does
not decrypt (so they read what another process rotated).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from authgate.errors import ConfigurationError
from authgate.securefiles import (
    check_secret_file,
    ensure_private_dir,
    read_secret_bytes,
    write_secret_file,
)
from authgate.store.records import AccessKeyRecord

__all__ = [
    "MasterKey",
    "MasterKeyError",
    "RotationReport",
    "SecretStore",
    "SecretUndecryptable",
]

log = logging.getLogger("authgate.masterkey")

_HEADER = (
    "# authgate master key: Fernet keys, newest first. The access key secrets in the\n"
    "# store are encrypted with them; without this file they are lost. Keep it private\n"
    "# and backed up; rotate with: authgate master-key rotate\n"
)
# A rotation re-reads the store after committing, in case another process stored a secret
# under an old key meanwhile; a few rounds settle any realistic race.
_ROTATION_ROUNDS = 5


class MasterKeyError(ConfigurationError):
    """The master key file is missing, damaged or unreadable: an operator must act."""

    status = 500
    code = "master_key_error"


class SecretUndecryptable(MasterKeyError):
    """A stored secret does not decrypt with any key in the master key file."""

    code = "secret_undecryptable"


class SecretStore(Protocol):
    """What the master key needs from the store: read every secret, replace them all."""

    def list_access_keys(self) -> list[AccessKeyRecord]: ...
    def replace_access_key_secrets(self, encrypted: Mapping[str, str]) -> None: ...


@dataclass(frozen=True, slots=True)
class RotationReport:
    path: Path
    reencrypted: int  # secrets written under the new key
    dropped_keys: int  # old keys removed from the file


@dataclass(frozen=True, slots=True)
class _Loaded:
    keys: tuple[str, ...]
    fernet: MultiFernet
    signature: tuple[int, int, int]  # inode, mtime, size: how a change of the file is seen


class MasterKey:
    """Encrypts and decrypts access key secrets; rotates the key without losing any."""

    def __init__(self, path: Path, store: SecretStore) -> None:
        self.path = path
        self._store = store
        self._loaded: _Loaded | None = None
        self._lock = threading.RLock()

    # -- encrypt and decrypt ---------------------------------------------------------
    def encrypt(self, plaintext: str) -> str:
        """A Fernet token of ``plaintext`` under the newest key (the file made if missing)."""
        loaded = self._fresh(create=True)
        return loaded.fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, what: str = "a stored secret") -> str:
        loaded = self._loaded or self._fresh(create=False)
        try:
            return _decrypt(loaded.fernet, token)
        except InvalidToken:
            pass
        # Perhaps another process rotated the key since this one read the file.
        newer = self._fresh(create=False)
        if newer is not loaded:
            try:
                return _decrypt(newer.fernet, token)
            except InvalidToken:
                pass
        raise SecretUndecryptable(
            f"{what} cannot be decrypted with the master key in {self.path}; the file was "
            "replaced or the store belongs to another installation: restore the master key "
            "file this store was encrypted with"
        )

    def check(self) -> None:
        """At start-up: a master key file that is there must be usable, so a link, a
        loose mode or damage is refused now rather than at the first SigV4 request; one
        that is missing while the store holds secrets is logged with the file to copy
        (SigV4 requests then get S3's InternalError until it is there)."""
        if os.path.lexists(self.path):
            self._fresh(create=False)
        elif self._store.list_access_keys():
            log.error("%s", self._missing().detail)

    def keys(self) -> tuple[str, ...]:
        """The keys in the file, newest first (read now)."""
        return self._fresh(create=False).keys

    # -- rotation --------------------------------------------------------------------
    def rotate(self) -> RotationReport:
        """A new key; every stored secret re-encrypted under it; old keys dropped last."""
        with self._lock:
            records = self._store.list_access_keys()
            if not records and not self.path.exists():
                self._fresh(create=True)
                return RotationReport(self.path, reencrypted=0, dropped_keys=0)
            current = self._fresh(create=False)
            # 1. Nothing changes unless every secret can be carried over.
            for record in records:
                self._check_decrypts(current.fernet, record)
            new_key = Fernet.generate_key().decode("ascii")
            # 2. The new key joins the file before any secret depends on it.
            self._write((new_key, *current.keys))
            both = self._fresh(create=False)
            only_new = Fernet(new_key.encode("ascii"))
            # 3. Re-encrypt and commit, until the store holds nothing the new key cannot read.
            reencrypted = self._reencrypt(both.fernet, only_new, records)
            # 4. Only now may the old keys go.
            self._write((new_key,))
            self._fresh(create=False)
            # A secret stored under an old key by a process that read the file before
            # step 2 and committed after step 3 is carried over with the keys still in hand.
            reencrypted += self._reencrypt(both.fernet, only_new, None)
            log.info(
                "master key rotated: %d secrets re-encrypted, %d old keys dropped",
                reencrypted,
                len(current.keys),
            )
            return RotationReport(self.path, reencrypted, len(current.keys))

    def _reencrypt(
        self, fernet: MultiFernet, only_new: Fernet, records: list[AccessKeyRecord] | None
    ) -> int:
        total = 0
        for _ in range(_ROTATION_ROUNDS):
            if records is None:
                records = self._store.list_access_keys()
            stale: dict[str, str] = {}
            for record in records:
                if _readable(only_new, record.secret_encrypted):
                    continue
                self._check_decrypts(fernet, record)
                token = record.secret_encrypted.encode("ascii")
                stale[record.id] = fernet.rotate(token).decode("ascii")
            if not stale:
                return total
            self._store.replace_access_key_secrets(stale)
            total += len(stale)
            records = None
        raise MasterKeyError(
            f"access key secrets kept appearing under an old master key while rotating; "
            f"{self.path} keeps the old keys beside the new one, so nothing is lost: run "
            "the rotation again when no other process is creating access keys"
        )

    def _check_decrypts(self, fernet: MultiFernet, record: AccessKeyRecord) -> None:
        if not _readable(fernet, record.secret_encrypted):
            raise SecretUndecryptable(
                f"the secret of access key {record.access_key_id} cannot be decrypted with "
                f"the master key in {self.path}; nothing was changed. Restore the master key "
                "file this store was encrypted with, or revoke that access key and delete it "
                "from the store"
            )

    # -- the file --------------------------------------------------------------------
    def _fresh(self, *, create: bool) -> _Loaded:
        """The keys as the file holds them now (re-read only if it changed)."""
        with self._lock:
            try:
                info = os.lstat(self.path)
            except FileNotFoundError:
                if not create:
                    raise self._missing() from None
                return self._create()
            except OSError as exc:
                raise self._unreadable(exc.strerror or str(exc)) from exc
            signature = (info.st_ino, info.st_mtime_ns, info.st_size)
            loaded = self._loaded
            if loaded is not None and loaded.signature == signature:
                return loaded
            try:
                check_secret_file(self.path, info)
            except ConfigurationError as exc:
                raise MasterKeyError(f"the master key file: {exc.detail}") from None
            self._loaded = self._parse(self._read(), signature)
            return self._loaded

    def _create(self) -> _Loaded:
        # Made only while the store holds no secret: a key made later could not decrypt
        # the ones a lost file encrypted, and would hide that loss until it is too late.
        stored = len(self._store.list_access_keys())
        if stored:
            raise MasterKeyError(
                f"the master key file {self.path} is missing, but the store holds {stored} "
                "access key secrets encrypted with it; restore the file from a backup (or "
                "point AUTHGATE_MASTER_KEY_FILE at it). A new key is not made: it could "
                "not decrypt them"
            )
        key = Fernet.generate_key().decode("ascii")
        try:
            ensure_private_dir(self.path.parent)
            write_secret_file(self.path, _HEADER + key + "\n")
        except FileExistsError:
            # Another process made it first (the file appears whole): use theirs.
            return self._fresh(create=False)
        except ConfigurationError as exc:
            raise MasterKeyError(f"the master key file cannot be created: {exc.detail}") from None
        log.info("master key created: %s", self.path)
        return self._fresh(create=False)

    def _write(self, keys: Sequence[str]) -> None:
        write_secret_file(self.path, _HEADER + "".join(k + "\n" for k in keys), overwrite=True)

    def _read(self) -> str:
        try:
            data = read_secret_bytes(self.path)
        except FileNotFoundError:
            raise self._missing() from None
        except ConfigurationError as exc:
            raise MasterKeyError(f"the master key file: {exc.detail}") from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self._damaged("it is not text") from None

    def _parse(self, text: str, signature: tuple[int, int, int]) -> _Loaded:
        keys: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                Fernet(line.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                raise self._damaged(f"line {number} is not a Fernet key") from None
            keys.append(line)
        if not keys:
            raise self._damaged("it holds no key")
        fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        return _Loaded(tuple(keys), fernet, signature)

    def _damaged(self, why: str) -> MasterKeyError:
        return MasterKeyError(
            f"the master key file {self.path} is damaged ({why}); restore it from a backup. "
            "It is never replaced automatically: the access key secrets are encrypted with it"
        )

    def _unreadable(self, why: str) -> MasterKeyError:
        return MasterKeyError(
            f"cannot read the master key file {self.path}: {why}; check its owner and mode "
            "(it must be readable by the user authgate runs as)"
        )

    def _missing(self) -> MasterKeyError:
        return MasterKeyError(
            f"the master key file {self.path} is missing, so stored access key secrets "
            "cannot be decrypted; every instance sharing this store needs the same file: "
            f"copy master.key from the instance that created the access keys to {self.path} "
            "(mode 0600), or point AUTHGATE_MASTER_KEY_FILE at a copy; if it is lost, "
            "restore it from a backup"
        )


def _decrypt(fernet: MultiFernet, token: str) -> str:
    try:
        data = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken from None
    return fernet.decrypt(data).decode("utf-8")


def _readable(fernet: Fernet | MultiFernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        return False
    return True
