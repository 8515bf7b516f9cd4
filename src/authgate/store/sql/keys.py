"""API keys in SQL: the ``KeyStore`` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from authgate.errors import Conflict
from authgate.store.records import ApiKeyRecord, AuditEvent
from authgate.store.schema import api_keys, key_usage_hourly, users
from authgate.store.sql.base import (
    SqlBase,
    announce,
    guarded,
    later,
    revoke,
    upsert,
    write_audit,
)

__all__ = ["SqlKeys"]


class SqlKeys(SqlBase):
    @guarded
    def insert_key(
        self,
        record: ApiKeyRecord,
        *,
        name_free_at: datetime | None = None,
        audit: AuditEvent | None = None,
    ) -> None:
        """Insert ``record``; with ``name_free_at``, only if its owner has no other key of
        that name live at that time (else ``Conflict``), decided atomically: two creates
        racing for one name cannot both win. ``audit`` commits with it."""
        values = _key_values(record)
        try:
            with self._transaction() as conn:
                if name_free_at is not None and conn.dialect.name == "postgresql":
                    # READ COMMITTED would let two transactions miss each other's insert.
                    lock = f"authgate-key-name:{record.owner_id}:{record.name}"
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": lock})
                # On SQLite the insert comes first: it takes the database's one write lock
                # before the check reads, so the check sees every committed rival.
                conn.execute(api_keys.insert().values(**values))
                if name_free_at is not None:
                    rival = conn.execute(
                        sa.select(api_keys.c.id)
                        .where(_live_named(record.owner_id, record.name, name_free_at))
                        .where(api_keys.c.id != record.id)
                        .limit(1)
                    ).first()
                    if rival is not None:
                        raise _NameTaken(record.name)
                write_audit(conn, audit)
        except _NameTaken as exc:
            raise Conflict(f"a key named {exc.name!r} already exists for this owner") from None
        except IntegrityError as exc:
            raise Conflict("a key with that id or digest already exists") from exc

    @guarded
    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        with self._connect() as conn:
            row = conn.execute(_key_select().where(api_keys.c.id == key_id)).first()
        return _key_from_row(row._mapping) if row else None

    @guarded
    def find_key_by_digest(self, digest: str) -> ApiKeyRecord | None:
        with self._connect() as conn:
            row = conn.execute(_KEY_BY_DIGEST, {"digest": digest}).first()
        return _key_from_row(row._mapping) if row else None

    @guarded
    def list_keys(
        self, owner_id: str | None = None, *, everyone: bool = False
    ) -> list[ApiKeyRecord]:
        query = _key_select().order_by(api_keys.c.created_at, api_keys.c.id)
        if not everyone:
            query = query.where(_owned_by(owner_id))
        with self._connect() as conn:
            return [_key_from_row(row._mapping) for row in conn.execute(query)]

    @guarded
    def page_keys(
        self,
        *,
        owner_id: str | None = None,
        everyone: bool = False,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ApiKeyRecord], int]:
        """One page, newest first, and the number of keys matching in all. ``search`` is
        part of a name, id or hint, in any case; its ``%`` and ``_`` are plain characters."""
        if limit < 0 or offset < 0:
            # PostgreSQL refuses them too, but as a database error: a 503, not a bug.
            raise ValueError(f"a page needs limit and offset of 0 or more, not {limit}, {offset}")
        conditions: list[sa.ColumnElement[bool]] = []
        if not everyone:
            conditions.append(_owned_by(owner_id))
        if search:
            conditions.append(
                sa.or_(
                    *(
                        column.icontains(search, autoescape=True)
                        for column in (api_keys.c.name, api_keys.c.id, api_keys.c.hint)
                    )
                )
            )
        # The page's ids first, the rows and their owners after (as the audit log's pages):
        # a deep offset then walks the key-page index alone, not every skipped row's join.
        newest_first = (api_keys.c.created_at.desc(), api_keys.c.id.desc())
        ids = (
            sa.select(api_keys.c.id)
            .where(*conditions)
            .order_by(*newest_first)
            .limit(limit)
            .offset(offset)
            .subquery()
        )
        page = _key_select().join(ids, ids.c.id == api_keys.c.id).order_by(*newest_first)
        total = sa.select(sa.func.count()).select_from(api_keys).where(*conditions)
        with self._connect() as conn:
            records = [_key_from_row(row._mapping) for row in conn.execute(page)]
            return records, int(conn.execute(total).scalar_one())

    @guarded
    def live_key_named(self, owner_id: str | None, name: str, now: datetime) -> ApiKeyRecord | None:
        query = _key_select().where(_live_named(owner_id, name, now))
        with self._connect() as conn:
            row = conn.execute(query).first()
        return _key_from_row(row._mapping) if row else None

    @guarded
    def revoke_key(self, key_id: str, at: datetime, *, audit: AuditEvent | None = None) -> bool:
        """Mark revoked and announce the change; False if unknown or already revoked."""
        with self._transaction() as conn:
            return revoke(conn, api_keys, key_id, at, audit)

    @guarded
    def rotate_key(
        self,
        old_id: str,
        new: ApiKeyRecord,
        old_expires_at: datetime,
        *,
        audit: AuditEvent | None = None,
    ) -> bool:
        """Insert the successor and shorten the old key's life, in one transaction; False
        (and nothing written) when the old key was revoked or rotated meanwhile."""
        try:
            self._rotate(old_id, new, old_expires_at, audit)
        except _RolledBack:
            return False
        return True

    def _rotate(
        self, old_id: str, new: ApiKeyRecord, old_expires_at: datetime, audit: AuditEvent | None
    ) -> None:
        with self._transaction() as conn:
            conn.execute(api_keys.insert().values(**_key_values(new)))
            rotated = conn.execute(
                api_keys.update()
                .where(
                    api_keys.c.id == old_id,
                    api_keys.c.revoked_at.is_(None),
                    api_keys.c.rotated_to.is_(None),
                )
                .values(
                    rotated_to=new.id,
                    expires_at=sa.case(
                        (
                            sa.and_(
                                api_keys.c.expires_at.is_not(None),
                                api_keys.c.expires_at < old_expires_at,
                            ),
                            api_keys.c.expires_at,
                        ),
                        else_=old_expires_at,
                    ),
                )
            )
            if rotated.rowcount != 1:
                raise _RolledBack  # the successor's insert goes with it
            announce(conn, [old_id], new.created_at)
            write_audit(conn, audit)

    @guarded
    def add_usage(self, usage: Mapping[str, tuple[int, datetime]]) -> None:
        if not usage:
            return
        with self._transaction() as conn:
            for key_id, (count, last_used) in usage.items():
                counted = conn.execute(
                    api_keys.update()
                    .where(api_keys.c.id == key_id)
                    .values(
                        use_count=api_keys.c.use_count + count,
                        last_used_at=later(api_keys.c.last_used_at, last_used),
                    )
                )
                if counted.rowcount == 0:
                    continue  # no such key: no hours for it either
                # Upserted, since another instance may flush the same key and hour.
                upsert(
                    conn,
                    key_usage_hourly,
                    {"key_id": key_id, "hour": _hour_of(last_used), "count": count},
                    lambda refused: {"count": key_usage_hourly.c["count"] + refused["count"]},
                )

    @guarded
    def usage_by_hour(self, key_id: str, since: datetime) -> list[tuple[datetime, int]]:
        """The key's hours with uses, oldest first, from the hour holding ``since`` on."""
        query = (
            sa.select(key_usage_hourly.c.hour, key_usage_hourly.c["count"])
            .where(key_usage_hourly.c.key_id == key_id, key_usage_hourly.c.hour >= _hour_of(since))
            .order_by(key_usage_hourly.c.hour)
        )
        with self._connect() as conn:
            return [(row[0], int(row[1])) for row in conn.execute(query)]

    @guarded
    def prune_usage_hours(self, before: datetime) -> int:
        """Delete the hours that began before ``before``; how many rows went."""
        with self._transaction() as conn:
            result = conn.execute(key_usage_hourly.delete().where(key_usage_hourly.c.hour < before))
        return int(result.rowcount)


class _RolledBack(Exception):
    """Raised inside a transaction to undo it: what it wrote must not stand."""


class _NameTaken(_RolledBack):
    def __init__(self, name: str) -> None:
        self.name = name


def _hour_of(when: datetime) -> datetime:
    """The start of the UTC hour holding ``when``: the key of ``key_usage_hourly``."""
    if when.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _owned_by(owner_id: str | None) -> sa.ColumnElement[bool]:
    """The keys of ``owner_id``, or with None the service keys, which have no owner."""
    return api_keys.c.owner_id.is_(None) if owner_id is None else api_keys.c.owner_id == owner_id


def _live_named(owner_id: str | None, name: str, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        _owned_by(owner_id),
        api_keys.c.name == name,
        api_keys.c.revoked_at.is_(None),
        api_keys.c.rotated_to.is_(None),
        sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
    )


def _key_select() -> sa.Select[Any]:
    return sa.select(
        api_keys,
        users.c.role.label("owner_role"),
        users.c.active.label("owner_active"),
        users.c.email.label("owner_email"),
    ).select_from(api_keys.outerjoin(users, users.c.id == api_keys.c.owner_id))


# Built once: every cache miss runs it, and building a select costs more than running it.
_KEY_BY_DIGEST = _key_select().where(api_keys.c.digest == sa.bindparam("digest"))


def _key_values(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "owner_id": record.owner_id,
        "created_by": record.created_by,
        "scopes": list(record.scopes),
        "digest": record.digest,
        "hint": record.hint,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "rotated_to": record.rotated_to,
        "use_count": record.use_count,
    }


def _key_from_row(row: RowMapping) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        owner_id=row["owner_id"],
        created_by=row["created_by"],
        scopes=tuple(row["scopes"]),
        digest=row["digest"],
        hint=row["hint"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        rotated_to=row["rotated_to"],
        last_used_at=row["last_used_at"],
        use_count=int(row["use_count"]),
        owner_role=row["owner_role"],
        owner_active=row["owner_active"] is not False,
        owner_email=row["owner_email"],
    )
