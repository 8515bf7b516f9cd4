"""Plain records that cross the store's interface: no SQLAlchemy types leak out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["AccessKeyRecord", "ApiKeyRecord", "AuditEvent", "SessionRecord", "UserRecord"]


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    email: str
    role: str
    active: bool
    created_at: datetime
    updated_at: datetime
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    name: str
    owner_id: str | None
    created_by: str
    scopes: tuple[str, ...]
    digest: str = field(repr=False)
    hint: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    rotated_to: str | None = None
    last_used_at: datetime | None = None
    use_count: int = 0
    # Filled by look-ups that join the owner: who the key speaks for.
    owner_role: str | None = None
    owner_active: bool = True
    owner_email: str | None = None

    def is_live(self, now: datetime) -> bool:
        if self.revoked_at is not None or not self.owner_active:
            return False
        return self.expires_at is None or now < self.expires_at

    def metadata(self, now: datetime) -> dict[str, Any]:
        """What listings show: never the digest."""
        return {
            "id": self.id,
            "name": self.name,
            "owner_id": self.owner_id,
            "created_by": self.created_by,
            "scopes": list(self.scopes),
            "hint": self.hint,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "rotated_to": self.rotated_to,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "use_count": self.use_count,
            "revoked": self.revoked_at is not None,
            "expired": self.expires_at is not None and self.expires_at <= now,
            "active": self.is_live(now),
        }


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    id: str
    access_key_id: str
    name: str
    owner_id: str | None
    created_by: str
    secret_encrypted: str = field(repr=False)
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    grants: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: datetime
    actor: str
    action: str
    target: str | None = None
    source: str | None = None
    outcome: str = "success"
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    # Filled on reading when the actor is a user: who that is, for people to read.
    actor_email: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "actor_email": self.actor_email,
            "action": self.action,
            "target": self.target,
            "source": self.source,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A console login. Only the digest of the cookie's token is kept, so a copy of the
    database cannot be replayed as a session; ``id`` is the public handle."""

    id: str
    digest: str = field(repr=False)
    user_id: str | None  # None: the operator account of the password cascade
    operator: str | None  # that account's name when ``user_id`` is None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute timeout
    revoked_at: datetime | None = None
    source: str | None = None  # client address at login
    user_agent: str | None = None  # cut by the store to its column's length
    # Filled on every read from the user (None for the operator).
    user_email: str | None = None
    user_role: str | None = None
    user_active: bool | None = None
