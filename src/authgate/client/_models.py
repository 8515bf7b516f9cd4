"""The JSON the API answers with, as typed dictionaries (``authgate.server.models`` is the
schema; these describe the same fields for a caller's type checker)."""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "AccessKey",
    "AuditEvent",
    "AuditPage",
    "CreatedAccessKey",
    "CreatedToken",
    "LeakLabel",
    "Session",
    "Token",
    "User",
]


class LeakLabel(TypedDict):
    """One reported token's outcome, in GitHub's feedback format."""

    token_hash: str
    token_type: str
    label: str


class Token(TypedDict):
    """A token's metadata: never the token itself."""

    id: str
    name: str
    owner_id: str | None
    created_by: str
    scopes: list[str]
    hint: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    rotated_to: str | None
    last_used_at: str | None
    use_count: int
    revoked: bool
    expired: bool
    active: bool


class CreatedToken(Token):
    token: str


class User(TypedDict):
    id: str
    email: str
    role: str
    active: bool
    created_at: str
    updated_at: str


class Session(TypedDict):
    id: str
    user_id: str | None
    user_email: str | None
    operator: str | None
    created_at: str
    last_seen_at: str
    expires_at: str
    revoked_at: str | None
    source: str | None
    user_agent: str | None


class AccessKey(TypedDict):
    """A SigV4 access key's metadata and grants: never its secret."""

    id: str
    access_key_id: str
    name: str
    owner_id: str | None
    created_by: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    grants: dict[str, str]
    revoked: bool
    active: bool


class CreatedAccessKey(AccessKey):
    secret_access_key: str


class AuditEvent(TypedDict):
    id: int | None
    at: str
    actor: str
    action: str
    target: str | None
    source: str | None
    outcome: str
    detail: dict[str, Any]


class AuditPage(TypedDict):
    events: list[AuditEvent]
    next_offset: int | None
