"""The SQLAlchemy store: SQLite in the data folder by default, PostgreSQL when shared.

Synchronous on purpose: the core is shared by ASGI and WSGI adapters, and the store is
touched only off the hot path (cache misses, admin operations), which async adapters run
in a worker thread. Every public call but ``migrate`` runs under a deadline and a circuit
breaker (see ``authgate.store.deadline``).

One module per record kind, all over one engine (``base.SqlBase``); ``SqlStore`` puts
them together and satisfies ``authgate.store.protocols.Store``.
"""

from __future__ import annotations

from authgate.store.sql.access_keys import SqlAccessKeys
from authgate.store.sql.audit import SqlAudit, SqlChangeFeed
from authgate.store.sql.base import engine_url, safe_url
from authgate.store.sql.keys import SqlKeys
from authgate.store.sql.sessions import SqlSessions
from authgate.store.sql.settings import SqlSettings
from authgate.store.sql.users import SqlUsers

__all__ = ["SqlStore", "engine_url", "safe_url"]


class SqlStore(SqlKeys, SqlUsers, SqlAccessKeys, SqlSessions, SqlSettings, SqlAudit, SqlChangeFeed):
    """Every record kind in one SQL database, SQLite or PostgreSQL."""
