"""Alembic environment: always run by authgate itself on a connection it hands over."""

from __future__ import annotations

from alembic import context

from authgate.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - authgate always passes one
    raise RuntimeError("authgate migrations run through authgate.store, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
