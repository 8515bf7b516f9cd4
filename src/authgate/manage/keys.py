"""The API key life cycle: create, list, show, rotate, revoke; every step audited."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from authgate.clock import Clock, now_utc
from authgate.credentials.tokens import BASE62, generate_token
from authgate.errors import Conflict, InvalidRequest, NotFound
from authgate.manage.audit import Auditor
from authgate.store.protocols import KeyStore
from authgate.store.records import ApiKeyRecord

__all__ = ["Actor", "CreatedKey", "KeyService", "new_id"]

NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
NAME_RULE = "name must be 1-64 letters, digits, '-', '_' or '.'"
SCOPE_RE = re.compile(r"[A-Za-z0-9*][A-Za-z0-9:._*-]{0,63}")


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(BASE62) for _ in range(16))


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a change, for the audit log: a key or user id, and where from."""

    id: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    token: str  # shown once, then forgotten
    record: ApiKeyRecord


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidRequest(NAME_RULE)
    return name


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(scopes))
    bad = [scope for scope in cleaned if not SCOPE_RE.fullmatch(scope)]
    if bad:
        raise InvalidRequest(f"invalid scope names: {', '.join(map(repr, bad))}")
    return cleaned


class KeyService:
    def __init__(
        self,
        store: KeyStore,
        auditor: Auditor,
        *,
        token_prefix: str,
        clock: Clock = now_utc,
        on_revoke: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._audit = auditor
        self._prefix = token_prefix
        self._clock = clock
        self._on_revoke = on_revoke or (lambda key_id: None)

    def create(
        self,
        actor: Actor,
        *,
        name: str,
        scopes: Iterable[str] = (),
        expires_in: timedelta | None = None,
        owner_id: str | None = None,
    ) -> CreatedKey:
        validate_name(name)
        scope_tuple = validate_scopes(scopes)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidRequest("expiry must be in the future")
        now = self._clock()
        generated = generate_token(self._prefix)
        record = ApiKeyRecord(
            id=new_id("key"),
            name=name,
            owner_id=owner_id,
            created_by=actor.id,
            scopes=scope_tuple,
            digest=generated.digest,
            hint=generated.hint,
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        )
        event = self._audit.event(
            actor.id,
            "key.create",
            target=record.id,
            source=actor.source,
            name=name,
            scopes=list(scope_tuple),
            owner_id=owner_id,
        )
        self._store.insert_key(record, name_free_at=now, audit=event)
        self._audit.logged(event)
        return CreatedKey(token=generated.token, record=record)

    def get(self, key_id: str) -> ApiKeyRecord:
        record = self._store.get_key(key_id)
        if record is None:
            raise NotFound(f"no key with id {key_id!r}")
        return record

    def list(self, owner_id: str | None = None, *, everyone: bool = False) -> list[ApiKeyRecord]:
        return self._store.list_keys(owner_id, everyone=everyone)

    def revoke(self, actor: Actor, key_id: str) -> ApiKeyRecord:
        record = self.get(key_id)
        if not self._revoke(actor, record.id):
            raise Conflict(f"key {key_id!r} is already revoked")
        return self.get(record.id)

    def revoke_owned(self, actor: Actor, owner_id: str, *, reason: str) -> tuple[str, ...]:
        """Revoke every key of ``owner_id`` not revoked yet, expired and rotated ones too
        (nothing of theirs may come back); the ids revoked, each audited and announced."""
        return tuple(
            record.id
            for record in self._store.list_keys(owner_id)
            if record.owner_id == owner_id
            and record.revoked_at is None
            # False: revoked meanwhile by someone else, and audited there.
            and self._revoke(actor, record.id, reason=reason)
        )

    def revoke_leaked(self, actor: Actor, key_id: str, **where: str) -> bool:
        """Revoke a key reported leaked, ``where`` (URL, source) in its audit entry;
        ``False`` if it was revoked already (a repeated report changes nothing)."""
        return self._revoke(actor, key_id, reason="leaked", **where)

    def _revoke(self, actor: Actor, key_id: str, **detail: str) -> bool:
        """Revoke with its audit entry in one transaction, then announce it; ``False`` if
        the key was already revoked."""
        event = self._audit.event(
            actor.id, "key.revoke", target=key_id, source=actor.source, **detail
        )
        if not self._store.revoke_key(key_id, self._clock(), audit=event):
            return False
        self._on_revoke(key_id)
        self._audit.logged(event)
        return True

    def rotate(self, actor: Actor, key_id: str, *, grace: timedelta) -> CreatedKey:
        """A successor with the same name, scopes and owner; the old key works until the
        grace period ends (never longer than it would have anyway)."""
        if grace < timedelta(0):
            raise InvalidRequest("grace period cannot be negative")
        old = self.get(key_id)
        now = self._clock()
        if not old.is_live(now) or old.rotated_to is not None:
            raise Conflict(f"key {key_id!r} is revoked, expired or already rotated")
        generated = generate_token(self._prefix)
        lifetime = old.expires_at - old.created_at if old.expires_at else None
        new = replace(
            old,
            id=new_id("key"),
            created_by=actor.id,
            digest=generated.digest,
            hint=generated.hint,
            created_at=now,
            expires_at=now + lifetime if lifetime is not None else None,
            revoked_at=None,
            rotated_to=None,
            last_used_at=None,
            use_count=0,
        )
        event = self._audit.event(
            actor.id,
            "key.rotate",
            target=old.id,
            source=actor.source,
            successor=new.id,
            grace_seconds=int(grace.total_seconds()),
        )
        if not self._store.rotate_key(old.id, new, now + grace, audit=event):
            raise Conflict(f"key {key_id!r} is revoked, expired or already rotated")
        self._on_revoke(old.id)
        self._audit.logged(event)
        return CreatedKey(token=generated.token, record=self.get(new.id))
