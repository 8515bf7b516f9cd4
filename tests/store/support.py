"""Records to store in the store suite, at a fixed time."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from authgate.credentials.tokens import generate_token
from authgate.manage.keys import new_id
from authgate.store import ApiKeyRecord, SessionRecord, UserRecord

T0 = datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
TABLES = {
    "users",
    "api_keys",
    "access_keys",
    "grants",
    "audit_events",
    "key_changes",
    "sessions",
    "settings",
    "key_usage_hourly",
}


def make_key(
    name: str = "svc",
    *,
    owner_id: str | None = None,
    created_at: datetime = T0,
    expires_at: datetime | None = None,
    scopes: tuple[str, ...] = ("read", "write"),
) -> ApiKeyRecord:
    generated = generate_token()
    return ApiKeyRecord(
        id=new_id("key"),
        name=name,
        owner_id=owner_id,
        created_by="tester",
        scopes=scopes,
        digest=generated.digest,
        hint=generated.hint,
        created_at=created_at,
        expires_at=expires_at,
    )


def make_user(email: str = "ada@example.com", role: str = "user") -> UserRecord:
    return UserRecord(
        id=new_id("usr"),
        email=email,
        role=role,
        active=True,
        created_at=T0,
        updated_at=T0,
        password_hash="$argon2id$placeholder",
    )


def make_session(
    user_id: str | None = None,
    *,
    operator: str | None = None,
    created_at: datetime = T0,
    lifetime: timedelta = timedelta(hours=8),
    user_agent: str | None = "Mozilla/5.0",
) -> SessionRecord:
    token = secrets.token_urlsafe(32)
    return SessionRecord(
        id=new_id("ses"),
        digest=hashlib.sha256(token.encode()).hexdigest(),
        user_id=user_id,
        operator=operator if user_id is None else None,
        created_at=created_at,
        last_seen_at=created_at,
        expires_at=created_at + lifetime,
        source="192.0.2.7",
        user_agent=user_agent,
    )
