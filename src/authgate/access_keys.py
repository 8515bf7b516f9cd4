"""SigV4 access keys: create, list, show, revoke, grant buckets; every change audited.

An access key is an id in AWS's shape (``AKAG`` + 16 base32 characters: 20 upper-case
characters, recognisable by secret scanners as authgate's) and a 40-character secret in
AWS's alphabet, shown once. The secret is kept encrypted under the master key (SigV4
needs it back for its HMAC); ``secret_lookup`` hands it to the verifier from an
in-process cache, so a request with a known key neither reads the store nor decrypts.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address
from types import MappingProxyType
from typing import Any, Final, cast

from authgate.audit import Auditor
from authgate.clock import Clock, now_utc
from authgate.errors import Conflict, InvalidRequest, NotFound
from authgate.keys import Actor, new_id, validate_name
from authgate.masterkey import MasterKey, RotationReport
from authgate.sigv4.grants import Permission
from authgate.sigv4.verify import AccessKeySecret
from authgate.store.records import AccessKeyRecord
from authgate.store.sql import SqlStore

__all__ = [
    "ACCESS_KEY_PREFIX",
    "PERMISSIONS",
    "AccessKeyService",
    "CreatedAccessKey",
    "SecretCache",
    "access_key_dict",
    "generate_access_key_id",
    "generate_secret",
    "is_access_key_id",
    "parse_grant",
    "validate_bucket",
    "validate_permission",
]

log = logging.getLogger("authgate.access_keys")

ACCESS_KEY_PREFIX = "AKAG"
_ID_ALPHABET = string.ascii_uppercase + "234567"  # RFC 4648 base32: 80 random bits
_ID_RE = re.compile(rf"{ACCESS_KEY_PREFIX}[A-Z2-7]{{16}}")
SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
SECRET_LENGTH = 40  # 240 bits, as AWS's own secrets
PERMISSIONS: tuple[Permission, ...] = ("read", "write", "admin")

_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_BUCKET_RULE = (
    "use 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"
)


def generate_access_key_id() -> str:
    return ACCESS_KEY_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def generate_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def is_access_key_id(text: str) -> bool:
    return _ID_RE.fullmatch(text) is not None


def validate_bucket(name: str) -> str:
    """S3's bucket naming rules, so a grant can only name a bucket that can exist."""
    problem: str | None = None
    if not 3 <= len(name) <= 63:
        problem = f"it is {len(name)} characters long"
    elif not _BUCKET_CHARS.fullmatch(name):
        problem = "it has characters other than lower-case letters, digits, '.' and '-'"
    elif not (name[0].isalnum() and name[-1].isalnum()):
        problem = "it must start and end with a letter or digit"
    elif ".." in name:
        problem = "it has two adjacent periods"
    elif _is_ipv4(name):
        problem = "it is formatted as an IP address"
    elif name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        problem = "S3 reserves its prefix or suffix"
    if problem is not None:
        raise InvalidRequest(f"bucket name {name!r} is not valid: {problem}; {_BUCKET_RULE}.")
    return name


def _is_ipv4(name: str) -> bool:
    try:
        IPv4Address(name)
    except ValueError:
        return False
    return True


def validate_permission(permission: str) -> Permission:
    if permission not in PERMISSIONS:
        raise InvalidRequest(
            f"permission {permission!r} is not valid: use read, write or admin "
            "(admin includes write, write includes read)."
        )
    return permission


def parse_grant(text: str) -> tuple[str, Permission]:
    """``BUCKET=PERMISSION`` as typed on a command line."""
    bucket, sep, permission = text.partition("=")
    if not sep:
        raise InvalidRequest(f"grant {text!r} is not valid: write BUCKET=read|write|admin.")
    return validate_bucket(bucket.strip()), validate_permission(permission.strip())


def validate_grants(grants: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    pairs = grants.items() if isinstance(grants, Mapping) else grants
    cleaned: dict[str, str] = {}
    for bucket, permission in pairs:
        validate_bucket(bucket)
        validate_permission(permission)
        if cleaned.get(bucket, permission) != permission:
            raise InvalidRequest(f"bucket {bucket!r} is granted twice, with different permissions.")
        cleaned[bucket] = permission
    return cleaned


def access_key_dict(record: AccessKeyRecord) -> dict[str, Any]:
    """What listings show: never the secret, encrypted or not."""
    return {
        "id": record.id,
        "access_key_id": record.access_key_id,
        "name": record.name,
        "owner_id": record.owner_id,
        "created_by": record.created_by,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
        "grants": dict(sorted(record.grants.items())),
        "revoked": record.revoked_at is not None,
        "active": record.revoked_at is None,
    }


@dataclass(frozen=True, slots=True)
class CreatedAccessKey:
    secret: str  # shown once, then only its encrypted form is kept
    record: AccessKeyRecord

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_key_id": self.record.access_key_id,
            "secret_access_key": self.secret,
            **access_key_dict(self.record),
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    secret: AccessKeySecret | None  # None: no such key (a short, negative entry)
    fresh_until: float  # monotonic


_MISS: Final = object()


class SecretCache:
    """access key id → decrypted key, bounded in size and time.

    ``forget_key`` (by internal id: what the change feed and the broadcast carry) drops an
    entry at once. A look-up that read the store before a change and would put its stale
    answer in after the change's ``forget_key`` is refused by the generation counter.
    """

    def __init__(self, *, ttl: float, max_entries: int, negative_ttl: float) -> None:
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._ids_by_key: dict[str, str] = {}
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, access_key_id: str) -> AccessKeySecret | None | object:
        """The cached answer (a key, or None for a known miss), or ``_MISS``."""
        entry = self._entries.get(access_key_id)
        if entry is None:
            return _MISS
        if time.monotonic() >= entry.fresh_until:
            with self._lock:
                self._drop_locked(access_key_id)
            return _MISS
        return entry.secret

    def put(self, access_key_id: str, secret: AccessKeySecret | None, generation: int) -> None:
        ttl = self._ttl if secret is not None else self._negative_ttl
        if ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return  # something changed while the store was read: do not keep it
            if access_key_id not in self._entries and len(self._entries) >= self._max_entries:
                self._drop_locked(next(iter(self._entries)))
            self._entries[access_key_id] = _Entry(secret, time.monotonic() + ttl)
            if secret is not None:
                self._ids_by_key[secret.key_id] = access_key_id

    def forget_key(self, key_id: str) -> None:
        with self._lock:
            self._generation += 1
            access_key_id = self._ids_by_key.pop(key_id, None)
            if access_key_id is not None:
                self._entries.pop(access_key_id, None)

    def forget_access_key_id(self, access_key_id: str) -> None:
        with self._lock:
            self._generation += 1
            self._drop_locked(access_key_id)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._ids_by_key.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop_locked(self, access_key_id: str) -> None:
        entry = self._entries.pop(access_key_id, None)
        if entry is not None and entry.secret is not None:
            if self._ids_by_key.get(entry.secret.key_id) == access_key_id:
                del self._ids_by_key[entry.secret.key_id]


class AccessKeyService:
    def __init__(
        self,
        store: SqlStore,
        auditor: Auditor,
        master_key: MasterKey,
        *,
        clock: Clock = now_utc,
        on_change: Callable[[str], None] | None = None,
        cache_ttl: float = 60.0,
        cache_max_entries: int = 100_000,
        negative_cache_ttl: float = 2.0,
    ) -> None:
        self._store = store
        self._audit = auditor
        self._master_key = master_key
        self._clock = clock
        self._on_change = on_change or (lambda key_id: None)
        self.cache = SecretCache(
            ttl=cache_ttl, max_entries=cache_max_entries, negative_ttl=negative_cache_ttl
        )

    # -- life cycle ------------------------------------------------------------------
    def create(
        self,
        actor: Actor,
        *,
        name: str,
        grants: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        owner_id: str | None = None,
    ) -> CreatedAccessKey:
        validate_name(name)
        key_grants = validate_grants(grants)
        secret = generate_secret()
        record = AccessKeyRecord(
            id=new_id("ak"),
            access_key_id=generate_access_key_id(),
            name=name,
            owner_id=owner_id,
            created_by=actor.id,
            secret_encrypted=self._master_key.encrypt(secret),
            created_at=self._clock(),
            grants=key_grants,
        )
        self._store.insert_access_key(record)
        # A look-up of this id just before it existed may have been remembered as a miss.
        self.cache.forget_access_key_id(record.access_key_id)
        self._audit.record(
            actor.id,
            "access_key.create",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
            name=name,
            grants=dict(sorted(key_grants.items())),
            owner_id=owner_id,
        )
        return CreatedAccessKey(secret=secret, record=record)

    def get(self, ident: str) -> AccessKeyRecord:
        """By internal id (``ak_…``) or by access key id (``AKAG…``)."""
        record = self._store.get_access_key(ident)
        if record is None:
            raise NotFound(f"no access key with id {ident!r}")
        return record

    def list(self) -> list[AccessKeyRecord]:
        return self._store.list_access_keys()

    def revoke(self, actor: Actor, ident: str) -> AccessKeyRecord:
        record = self.get(ident)
        if not self._store.revoke_access_key(record.id, self._clock()):
            raise Conflict(f"access key {record.access_key_id} is already revoked")
        self._on_change(record.id)
        self._audit.record(
            actor.id,
            "access_key.revoke",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
        )
        return self.get(record.id)

    def grant(self, actor: Actor, ident: str, bucket: str, permission: str) -> AccessKeyRecord:
        validate_bucket(bucket)
        validate_permission(permission)
        record = self._live(ident)
        previous = record.grants.get(bucket)
        self._store.set_grant(record.id, bucket, permission, self._clock())
        self._on_change(record.id)
        self._audit.record(
            actor.id,
            "access_key.grant",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
            bucket=bucket,
            permission=permission,
            previous=previous,
        )
        return self.get(record.id)

    def revoke_grant(self, actor: Actor, ident: str, bucket: str) -> AccessKeyRecord:
        validate_bucket(bucket)
        record = self.get(ident)
        previous = record.grants.get(bucket)
        if not self._store.set_grant(record.id, bucket, None, self._clock()):
            raise NotFound(f"access key {record.access_key_id} has no grant on bucket {bucket!r}")
        self._on_change(record.id)
        self._audit.record(
            actor.id,
            "access_key.revoke_grant",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
            bucket=bucket,
            previous=previous,
        )
        return self.get(record.id)

    def rotate_master_key(self, actor: Actor) -> RotationReport:
        """Re-encrypt every secret under a new master key (see ``authgate.masterkey``)."""
        report = self._master_key.rotate()
        self._audit.record(
            actor.id,
            "master_key.rotate",
            source=actor.source,
            reencrypted=report.reencrypted,
            dropped_keys=report.dropped_keys,
        )
        return report

    def _live(self, ident: str) -> AccessKeyRecord:
        record = self.get(ident)
        if record.revoked_at is not None:
            raise Conflict(f"access key {record.access_key_id} is revoked")
        return record

    # -- the verifier's look-up ------------------------------------------------------
    def secret_lookup(self, access_key_id: str) -> AccessKeySecret | None:
        """The key for ``SigV4Verifier``: from memory when possible, else from the store
        (decrypted once, then remembered until it changes or its time runs out)."""
        cached = self.cache.get(access_key_id)
        if cached is not _MISS:
            return cast(AccessKeySecret | None, cached)
        if not is_access_key_id(access_key_id):
            return None  # not one of ours: no need to ask the store
        generation = self.cache.generation
        record = self._store.get_access_key(access_key_id)
        secret: AccessKeySecret | None = None
        if record is not None and record.access_key_id == access_key_id:
            secret = self._as_secret(record)
        self.cache.put(access_key_id, secret, generation)
        return secret

    def _as_secret(self, record: AccessKeyRecord) -> AccessKeySecret:
        active = record.revoked_at is None
        # A revoked key is never decrypted: the verifier refuses it before any HMAC.
        plaintext = (
            self._master_key.decrypt(
                record.secret_encrypted, what=f"the secret of access key {record.access_key_id}"
            )
            if active
            else ""
        )
        return AccessKeySecret(
            access_key_id=record.access_key_id,
            secret=plaintext,
            name=record.name,
            grants=MappingProxyType(dict(record.grants)),
            active=active,
            key_id=record.id,
        )
