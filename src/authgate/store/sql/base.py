"""What the SQL record kinds share: the engine, its deadline and breaker, migrations, and
the steps of a transaction several kinds take (audit, change feed, revoke).

Synchronous on purpose: the core is shared by ASGI and WSGI adapters, and the store is
touched only off the hot path (cache misses, admin operations), which async adapters run
in a worker thread. Every public call but ``migrate`` runs under a deadline and a circuit
breaker (see ``authgate.store.deadline``).
"""

from __future__ import annotations

import fcntl
import functools
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.elements import KeyedColumnElement

from authgate.breaker import CircuitBreaker
from authgate.errors import ConfigurationError, InvalidRequest, NotReady
from authgate.extras import require
from authgate.metrics import record_store_call
from authgate.securefiles import check_secret_file
from authgate.store.deadline import StoreGuard, StoreLimits, current_call
from authgate.store.records import AuditEvent
from authgate.store.schema import audit_events, key_changes

__all__ = [
    "SqlBase",
    "announce",
    "engine_url",
    "guarded",
    "later",
    "revoke",
    "safe_url",
    "upsert",
    "write_audit",
]

# PostgreSQL advisory lock id held while migrating, so instances starting together
# do not race each other through Alembic.
_MIGRATION_LOCK = 7_361_024
# A peer that stops acknowledging what is sent (a partition, a host gone) drops the
# connection after this; the call's deadline answers the caller long before, this frees
# the thread that was waiting.
_TCP_USER_TIMEOUT_MS = 10_000
# Connections are replaced before a firewall or a pooler would silently drop them.
_POOL_RECYCLE_SECONDS = 1800

P = ParamSpec("P")
R = TypeVar("R")


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Run a store method on a store thread, under the store's deadline and breaker."""

    operation = method.__name__

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        store: SqlBase = args[0]  # type: ignore[assignment]  # the method's self
        if current_call() is not None:
            return method(*args, **kwargs)  # inside another call, which is the one counted
        started = time.perf_counter()
        failed = False
        try:
            return store.guard.call(method, *args, **kwargs)
        except NotReady:
            failed = True  # slow, down or its breaker open; a refusal is an answer
            raise
        finally:
            record_store_call(operation, time.perf_counter() - started, failed)

    return call


def engine_url(url: str) -> str:
    """Accept the URLs people write and pick the drivers we ship."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


class SqlBase:
    """One engine, its deadline and breaker, and the steps every record kind shares; the
    record kinds (``authgate.store.sql.keys`` and its siblings) build on it."""

    def __init__(
        self, url: str, *, engine: Engine | None = None, limits: StoreLimits | None = None
    ) -> None:
        self.url = url
        self.limits = limits or StoreLimits()
        self.engine = engine or _create_engine(engine_url(url), self.limits)
        self.guard = StoreGuard(self.limits, describe=safe_url(url), interrupt=_interrupt)

    @property
    def breaker(self) -> CircuitBreaker:
        return self.guard.breaker

    # -- life cycle ------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        script_location = str(resources.files("authgate.store") / "migrations")
        config = Config()
        config.set_main_option("script_location", script_location)
        with self._connect() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                # No deadline on a migration, nor on waiting for another instance's.
                conn.execute(sa.text("SET statement_timeout = 0"))
                conn.commit()
            try:
                with _migration_lock(conn):
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
                    conn.commit()
            finally:
                if postgres:
                    conn.execute(sa.text("RESET statement_timeout"))
                    conn.commit()

    @guarded
    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.guard.close()
        self.engine.dispose()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        call = current_call()
        try:
            with self.engine.connect() as conn:
                if call is None:
                    yield conn
                    return
                call.using(conn.connection.dbapi_connection)
                try:
                    yield conn
                finally:
                    call.released()
        except IntegrityError:
            raise
        except DataError as exc:
            # A value the database will not hold (PostgreSQL refuses a NUL in text): the
            # request's fault, answered as such. As a 503 it also counted against the
            # breaker, so three such requests shut the store for everyone.
            raise InvalidRequest(_refused_value(exc)) from None
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


def _refused_value(exc: DataError) -> str:
    if "NUL" in str(exc.orig):
        return "A value holds a NUL character (U+0000), which the store cannot keep."
    return "A value is outside what the store can hold (too long, or out of range)."


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


def write_audit(conn: Connection, event: AuditEvent | None) -> None:
    """Write ``event`` in the caller's transaction: a change and its audit entry commit
    together, so a crash between the two cannot leave a change nobody can account for."""
    if event is None:
        return
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


def announce(conn: Connection, key_ids: Iterable[str], at: datetime) -> None:
    """Put credentials on the change feed in the caller's transaction, so that no
    instance can see the change without the feed entry that drops its cached verdict."""
    rows = [{"key_id": key_id, "at": at} for key_id in key_ids]
    if rows:
        conn.execute(key_changes.insert(), rows)


def revoke(
    conn: Connection, table: sa.Table, key_id: str, at: datetime, audit: AuditEvent | None
) -> bool:
    """Mark a credential of ``table`` (API key or access key) revoked, announce it and
    audit it; False, with nothing written, when it is unknown or revoked already."""
    result = conn.execute(
        table.update()
        .where(table.c.id == key_id, table.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    if result.rowcount == 0:
        return False
    announce(conn, [key_id], at)
    write_audit(conn, audit)
    return True


def upsert(
    conn: Connection,
    table: sa.Table,
    values: dict[str, Any],
    update: Callable[[ReadOnlyColumnCollection[str, KeyedColumnElement[Any]]], dict[str, Any]],
) -> None:
    """Insert a row, or when its primary key is taken change that row by ``update``, which
    is given the refused row's columns (``excluded``): one statement, so two writers of
    the same key cannot both insert."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_=update(statement.excluded),
        )
    )


def later(column: sa.Column[Any], when: datetime) -> sa.ColumnElement[Any]:
    """The later of a nullable timestamp column and ``when`` (flushes may come out of order)."""
    return sa.func.coalesce(sa.case((column > when, column), else_=when), when)


def _create_engine(url: str, limits: StoreLimits) -> Engine:
    if url.startswith("sqlite"):
        _create_private_sqlite_file(url)
        busy_ms = int(limits.statement_timeout * 1000)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": limits.statement_timeout, "check_same_thread": False},
            pool_timeout=limits.pool_timeout,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the CLI write while a server reads the same file.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.close()

        return engine
    if url.startswith("postgresql+psycopg"):
        require("psycopg", extra="postgres", needed_for="a PostgreSQL database_url")
    return sa.create_engine(
        url,
        # No pre-ping: it runs inside the pool's checkout, before the call can note its
        # connection, so a ping to a hung server could not be interrupted and would hold
        # its thread until the server woke. A connection found dead fails its call, and
        # SQLAlchemy then discards every pooled connection older than that failure.
        pool_pre_ping=False,
        pool_size=5,
        max_overflow=10,
        pool_timeout=limits.pool_timeout,
        pool_recycle=_POOL_RECYCLE_SECONDS,
        connect_args={
            "connect_timeout": limits.connect_timeout,
            "options": f"-c statement_timeout={int(limits.statement_timeout * 1000)}",
            "tcp_user_timeout": _TCP_USER_TIMEOUT_MS,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
        },
    )


def _interrupt(connection: Any) -> None:
    """Wake the thread blocked on ``connection``, past its deadline: SQLite's own
    interrupt; for PostgreSQL, shut its socket down, since a cancel request needs the
    server to answer, and it is the server that does not."""
    if isinstance(connection, sqlite3.Connection):
        connection.interrupt()
        return
    pgconn = getattr(connection, "pgconn", None)
    if pgconn is None:
        return
    # Imported here: only a PostgreSQL store has such a connection, and a SQLite-only
    # install need not have the driver.
    import psycopg

    try:
        descriptor = os.dup(pgconn.socket)
    except (OSError, psycopg.Error):
        return  # already closed
    with socket.socket(fileno=descriptor) as sock:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _create_private_sqlite_file(url: str) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask), or check
    the one there: it holds every key digest and encrypted secret, so it is a secret file
    (no link, ours, not readable by others: refused otherwise, never loosened or fixed
    behind the operator's back). Then make sure its folder takes writes, so that a
    read-only folder or a full disk is named as such at start-up."""
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass  # there already (or made by an instance starting beside this one): checked below
    except OSError as exc:
        raise ConfigurationError(
            f"the SQLite store {path} cannot be created ({exc.strerror}); check that its "
            "folder exists, is writable and its disk is not full, or fix the database URL"
        ) from exc
    try:
        check_secret_file(path, path.lstat())
    except ConfigurationError as exc:
        raise ConfigurationError(f"the SQLite store: {exc.detail}") from None
    _check_writable(path.parent, f"the SQLite store {path}")


def _check_writable(folder: Path, what: str) -> None:
    # SQLite writes its journal beside the file; without this, a read-only folder or a
    # full disk would surface later as "cannot be reached; is the database running?".
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".authgate-probe.") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise ConfigurationError(
            f"{what} cannot be written: {folder} refused a test write ({exc.strerror}); "
            "make the folder writable or free disk space, then start again"
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
