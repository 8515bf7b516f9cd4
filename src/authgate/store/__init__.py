"""Storage behind protocols (``authgate.store.protocols``), built from a URL
(``sqlite:///…``, ``postgresql://…``) as ``limits`` builds its storage from a URI."""

from __future__ import annotations

from collections.abc import Callable

from authgate.errors import ConfigurationError
from authgate.store.deadline import StoreLimits
from authgate.store.protocols import (
    AccessKeyStore,
    AuditStore,
    ChangeFeed,
    KeyStore,
    SessionStore,
    SettingsStore,
    Store,
    StoreHealth,
    UserStore,
)
from authgate.store.records import (
    AccessKeyRecord,
    ApiKeyRecord,
    AuditEvent,
    SessionRecord,
    UserRecord,
)
from authgate.store.sql import SqlStore

__all__ = [
    "SCHEMES",
    "AccessKeyRecord",
    "AccessKeyStore",
    "ApiKeyRecord",
    "AuditEvent",
    "AuditStore",
    "ChangeFeed",
    "KeyStore",
    "SessionRecord",
    "SessionStore",
    "SettingsStore",
    "SqlStore",
    "Store",
    "StoreHealth",
    "StoreLimits",
    "UserRecord",
    "UserStore",
    "open_store",
]


def _sql(url: str, limits: StoreLimits | None) -> Store:
    return SqlStore(url, limits=limits)


# URL scheme (before any ``+driver``) → the store it opens.
SCHEMES: dict[str, Callable[[str, StoreLimits | None], Store]] = {
    "sqlite": _sql,
    "postgresql": _sql,
    "postgres": _sql,
}


def open_store(url: str, limits: StoreLimits | None = None) -> Store:
    """Build the store for ``url``; an unknown scheme is a configuration error."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    factory = SCHEMES.get(scheme)
    if factory is None:
        raise ConfigurationError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or postgresql://..."
        )
    return factory(url, limits)
