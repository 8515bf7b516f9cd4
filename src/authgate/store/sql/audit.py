"""The audit log and the change feed in SQL: the ``AuditStore`` and ``ChangeFeed``
protocols."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa

from authgate.store.records import AuditEvent
from authgate.store.schema import audit_events, key_changes, users
from authgate.store.sql.base import SqlBase, announce, guarded, write_audit

__all__ = ["SqlAudit", "SqlChangeFeed"]


class SqlAudit(SqlBase):
    @guarded
    def append_audit(self, event: AuditEvent) -> None:
        with self._transaction() as conn:
            write_audit(conn, event)

    @guarded
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
        """Newest first; ``actor`` is the id events record, ``actor_email_key`` the
        normalised email of the user who acted (``authgate.manage.users.email_key``)."""
        # The page's ids first, the rows and their actors' emails after: a deep offset
        # then walks the primary key alone, not every skipped row with its join.
        ids = sa.select(audit_events.c.id)
        if actor_email_key is not None:
            ids = ids.join(users, users.c.id == audit_events.c.actor).where(
                users.c.email_key == actor_email_key
            )
        if actor is not None:
            ids = ids.where(audit_events.c.actor == actor)
        if action is not None:
            ids = ids.where(audit_events.c.action == action)
        if target is not None:
            ids = ids.where(audit_events.c.target == target)
        if since is not None:
            ids = ids.where(audit_events.c.at >= since)
        if until is not None:
            ids = ids.where(audit_events.c.at < until)
        page = ids.order_by(audit_events.c.id.desc()).limit(limit).offset(offset).subquery()
        query = (
            sa.select(audit_events, users.c.email.label("actor_email"))
            .select_from(
                audit_events.join(page, page.c.id == audit_events.c.id).outerjoin(
                    users, users.c.id == audit_events.c.actor
                )
            )
            .order_by(audit_events.c.id.desc())
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEvent(
                id=int(r.id),
                at=r.at,
                actor=r.actor,
                action=r.action,
                target=r.target,
                source=r.source,
                outcome=r.outcome,
                detail=dict(r.detail),
                actor_email=r.actor_email,
            )
            for r in rows
        ]


class SqlChangeFeed(SqlBase):
    @guarded
    def announce_change(self, key_id: str, at: datetime) -> None:
        with self._transaction() as conn:
            announce(conn, [key_id], at)

    @guarded
    def latest_change(self) -> int:
        with self._connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(key_changes.c.seq), 0))
                ).scalar_one()
            )

    @guarded
    def changes_since(self, seq: int) -> tuple[int, list[str]]:
        rows = self.changes_after(seq)
        return (rows[-1][0] if rows else seq), [key_id for _, key_id in rows]

    @guarded
    def changes_after(self, seq: int, also: Collection[int] = ()) -> list[tuple[int, str]]:
        """Changes numbered above ``seq``, plus the numbers in ``also`` (earlier gaps)."""
        condition = key_changes.c.seq > seq
        if also:
            condition = sa.or_(condition, key_changes.c.seq.in_(list(also)))
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(key_changes.c.seq, key_changes.c.key_id)
                .where(condition)
                .order_by(key_changes.c.seq)
            ).all()
        return [(int(row.seq), str(row.key_id)) for row in rows]
