"""SigV4 access keys and their bucket grants in SQL: the ``AccessKeyStore`` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from authgate.errors import Conflict
from authgate.store.records import AccessKeyRecord, AuditEvent
from authgate.store.schema import access_keys, grants
from authgate.store.sql.base import SqlBase, announce, guarded, later, revoke, write_audit

__all__ = ["SqlAccessKeys"]


class SqlAccessKeys(SqlBase):
    @guarded
    def insert_access_key(
        self, record: AccessKeyRecord, *, audit: AuditEvent | None = None
    ) -> None:
        try:
            with self._transaction() as conn:
                conn.execute(
                    access_keys.insert().values(
                        id=record.id,
                        access_key_id=record.access_key_id,
                        name=record.name,
                        owner_id=record.owner_id,
                        created_by=record.created_by,
                        secret_encrypted=record.secret_encrypted,
                        created_at=record.created_at,
                    )
                )
                for bucket, permission in record.grants.items():
                    conn.execute(
                        grants.insert().values(
                            access_key=record.id, bucket=bucket, permission=permission
                        )
                    )
                write_audit(conn, audit)
        except IntegrityError as exc:
            raise Conflict("an access key with that id already exists") from exc

    @guarded
    def get_access_key(self, ident: str) -> AccessKeyRecord | None:
        """By internal id or by AWS access key id."""
        with self._connect() as conn:
            row = conn.execute(
                sa.select(access_keys).where(
                    sa.or_(access_keys.c.id == ident, access_keys.c.access_key_id == ident)
                )
            ).first()
            if row is None:
                return None
            return _access_key_from_row(row._mapping, _grants_of(conn, str(row.id)))

    @guarded
    def list_access_keys(self) -> list[AccessKeyRecord]:
        with self._connect() as conn:
            rows = conn.execute(sa.select(access_keys).order_by(access_keys.c.created_at)).all()
            return [_access_key_from_row(r._mapping, _grants_of(conn, str(r.id))) for r in rows]

    @guarded
    def revoke_access_key(
        self, key_id: str, at: datetime, *, audit: AuditEvent | None = None
    ) -> bool:
        """Mark revoked and announce the change; False if unknown or already revoked."""
        with self._transaction() as conn:
            return revoke(conn, access_keys, key_id, at, audit)

    @guarded
    def set_grant(
        self,
        key_id: str,
        bucket: str,
        permission: str | None,
        at: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Grant (or with ``None`` take back) a bucket; False if nothing changed."""
        this_grant = sa.and_(grants.c.access_key == key_id, grants.c.bucket == bucket)
        with self._transaction() as conn:
            existing = conn.execute(sa.select(grants.c.permission).where(this_grant)).first()
            if permission is None:
                if existing is None:
                    return False
                conn.execute(grants.delete().where(this_grant))
            elif existing is None:
                conn.execute(
                    grants.insert().values(access_key=key_id, bucket=bucket, permission=permission)
                )
            else:
                conn.execute(grants.update().where(this_grant).values(permission=permission))
            announce(conn, [key_id], at)
            write_audit(conn, audit)
        return True

    @guarded
    def replace_access_key_secrets(self, encrypted: Mapping[str, str]) -> None:
        """Store re-encrypted secrets for every key in one transaction: all or none."""
        with self._transaction() as conn:
            for key_id, secret_encrypted in encrypted.items():
                conn.execute(
                    access_keys.update()
                    .where(access_keys.c.id == key_id)
                    .values(secret_encrypted=secret_encrypted)
                )

    @guarded
    def add_access_key_usage(self, usage: Mapping[str, tuple[int, datetime]]) -> None:
        """Move each access key's ``last_used_at`` forward (keyed by access key id)."""
        if not usage:
            return
        with self._transaction() as conn:
            for access_key_id, (_count, last_used) in usage.items():
                conn.execute(
                    access_keys.update()
                    .where(access_keys.c.access_key_id == access_key_id)
                    .values(last_used_at=later(access_keys.c.last_used_at, last_used))
                )


def _grants_of(conn: Connection, key_id: str) -> dict[str, str]:
    rows = conn.execute(
        sa.select(grants.c.bucket, grants.c.permission).where(grants.c.access_key == key_id)
    ).all()
    return {str(r.bucket): str(r.permission) for r in rows}


def _access_key_from_row(row: RowMapping, key_grants: dict[str, str]) -> AccessKeyRecord:
    return AccessKeyRecord(
        id=row["id"],
        access_key_id=row["access_key_id"],
        name=row["name"],
        owner_id=row["owner_id"],
        created_by=row["created_by"],
        secret_encrypted=row["secret_encrypted"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        grants=key_grants,
    )
