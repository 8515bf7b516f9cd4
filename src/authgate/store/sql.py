"""The SQLAlchemy store: SQLite in the data folder by default, PostgreSQL when shared.

Synchronous on purpose: the core is shared by ASGI and WSGI adapters, and the store is
touched only off the hot path (cache misses, admin operations), which async adapters run
in a worker thread.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from authgate.errors import Conflict, NotReady
from authgate.store.records import AccessKeyRecord, ApiKeyRecord, AuditEvent, UserRecord
from authgate.store.schema import access_keys, api_keys, audit_events, grants, key_changes, users

__all__ = ["SqlStore", "engine_url", "safe_url"]

# PostgreSQL advisory lock id held while migrating, so instances starting together
# do not race each other through Alembic.
_MIGRATION_LOCK = 7_361_024


def engine_url(url: str) -> str:
    """Accept the URLs people write and pick the drivers we ship."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


class SqlStore:
    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or _create_engine(engine_url(url))

    # -- life cycle ------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        script_location = str(resources.files("authgate.store") / "migrations")
        config = Config()
        config.set_main_option("script_location", script_location)
        with self._connect() as conn, _migration_lock(conn):
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except IntegrityError:
            raise
        except StatementError as exc:
            if not isinstance(exc, DBAPIError):
                # Raised before the database saw anything (e.g. a naive datetime): a bug
                # in the caller, not an outage, so it must not hide behind a 503.
                raise
            raise NotReady(_unreachable(self.url)) from exc
        except SQLAlchemyError as exc:
            raise NotReady(_unreachable(self.url)) from exc

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._connect() as conn, conn.begin():
            yield conn

    # -- API keys --------------------------------------------------------------------
    def insert_key(self, record: ApiKeyRecord, *, name_free_at: datetime | None = None) -> None:
        """Insert ``record``; with ``name_free_at``, only if its owner has no other key of
        that name live at that time (else ``Conflict``), decided atomically: two creates
        racing for one name cannot both win."""
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
        except _NameTaken as exc:
            raise Conflict(f"a key named {exc.name!r} already exists for this owner") from None
        except IntegrityError as exc:
            raise Conflict("a key with that id or digest already exists") from exc

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        with self._connect() as conn:
            row = conn.execute(_key_select().where(api_keys.c.id == key_id)).first()
        return _key_from_row(row._mapping) if row else None

    def find_key_by_digest(self, digest: str) -> ApiKeyRecord | None:
        with self._connect() as conn:
            row = conn.execute(_KEY_BY_DIGEST, {"digest": digest}).first()
        return _key_from_row(row._mapping) if row else None

    def list_keys(
        self, owner_id: str | None = None, *, everyone: bool = False
    ) -> list[ApiKeyRecord]:
        query = _key_select().order_by(api_keys.c.created_at, api_keys.c.id)
        if not everyone:
            query = query.where(
                api_keys.c.owner_id.is_(None)
                if owner_id is None
                else api_keys.c.owner_id == owner_id
            )
        with self._connect() as conn:
            return [_key_from_row(row._mapping) for row in conn.execute(query)]

    def live_key_named(self, owner_id: str | None, name: str, now: datetime) -> ApiKeyRecord | None:
        query = _key_select().where(_live_named(owner_id, name, now))
        with self._connect() as conn:
            row = conn.execute(query).first()
        return _key_from_row(row._mapping) if row else None

    def revoke_key(self, key_id: str, at: datetime) -> bool:
        """Mark revoked and announce the change; False if unknown or already revoked."""
        with self._transaction() as conn:
            result = conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if result.rowcount == 0:
                return False
            conn.execute(key_changes.insert().values(key_id=key_id, at=at))
        return True

    def rotate_key(self, old_id: str, new: ApiKeyRecord, old_expires_at: datetime) -> bool:
        """Insert the successor and shorten the old key's life, in one transaction; False
        (and nothing written) when the old key was revoked or rotated meanwhile."""
        try:
            self._rotate(old_id, new, old_expires_at)
        except _RolledBack:
            return False
        return True

    def _rotate(self, old_id: str, new: ApiKeyRecord, old_expires_at: datetime) -> None:
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
            conn.execute(key_changes.insert().values(key_id=old_id, at=new.created_at))

    def add_usage(self, usage: Mapping[str, tuple[int, datetime]]) -> None:
        if not usage:
            return
        with self._transaction() as conn:
            for key_id, (count, last_used) in usage.items():
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.id == key_id)
                    .values(
                        use_count=api_keys.c.use_count + count,
                        last_used_at=_later(api_keys.c.last_used_at, last_used),
                    )
                )

    def add_access_key_usage(self, usage: Mapping[str, tuple[int, datetime]]) -> None:
        """Move each access key's ``last_used_at`` forward (keyed by access key id)."""
        if not usage:
            return
        with self._transaction() as conn:
            for access_key_id, (_count, last_used) in usage.items():
                conn.execute(
                    access_keys.update()
                    .where(access_keys.c.access_key_id == access_key_id)
                    .values(last_used_at=_later(access_keys.c.last_used_at, last_used))
                )

    # -- change feed -----------------------------------------------------------------
    def announce_change(self, key_id: str, at: datetime) -> None:
        with self._transaction() as conn:
            conn.execute(key_changes.insert().values(key_id=key_id, at=at))

    def latest_change(self) -> int:
        with self._connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(key_changes.c.seq), 0))
                ).scalar_one()
            )

    def changes_since(self, seq: int) -> tuple[int, list[str]]:
        rows = self.changes_after(seq)
        return (rows[-1][0] if rows else seq), [key_id for _, key_id in rows]

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

    # -- users -----------------------------------------------------------------------
    def insert_user(self, user: UserRecord, email_key: str) -> None:
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
        except IntegrityError as exc:
            raise Conflict("a user with that email already exists") from exc

    def get_user(self, user_id: str) -> UserRecord | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
        return _user_from_row(row._mapping) if row else None

    def get_user_by_email_key(self, email_key: str) -> UserRecord | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.email_key == email_key)).first()
        return _user_from_row(row._mapping) if row else None

    def list_users(self) -> list[UserRecord]:
        with self._connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.created_at, users.c.id)).all()
        return [_user_from_row(row._mapping) for row in rows]

    def update_user(self, user_id: str, at: datetime, **changes: Any) -> bool:
        """Change a user; when role or activity changes, their keys' cached verdicts go stale."""
        allowed = {"role", "active", "password_hash"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update user fields {sorted(unknown)}")
        with self._transaction() as conn:
            result = conn.execute(
                users.update().where(users.c.id == user_id).values(updated_at=at, **changes)
            )
            if result.rowcount == 0:
                return False
            if {"role", "active"} & set(changes):
                key_ids = conn.execute(
                    sa.select(api_keys.c.id).where(api_keys.c.owner_id == user_id)
                ).scalars()
                rows = [{"key_id": key_id, "at": at} for key_id in key_ids]
                if rows:
                    conn.execute(key_changes.insert(), rows)
        return True

    # -- access keys (SigV4) -----------------------------------------------------------
    def insert_access_key(self, record: AccessKeyRecord) -> None:
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
        except IntegrityError as exc:
            raise Conflict("an access key with that id already exists") from exc

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

    def list_access_keys(self) -> list[AccessKeyRecord]:
        with self._connect() as conn:
            rows = conn.execute(sa.select(access_keys).order_by(access_keys.c.created_at)).all()
            return [_access_key_from_row(r._mapping, _grants_of(conn, str(r.id))) for r in rows]

    def revoke_access_key(self, key_id: str, at: datetime) -> bool:
        with self._transaction() as conn:
            result = conn.execute(
                access_keys.update()
                .where(access_keys.c.id == key_id, access_keys.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if result.rowcount == 0:
                return False
            conn.execute(key_changes.insert().values(key_id=key_id, at=at))
        return True

    def set_grant(self, key_id: str, bucket: str, permission: str | None, at: datetime) -> bool:
        """Grant (or with ``None`` take back) a bucket; False if nothing changed."""
        with self._transaction() as conn:
            existing = conn.execute(
                sa.select(grants.c.permission).where(
                    grants.c.access_key == key_id, grants.c.bucket == bucket
                )
            ).first()
            if permission is None:
                if existing is None:
                    return False
                conn.execute(
                    grants.delete().where(grants.c.access_key == key_id, grants.c.bucket == bucket)
                )
            elif existing is None:
                conn.execute(
                    grants.insert().values(access_key=key_id, bucket=bucket, permission=permission)
                )
            else:
                conn.execute(
                    grants.update()
                    .where(grants.c.access_key == key_id, grants.c.bucket == bucket)
                    .values(permission=permission)
                )
            conn.execute(key_changes.insert().values(key_id=key_id, at=at))
        return True

    def replace_access_key_secrets(self, encrypted: Mapping[str, str]) -> None:
        """Store re-encrypted secrets for every key in one transaction: all or none."""
        with self._transaction() as conn:
            for key_id, secret_encrypted in encrypted.items():
                conn.execute(
                    access_keys.update()
                    .where(access_keys.c.id == key_id)
                    .values(secret_encrypted=secret_encrypted)
                )

    # -- audit -----------------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> None:
        with self._transaction() as conn:
            conn.execute(
                audit_events.insert().values(
                    at=event.at,
                    actor=event.actor,
                    action=event.action,
                    target=event.target,
                    source=event.source,
                    outcome=event.outcome,
                    detail=event.detail,
                )
            )

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEvent]:
        query = sa.select(audit_events).order_by(audit_events.c.id.desc())
        if actor is not None:
            query = query.where(audit_events.c.actor == actor)
        if action is not None:
            query = query.where(audit_events.c.action == action)
        if target is not None:
            query = query.where(audit_events.c.target == target)
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        if until is not None:
            query = query.where(audit_events.c.at < until)
        with self._connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
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
            )
            for r in rows
        ]


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    """Held while migrating, so that instances starting together take turns: a
    PostgreSQL advisory lock, or for a SQLite file an exclusive lock on a file beside it
    (SQLite's own locks cover one transaction, and Alembic's steps are several)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK})
            conn.commit()
        return
    database = conn.engine.url.database
    if conn.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = f"{database}.migrate-lock"
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as exc:
        raise NotReady(
            f"cannot open {lock_path} ({exc.strerror}); check that the data folder is writable"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _later(column: sa.Column[Any], when: datetime) -> sa.ColumnElement[Any]:
    """The later of a nullable timestamp column and ``when`` (flushes may come out of order)."""
    return sa.func.coalesce(sa.case((column > when, column), else_=when), when)


class _RolledBack(Exception):
    """Raised inside a transaction to undo it: what it wrote must not stand."""


class _NameTaken(_RolledBack):
    def __init__(self, name: str) -> None:
        self.name = name


def _live_named(owner_id: str | None, name: str, now: datetime) -> sa.ColumnElement[bool]:
    owner = api_keys.c.owner_id.is_(None) if owner_id is None else api_keys.c.owner_id == owner_id
    return sa.and_(
        owner,
        api_keys.c.name == name,
        api_keys.c.revoked_at.is_(None),
        api_keys.c.rotated_to.is_(None),
        sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
    )


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the CLI write while a server reads the same file.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _create_private_sqlite_file(url: str) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask)."""
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or os.path.exists(database):
        return
    try:
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise NotReady(
            f"the store at {safe_url(url)} cannot be created ({exc.strerror}); "
            "check that its folder exists and is writable, or fix the database URL"
        ) from exc


def _unreachable(url: str) -> str:
    return (
        f"the store at {safe_url(url)} cannot be reached; "
        "check that the database is running and that the URL is right"
    )


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def _key_select() -> sa.Select[Any]:
    return sa.select(
        api_keys, users.c.role.label("owner_role"), users.c.active.label("owner_active")
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
    )


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
