"""Console sessions: kept in the store, so they can be listed, revoked and ended
everywhere at once, and survive a restart.

The browser holds a random token in a cookie; the store keeps only its SHA-256, like an
API key's. A session ends at logout, when revoked, when its user is disabled, after
``idle`` without a request and, whatever happens, ``absolute`` after it began. Each login
makes a new session (and so a new id): a token planted in a browser before login is
never promoted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from authgate.clock import Clock, now_utc
from authgate.credentials.tokens import digest
from authgate.errors import Conflict, NotFound
from authgate.manage.audit import Auditor
from authgate.manage.keys import Actor, new_id
from authgate.manage.roles import MANAGE_USERS, RoleCatalogue
from authgate.principal import Principal
from authgate.store.protocols import SessionStore
from authgate.store.records import SessionRecord, UserRecord

__all__ = [
    "ConsoleSessions",
    "NoSuchSession",
    "StartedSession",
    "csrf_token",
    "same_csrf_token",
    "session_dict",
]

USER_AGENT_CHARS = 200
# last_seen_at is written at most this often (or a quarter of the idle timeout, if that
# is shorter): a page view then mostly costs no store write.
TOUCH_EVERY = timedelta(seconds=30)
CSRF_CONTEXT = b"authgate-console-csrf"


def csrf_token(binding: str) -> str:
    """The form token of whatever binds a browser to the console (its session token, or
    the local cookie): a page can only hold it if it was served to that browser."""
    return hmac.new(binding.encode(), CSRF_CONTEXT, hashlib.sha256).hexdigest()


def same_csrf_token(binding: str, sent: str) -> bool:
    return hmac.compare_digest(csrf_token(binding).encode(), sent.encode())


class NoSuchSession(NotFound):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"No session {session_id!r}.")


def session_dict(record: SessionRecord) -> dict[str, Any]:
    """What listings show: never the cookie's digest."""
    return {
        "id": record.id,
        "user_id": record.user_id,
        "user_email": record.user_email,
        "operator": record.operator,
        "created_at": record.created_at.isoformat(),
        "last_seen_at": record.last_seen_at.isoformat(),
        "expires_at": record.expires_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "source": record.source,
        "user_agent": record.user_agent,
    }


@dataclass(frozen=True, slots=True)
class StartedSession:
    token: str  # the cookie's value: set once, never stored
    record: SessionRecord


class ConsoleSessions:
    def __init__(
        self,
        store: SessionStore,
        auditor: Auditor,
        roles: RoleCatalogue,
        *,
        idle: timedelta,
        absolute: timedelta,
        clock: Clock = now_utc,
    ) -> None:
        self._store = store
        self._audit = auditor
        self._roles = roles
        self.idle = idle
        self.absolute = absolute
        self._clock = clock

    def start(
        self,
        *,
        user: UserRecord | None = None,
        operator: str | None = None,
        source: str | None,
        user_agent: str | None,
    ) -> StartedSession:
        """A new session for ``user`` or the ``operator`` account."""
        if (user is None) == (operator is None):
            raise ValueError("a session belongs to a user or to the operator account")
        now = self._clock()
        token = secrets.token_urlsafe(32)
        record = SessionRecord(
            id=new_id("ses"),
            digest=digest(token),
            user_id=user.id if user else None,
            operator=operator,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.absolute,
            source=source,
            user_agent=(user_agent or "")[:USER_AGENT_CHARS] or None,
        )
        actor = user.id if user else f"operator:{operator}"
        event = self._audit.event(actor, "session.create", target=record.id, source=source)
        self._store.insert_session(record, audit=event)
        self._audit.logged(event)
        if user is not None:
            record = replace(
                record, user_email=user.email, user_role=user.role, user_active=user.active
            )
        return StartedSession(token, record)

    def resolve(self, token: str) -> SessionRecord | None:
        """The live session ``token`` names, or None (unknown, ended, idle too long, or
        its user disabled). Marks it as seen."""
        record = self._store.find_session_by_digest(digest(token))
        now = self._clock()
        if record is None or not self.live(record, now):
            return None
        if now - record.last_seen_at >= min(TOUCH_EVERY, self.idle / 4):
            self._store.touch_session(record.id, now)
            record = replace(record, last_seen_at=now)
        return record

    def live(self, record: SessionRecord, now: datetime | None = None) -> bool:
        at = self._clock() if now is None else now
        return (
            record.revoked_at is None
            and record.expires_at > at
            and record.last_seen_at + self.idle > at
            and record.user_active is not False
        )

    def end(self, actor: Actor, session_id: str, *, reason: str = "logout") -> bool:
        """End a session; False if it had already ended."""
        event = self._audit.event(
            actor.id, "session.revoke", target=session_id, source=actor.source, reason=reason
        )
        ended = self._store.revoke_session(session_id, self._clock(), audit=event)
        if ended:
            self._audit.logged(event)
        return ended

    def end_all_of(self, user_id: str) -> int:
        """Every session of a user, as they are disabled (audited with the disabling)."""
        return self._store.revoke_sessions_of(user_id, self._clock())

    def get(self, session_id: str) -> SessionRecord | None:
        return self._store.get_session(session_id)

    def live_sessions(self, user_id: str | None = None) -> list[SessionRecord]:
        """Live sessions, newest first: one user's, or everyone's."""
        return self._store.list_sessions(user_id=user_id, live_at=self._clock())

    # -- on behalf of a caller: the console, the REST API and the CLI share these ---------
    def visible(self, principal: Principal, record: SessionRecord) -> bool:
        """Admins see every session; anyone their own user's; a ``users:manage`` holder
        those of users they could manage (a role at or below theirs). The operator
        account's sessions are admins' alone."""
        if principal.is_admin:
            return True
        if record.user_id is None:
            return False
        if record.user_id == principal.owner_id:
            return True
        return (
            self._roles.holds(principal, MANAGE_USERS)
            and record.user_role is not None
            and self._roles.covers(principal, record.user_role)
        )

    def sees_others(self, principal: Principal) -> bool:
        return principal.is_admin or self._roles.holds(principal, MANAGE_USERS)

    def list_for(self, principal: Principal, user_id: str | None = None) -> list[SessionRecord]:
        """The live sessions ``principal`` may see, newest first; one user's if named."""
        if not self.sees_others(principal):
            own = principal.owner_id
            if own is None or user_id not in (None, own):
                return []
            user_id = own
        return [record for record in self.live_sessions(user_id) if self.visible(principal, record)]

    def end_for(
        self, principal: Principal, actor: Actor, session_id: str, *, reason: str = "revoked"
    ) -> SessionRecord:
        """End a session ``principal`` may see. One it may not see reads as missing (and
        the attempt is audited); one already over is a conflict."""
        record = self.get(session_id)
        if record is None or not self.visible(principal, record):
            self._audit.record(
                actor.id,
                "session.revoke",
                target=session_id,
                source=actor.source,
                outcome="denied",
                credential=principal.id,
                reason="not visible to the caller",
            )
            raise NoSuchSession(session_id)
        if not self.live(record) or not self.end(actor, session_id, reason=reason):
            raise Conflict(f"Session {session_id!r} has already ended.")
        ended = self.get(session_id)
        return ended if ended is not None else record
