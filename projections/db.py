"""Connections to the projection database, bound to one schema, and its migrations.

Every connection sets `search_path` to `settings.database_schema`, so the unqualified table
names of `projections.models` (and of hand-written SQL) resolve in that schema. Migrations run
programmatically (`upgrade`); the version table lives in the same schema.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from aop.projections.errors import SchemaNotCurrentError, UnsafeSchemaNameError
from aop.runtime.settings import Settings

__all__ = [
    "MIGRATIONS_DIR",
    "check_schema_current",
    "current_revision",
    "engine_for",
    "head_revision",
    "libpq_options",
    "libpq_url",
    "upgrade",
]

#: Alembic's script directory, package data of `aop.projections.migrations` (a real directory
#: in a wheel install and a checkout alike: setuptools installs packages unzipped)
MIGRATIONS_DIR = Path(str(resources.files("aop.projections.migrations")))
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _schema(settings: Settings) -> str:
    name = settings.database_schema
    if not _SCHEMA_NAME.match(name):
        raise UnsafeSchemaNameError(
            f"AOP_DATABASE_SCHEMA must be a plain identifier (letters, digits, _; at most 63) "
            f"(got {name!r})"
        )
    return name


def _options(settings: Settings) -> str:
    return f'-c search_path="{_schema(settings)}"'


def libpq_url(settings: Settings) -> str:
    """The database URL as libpq (plain psycopg) takes it."""
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def libpq_options(settings: Settings) -> str:
    """The libpq `options` that bind a plain psycopg connection to the settings' schema."""
    return _options(settings)


def engine_for(settings: Settings, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine (psycopg 3) whose connections use the settings' schema."""
    return create_engine(
        settings.database_url,
        connect_args={"options": _options(settings)},
        pool_pre_ping=True,
        **kwargs,
    )


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise SchemaNotCurrentError("no migrations found in " + str(MIGRATIONS_DIR))
    return head


def upgrade(settings: Settings, revision: str = "head") -> str | None:
    """Create the schema if needed and migrate it to `revision`; returns the revision reached.

    Concurrent upgrades of the same schema serialise on an advisory lock.
    """
    schema = _schema(settings)
    engine = engine_for(settings, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": schema})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            config = _alembic_config()
            config.attributes["connection"] = conn
            config.attributes["schema"] = schema
            command.upgrade(config, revision)
            return MigrationContext.configure(
                conn, opts={"version_table_schema": schema}
            ).get_current_revision()
    finally:
        engine.dispose()


def current_revision(settings: Settings) -> str | None:
    """The schema's migration revision, None when it was never migrated."""
    schema = _schema(settings)
    engine = engine_for(settings, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(
                conn, opts={"version_table_schema": schema}
            ).get_current_revision()
    finally:
        engine.dispose()


def check_schema_current(settings: Settings) -> None:
    """Raise unless the schema is migrated to the newest revision.

    Raises:
        SchemaNotCurrentError: with the operator action (`aop db upgrade`).
    """
    have, want = current_revision(settings), head_revision()
    if have != want:
        raise SchemaNotCurrentError(
            f"database schema {settings.database_schema!r} is at revision {have} but this "
            f"version needs {want}; operator action: run `aop db upgrade`"
        )
