"""Users in SQL: the ``UserStore`` protocol."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from authgate.errors import Conflict
from authgate.store.records import AuditEvent, UserRecord
from authgate.store.schema import api_keys, users
from authgate.store.sql.base import SqlBase, announce, guarded, write_audit

__all__ = ["SqlUsers"]

_UPDATABLE = frozenset({"role", "active", "password_hash"})
# A change to these changes what the user's keys may do, so their cached verdicts go stale.
_VERDICT_FIELDS = frozenset({"role", "active"})


class SqlUsers(SqlBase):
    @guarded
    def insert_user(
        self, user: UserRecord, email_key: str, *, audit: AuditEvent | None = None
    ) -> None:
        values = {
            "id": user.id,
            "email": user.email,
            "email_key": email_key,
            "password_hash": user.password_hash,
            "role": user.role,
            "active": user.active,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        }
        try:
            with self._transaction() as conn:
                conn.execute(users.insert().values(**values))
                write_audit(conn, audit)
        except IntegrityError as exc:
            raise Conflict("a user with that email already exists") from exc

    @guarded
    def get_user(self, user_id: str) -> UserRecord | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
        return _user_from_row(row._mapping) if row else None

    @guarded
    def get_user_by_email_key(self, email_key: str) -> UserRecord | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.email_key == email_key)).first()
        return _user_from_row(row._mapping) if row else None

    @guarded
    def list_users(self) -> list[UserRecord]:
        with self._connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.created_at, users.c.id)).all()
        return [_user_from_row(row._mapping) for row in rows]

    @guarded
    def update_user(
        self, user_id: str, at: datetime, *, audit: AuditEvent | None = None, **changes: Any
    ) -> bool:
        """Change a user; when role or activity changes, their keys' cached verdicts go stale."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update user fields {sorted(unknown)}")
        with self._transaction() as conn:
            result = conn.execute(
                users.update().where(users.c.id == user_id).values(updated_at=at, **changes)
            )
            if result.rowcount == 0:
                return False
            if _VERDICT_FIELDS & set(changes):
                key_ids = conn.execute(
                    sa.select(api_keys.c.id).where(api_keys.c.owner_id == user_id)
                ).scalars()
                announce(conn, key_ids, at)
            write_audit(conn, audit)
        return True


def _user_from_row(row: RowMapping) -> UserRecord:
    return UserRecord(
        id=row["id"],
        email=row["email"],
        role=row["role"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        password_hash=row["password_hash"],
    )
