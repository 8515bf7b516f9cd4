"""Console sessions in SQL: the ``SessionStore`` protocol."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from authgate.errors import Conflict
from authgate.store.records import AuditEvent, SessionRecord
from authgate.store.schema import USER_AGENT_LENGTH, sessions, users
from authgate.store.sql.base import SqlBase, guarded, later, write_audit

__all__ = ["SqlSessions"]


class SqlSessions(SqlBase):
    @guarded
    def insert_session(self, record: SessionRecord, *, audit: AuditEvent | None = None) -> None:
        """Insert ``record`` (its user agent cut to the column's length); ``Conflict`` when
        its id or digest is taken or its user unknown. ``audit`` commits with it."""
        try:
            with self._transaction() as conn:
                conn.execute(sessions.insert().values(**_session_values(record)))
                write_audit(conn, audit)
        except IntegrityError as exc:
            raise Conflict("a session with that id or digest exists, or its user does not") from exc

    @guarded
    def find_session_by_digest(self, digest: str) -> SessionRecord | None:
        with self._connect() as conn:
            row = conn.execute(_SESSION_BY_DIGEST, {"digest": digest}).first()
        return _session_from_row(row._mapping) if row else None

    @guarded
    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._connect() as conn:
            row = conn.execute(_session_select().where(sessions.c.id == session_id)).first()
        return _session_from_row(row._mapping) if row else None

    @guarded
    def touch_session(self, session_id: str, at: datetime) -> None:
        """Note a request of the session at ``at``; requests finishing out of order never
        move it backwards."""
        with self._transaction() as conn:
            conn.execute(
                sessions.update()
                .where(sessions.c.id == session_id)
                .values(last_seen_at=later(sessions.c.last_seen_at, at))
            )

    @guarded
    def revoke_session(
        self, session_id: str, at: datetime, *, audit: AuditEvent | None = None
    ) -> bool:
        """Mark revoked; False, with nothing written, if unknown or already revoked."""
        with self._transaction() as conn:
            result = conn.execute(
                sessions.update()
                .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if result.rowcount == 0:
                return False
            write_audit(conn, audit)
        return True

    @guarded
    def revoke_sessions_of(self, user_id: str, at: datetime) -> int:
        """Revoke every session of the user not revoked yet; how many."""
        with self._transaction() as conn:
            result = conn.execute(
                sessions.update()
                .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
        return int(result.rowcount)

    @guarded
    def list_sessions(
        self, *, user_id: str | None = None, live_at: datetime | None = None
    ) -> list[SessionRecord]:
        """Newest first; everyone's (the operator's too) unless ``user_id``; with
        ``live_at``, only those neither revoked nor expired at that time."""
        query = _session_select().order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        if user_id is not None:
            query = query.where(sessions.c.user_id == user_id)
        if live_at is not None:
            query = query.where(sessions.c.revoked_at.is_(None), sessions.c.expires_at > live_at)
        with self._connect() as conn:
            return [_session_from_row(row._mapping) for row in conn.execute(query)]


def _session_select() -> sa.Select[Any]:
    return sa.select(
        sessions,
        users.c.email.label("user_email"),
        users.c.role.label("user_role"),
        users.c.active.label("user_active"),
    ).select_from(sessions.outerjoin(users, users.c.id == sessions.c.user_id))


# Built once: every console request with a cookie runs it.
_SESSION_BY_DIGEST = _session_select().where(sessions.c.digest == sa.bindparam("digest"))


def _session_values(record: SessionRecord) -> dict[str, Any]:
    user_agent = record.user_agent
    return {
        "id": record.id,
        "digest": record.digest,
        "user_id": record.user_id,
        "operator": record.operator,
        "created_at": record.created_at,
        "last_seen_at": record.last_seen_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "source": record.source,
        # Cut here rather than refused: PostgreSQL would reject a longer one as a
        # database error, and SQLite keep it whole.
        "user_agent": user_agent[:USER_AGENT_LENGTH] if user_agent is not None else None,
    }


def _session_from_row(row: RowMapping) -> SessionRecord:
    active = row["user_active"]
    return SessionRecord(
        id=row["id"],
        digest=row["digest"],
        user_id=row["user_id"],
        operator=row["operator"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        source=row["source"],
        user_agent=row["user_agent"],
        user_email=row["user_email"],
        user_role=row["user_role"],
        user_active=None if active is None else bool(active),
    )
