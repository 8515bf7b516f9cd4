"""Records to store in the store suite, at a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime

from authgate.credentials.tokens import generate_token
from authgate.manage.keys import new_id
from authgate.store import ApiKeyRecord, UserRecord

T0 = datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
TABLES = {"users", "api_keys", "access_keys", "grants", "audit_events", "key_changes"}


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
