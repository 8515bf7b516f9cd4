"""The tables, in SQLAlchemy Core: one definition for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = ["SETTING_NAME_LENGTH", "USER_AGENT_LENGTH", "metadata"]

# A client may send any length; what is kept is for people to recognise a session by.
USER_AGENT_LENGTH = 200
# Longer names are refused before they reach the database, which would fail the call.
SETTING_NAME_LENGTH = 64


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out: SQLite keeps no zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(320), nullable=False),
    # Lower-cased and NFKC-normalised: the unique, case-insensitive form.
    Column("email_key", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),
    Column("role", String(64), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("owner_id", String(32), ForeignKey("users.id"), nullable=True, index=True),
    Column("created_by", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("hint", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("rotated_to", String(32), nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("use_count", BigInteger, nullable=False, default=0),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("access_key_id", String(20), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    Column("owner_id", String(32), ForeignKey("users.id"), nullable=True),
    Column("created_by", String(64), nullable=False),
    # Fernet token of the secret: it must stay recoverable for HMAC.
    Column("secret_encrypted", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
)

grants = Table(
    "grants",
    metadata,
    Column("access_key", String(32), ForeignKey("access_keys.id"), primary_key=True),
    Column("bucket", String(255), primary_key=True),
    Column("permission", String(16), nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(64), nullable=False, index=True),
    Column("action", String(64), nullable=False, index=True),
    Column("target", String(64), nullable=True, index=True),
    Column("source", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", JSON, nullable=False),
)

# A feed of credentials whose cached verdict went stale (revoked, rotated, owner disabled).
# Every instance polls it, so a key revoked by the CLI or by another instance is refused
# everywhere within a poll interval, with or without Redis.
key_changes = Table(
    "key_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(32), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Console sessions: only the digest of the cookie's token, like an API key's.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    # NULL for the operator account of the password cascade, which is no user.
    Column("user_id", String(32), ForeignKey("users.id"), nullable=True, index=True),
    Column("operator", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("source", String(64), nullable=True),
    Column("user_agent", String(USER_AGENT_LENGTH), nullable=True),
)

# Settings changed at run time (from the console), one JSON value per name.
settings = Table(
    "settings",
    metadata,
    Column("name", String(SETTING_NAME_LENGTH), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(64), nullable=False),
)

# Uses of each API key per hour, for the console's usage charts; added to at each flush
# of the usage counters, pruned by age.
key_usage_hourly = Table(
    "key_usage_hourly",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

Index("ix_api_keys_owner_name", api_keys.c.owner_id, api_keys.c.name)
# Key pages are newest first: walked backwards, this index stops at the page's last row
# instead of sorting every key for each page.
Index("ix_api_keys_created_at_id", api_keys.c.created_at, api_keys.c.id)
