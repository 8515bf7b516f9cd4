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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from authgate.clock import Clock, now_utc
from authgate.credentials.cache import SecretCache
from authgate.errors import Conflict, InvalidRequest, NotFound
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, new_id, validate_name
from authgate.masterkey import MasterKey, RotationReport
from authgate.s3.buckets import bucket_name_problem, is_pattern, pattern_problem
from authgate.s3.grants import Permission
from authgate.sigv4.verify import AccessKeySecret
from authgate.store.protocols import AccessKeyStore
from authgate.store.records import AccessKeyRecord

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

_BUCKET_RULE = (
    "use 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"
)
_OTHER_WILDCARDS = frozenset("?[]{}")
_PATTERN_RULE = (
    "a pattern is a bucket name with '*' (any run of bucket-name characters) in it, "
    "such as backup-* or *"
)


def generate_access_key_id() -> str:
    return ACCESS_KEY_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def generate_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def is_access_key_id(text: str) -> bool:
    return _ID_RE.fullmatch(text) is not None


def validate_bucket(name: str) -> str:
    """A grant's target: a bucket by S3's naming rules, so a grant can only name a bucket
    that can exist, or a bucket pattern (``backup-*``, ``*``; see ``authgate.s3.buckets``)."""
    # "backup-?" was meant as a pattern too: say that only "*" is one.
    if is_pattern(name) or _OTHER_WILDCARDS & set(name):
        problem = pattern_problem(name)
        if problem is not None:
            raise InvalidRequest(
                f"bucket pattern {name!r} is not valid: {problem}; {_PATTERN_RULE}."
            )
        return name
    problem = bucket_name_problem(name)
    if problem is not None:
        raise InvalidRequest(f"bucket name {name!r} is not valid: {problem}; {_BUCKET_RULE}.")
    return name


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


class AccessKeyService:
    def __init__(
        self,
        store: AccessKeyStore,
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
            ttl=cache_ttl,
            max_entries=cache_max_entries,
            negative_ttl=negative_cache_ttl,
            clock=clock,
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
        event = self._audit.event(
            actor.id,
            "access_key.create",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
            name=name,
            grants=dict(sorted(key_grants.items())),
            owner_id=owner_id,
        )
        self._store.insert_access_key(record, audit=event)
        # A look-up of this id just before it existed may have been remembered as a miss.
        self.cache.forget(record.access_key_id)
        self._audit.logged(event)
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
        if not self._revoke(actor, record):
            raise Conflict(f"access key {record.access_key_id} is already revoked")
        return self.get(record.id)

    def revoke_owned(self, actor: Actor, owner_id: str, *, reason: str) -> tuple[str, ...]:
        """Revoke every access key of ``owner_id`` not revoked yet; the ids revoked."""
        return tuple(
            record.id
            for record in self._store.list_access_keys()
            if record.owner_id == owner_id
            and record.revoked_at is None
            # False: revoked meanwhile by someone else, and audited there.
            and self._revoke(actor, record, reason=reason)
        )

    def _revoke(self, actor: Actor, record: AccessKeyRecord, **detail: str) -> bool:
        """Revoke with its audit entry in one transaction, then announce it; ``False`` if
        the key was already revoked."""
        event = self._audit.event(
            actor.id,
            "access_key.revoke",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
            **detail,
        )
        if not self._store.revoke_access_key(record.id, self._clock(), audit=event):
            return False
        self._on_change(record.id)
        self._audit.logged(event)
        return True

    def grant(self, actor: Actor, ident: str, bucket: str, permission: str) -> AccessKeyRecord:
        validate_bucket(bucket)
        validate_permission(permission)
        record = self._live(ident)
        previous = record.grants.get(bucket)
        event = self._audit.event(
            actor.id,
            "access_key.grant",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
            bucket=bucket,
            permission=permission,
            previous=previous,
        )
        self._store.set_grant(record.id, bucket, permission, self._clock(), audit=event)
        self._on_change(record.id)
        self._audit.logged(event)
        return self.get(record.id)

    def revoke_grant(self, actor: Actor, ident: str, bucket: str) -> AccessKeyRecord:
        validate_bucket(bucket)
        record = self.get(ident)
        previous = record.grants.get(bucket)
        event = self._audit.event(
            actor.id,
            "access_key.revoke_grant",
            target=record.id,
            source=actor.source,
            access_key_id=record.access_key_id,
            bucket=bucket,
            previous=previous,
        )
        if not self._store.set_grant(record.id, bucket, None, self._clock(), audit=event):
            raise NotFound(f"access key {record.access_key_id} has no grant on bucket {bucket!r}")
        self._on_change(record.id)
        self._audit.logged(event)
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
        if cached is not None:
            return cached
        # Not one of ours, or asked about moments ago: no need to ask the store.
        if not is_access_key_id(access_key_id) or self.cache.known_missing(access_key_id):
            return None
        generation = self.cache.generation
        record = self._store.get_access_key(access_key_id)
        if record is None or record.access_key_id != access_key_id:
            self.cache.put_missing(access_key_id, generation=generation)
            return None
        secret = self._as_secret(record)
        self.cache.put(access_key_id, secret, generation=generation)
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
