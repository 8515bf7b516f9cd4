"""Storage behind one interface, built from a URL (``sqlite:///…``, ``postgresql://…``)."""

from __future__ import annotations

from authgate.errors import ConfigurationError
from authgate.store.records import AccessKeyRecord, ApiKeyRecord, AuditEvent, UserRecord
from authgate.store.sql import SqlStore

__all__ = [
    "AccessKeyRecord",
    "ApiKeyRecord",
    "AuditEvent",
    "SqlStore",
    "Store",
    "UserRecord",
    "open_store",
]

Store = SqlStore
SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres")


def open_store(url: str) -> SqlStore:
    """Build the store for ``url``; an unknown scheme is a configuration error."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigurationError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or postgresql://..."
        )
    return SqlStore(url)
