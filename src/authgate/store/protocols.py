"""What the services need from storage, one protocol per record kind.

Services depend on these, never on a back end: ``KeyService`` needs a ``KeyStore``,
``UserService`` a ``UserStore`` and a ``KeyStore``, and so on. ``Store`` is all of them
together, which is what ``open_store`` returns. Every method is one transaction; a
method that takes ``audit`` commits that entry with its change, so a change and the
record of it stand or fall together.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from authgate.breaker import CircuitBreaker
from authgate.store.records import (
    AccessKeyRecord,
    ApiKeyRecord,
    AuditEvent,
    SessionRecord,
    UserRecord,
)

__all__ = [
    "AccessKeyStore",
    "AuditStore",
    "ChangeFeed",
    "KeyStore",
    "SessionStore",
    "SettingsStore",
    "Store",
    "StoreHealth",
    "UserStore",
]


class KeyStore(Protocol):
    def insert_key(
        self,
        record: ApiKeyRecord,
        *,
        name_free_at: datetime | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        """With ``name_free_at``: only if the owner has no other key of that name live at
        that time, decided atomically (else ``Conflict``)."""

    def get_key(self, key_id: str) -> ApiKeyRecord | None: ...

    def find_key_by_digest(self, digest: str) -> ApiKeyRecord | None:
        """The one read a cache miss costs: the key with its owner's role, activity and
        email joined."""

    def list_keys(
        self, owner_id: str | None = None, *, everyone: bool = False
    ) -> list[ApiKeyRecord]: ...

    def live_key_named(
        self, owner_id: str | None, name: str, now: datetime
    ) -> ApiKeyRecord | None: ...

    def revoke_key(self, key_id: str, at: datetime, *, audit: AuditEvent | None = None) -> bool:
        """Revoke and announce on the change feed; False if unknown or already revoked."""

    def rotate_key(
        self,
        old_id: str,
        new: ApiKeyRecord,
        old_expires_at: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Insert the successor and shorten the old key's life together; False (nothing
        written) when the old key was revoked or rotated meanwhile."""

    def page_keys(
        self,
        *,
        owner_id: str | None = None,
        everyone: bool = False,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ApiKeyRecord], int]:
        """One page of keys, newest first, and how many match in all. The owner is chosen
        as ``list_keys`` chooses; ``search`` matches part of the name, id or hint, any
        case, with ``%`` and ``_`` taken literally."""

    def add_usage(self, usage: Mapping[str, tuple[int, datetime]]) -> None:
        """Add each key's count to its total and to the hour of its last use."""

    def usage_by_hour(self, key_id: str, since: datetime) -> list[tuple[datetime, int]]:
        """The key's hours with uses, oldest first, from the hour holding ``since``."""

    def prune_usage_hours(self, before: datetime) -> int:
        """Forget the hours that began before ``before``; how many were forgotten."""


class UserStore(Protocol):
    def insert_user(
        self, user: UserRecord, email_key: str, *, audit: AuditEvent | None = None
    ) -> None: ...

    def get_user(self, user_id: str) -> UserRecord | None: ...

    def get_user_by_email_key(self, email_key: str) -> UserRecord | None: ...

    def list_users(self) -> list[UserRecord]: ...

    def update_user(
        self, user_id: str, at: datetime, *, audit: AuditEvent | None = None, **changes: Any
    ) -> bool:
        """Change role, activity or password hash; a role or activity change announces
        every key of the user on the change feed."""


class AccessKeyStore(Protocol):
    def insert_access_key(
        self, record: AccessKeyRecord, *, audit: AuditEvent | None = None
    ) -> None: ...

    def get_access_key(self, ident: str) -> AccessKeyRecord | None:
        """By internal id or by AWS access key id."""

    def list_access_keys(self) -> list[AccessKeyRecord]: ...

    def revoke_access_key(
        self, key_id: str, at: datetime, *, audit: AuditEvent | None = None
    ) -> bool: ...

    def set_grant(
        self,
        key_id: str,
        bucket: str,
        permission: str | None,
        at: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool: ...

    def replace_access_key_secrets(self, encrypted: Mapping[str, str]) -> None: ...

    def add_access_key_usage(self, usage: Mapping[str, tuple[int, datetime]]) -> None: ...


class SessionStore(Protocol):
    def insert_session(self, record: SessionRecord, *, audit: AuditEvent | None = None) -> None:
        """Else ``Conflict`` when the id or digest is taken, or the user unknown."""

    def find_session_by_digest(self, digest: str) -> SessionRecord | None:
        """The session of a cookie's token digest, with its user joined."""

    def get_session(self, session_id: str) -> SessionRecord | None: ...

    def touch_session(self, session_id: str, at: datetime) -> None:
        """Move ``last_seen_at`` to ``at`` (never backwards)."""

    def revoke_session(
        self, session_id: str, at: datetime, *, audit: AuditEvent | None = None
    ) -> bool:
        """False, with nothing written, if unknown or already revoked."""

    def revoke_sessions_of(self, user_id: str, at: datetime) -> int:
        """Revoke every unrevoked session of the user; how many."""

    def list_sessions(
        self, *, user_id: str | None = None, live_at: datetime | None = None
    ) -> list[SessionRecord]:
        """Newest first; everyone's unless ``user_id``; with ``live_at``, only those
        unrevoked and unexpired then."""


class SettingsStore(Protocol):
    def get_settings(self) -> dict[str, Any]:
        """Every stored setting by name; empty on a database not migrated yet."""

    def update_settings(
        self,
        values: Mapping[str, Any],
        removed: Collection[str],
        at: datetime,
        actor: str,
        *,
        audit: AuditEvent | None = None,
    ) -> None:
        """Write ``values`` and delete ``removed``, together."""


class AuditStore(Protocol):
    def append_audit(self, event: AuditEvent) -> None: ...

    def list_audit(
        self,
        *,
        actor: str | None = None,
        actor_email_key: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEvent]:
        """Newest first, each with the acting user's email where the actor is a user;
        ``actor_email_key`` selects that user by normalised email."""


class ChangeFeed(Protocol):
    """Credentials whose cached verdict went stale, numbered as they are written. A
    number can commit after a higher one, so a reader asks again for the gaps it saw
    (``changes_after``'s ``also``)."""

    def announce_change(self, key_id: str, at: datetime) -> None: ...

    def latest_change(self) -> int: ...

    def changes_since(self, seq: int) -> tuple[int, list[str]]: ...

    def changes_after(self, seq: int, also: Collection[int] = ()) -> list[tuple[int, str]]: ...


class StoreHealth(Protocol):
    @property
    def breaker(self) -> CircuitBreaker: ...

    def migrate(self) -> None: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class Store(
    KeyStore,
    UserStore,
    AccessKeyStore,
    SessionStore,
    SettingsStore,
    AuditStore,
    ChangeFeed,
    StoreHealth,
    Protocol,
):
    """Every record kind behind one object: what ``open_store`` builds from a URL."""
