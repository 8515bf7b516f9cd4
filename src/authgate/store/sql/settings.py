"""Settings changed at run time, in SQL: the ``SettingsStore`` protocol."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from authgate.store.records import AuditEvent
from authgate.store.schema import SETTING_NAME_LENGTH, settings
from authgate.store.sql.base import SqlBase, guarded, upsert, write_audit

__all__ = ["SqlSettings"]


class SqlSettings(SqlBase):
    @guarded
    def get_settings(self) -> dict[str, Any]:
        """Every stored setting by name; empty when the database has no such table yet
        (read before its migration), so the settings read at start-up stand alone."""
        with self._connect() as conn:
            try:
                rows = conn.execute(sa.select(settings.c.name, settings.c.value)).all()
            except DBAPIError:
                # Only a table that is truly missing means "none"; anything else (the
                # database down, a deadline) is the outage it looks like.
                conn.rollback()
                if sa.inspect(conn).has_table(settings.name):
                    raise
                return {}
        return {str(row.name): row.value for row in rows}

    @guarded
    def update_settings(
        self,
        values: Mapping[str, Any],
        removed: Collection[str],
        at: datetime,
        actor: str,
        *,
        audit: AuditEvent | None = None,
    ) -> None:
        """Write ``values`` and delete ``removed`` in one transaction, with ``audit``."""
        both = set(values) & set(removed)
        if both:
            raise ValueError(f"settings both written and removed: {sorted(both)}")
        too_long = [name for name in [*values, *removed] if len(name) > SETTING_NAME_LENGTH]
        if too_long:
            raise ValueError(f"setting names longer than the store keeps: {too_long}")
        with self._transaction() as conn:
            for name, value in values.items():
                upsert(
                    conn,
                    settings,
                    {"name": name, "value": value, "updated_at": at, "updated_by": actor},
                    lambda refused: {
                        "value": refused.value,
                        "updated_at": refused.updated_at,
                        "updated_by": refused.updated_by,
                    },
                )
            if removed:
                conn.execute(settings.delete().where(settings.c.name.in_(list(removed))))
            write_audit(conn, audit)
