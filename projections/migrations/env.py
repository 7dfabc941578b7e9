"""Alembic environment: runs migrations on the connection `projections.db.upgrade` hands over.

The connection's `search_path` is the target schema (settings.database_schema), so every
table lands there; the version table goes there too (`version_table_schema`).
"""

from __future__ import annotations

from alembic import context

from aop.projections.models import Base

config = context.config
connection = config.attributes.get("connection")
schema = config.attributes.get("schema")
if connection is None or schema is None:
    raise RuntimeError(
        "projections migrations run through `aop db upgrade` (projections.db.upgrade), "
        "which passes the connection and schema; the alembic CLI is not wired"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table_schema=schema,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
