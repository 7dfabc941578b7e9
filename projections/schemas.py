"""Schemas beside AOP_DATABASE_SCHEMA: the ones `aop rebuild` builds and leaves, and the one an
operator sets aside before a restore; listed and dropped by `aop rebuild --drop-old`.

Names: `<schema>_rb_<ts>` (a rebuild's build schema: left by `--no-switch`, a refusal or a
crash), `<schema>_old_<ts>` (the schema a rebuild switched away from) and `<schema>_aside_<ts>`
(`aop db set-aside`: the schema moved out of the way of a restore or a rebuild), `<ts>` the UTC
time as YYYYmmddHHMMSS. `<schema>` is cut so the name fits PostgreSQL's 63 bytes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from aop.projections.db import libpq_options, libpq_url
from aop.projections.errors import ProjectionError
from aop.runtime.settings import Settings

__all__ = ["LeftoverSchema", "drop_schemas", "leftover_schemas", "set_aside", "stamped_name"]

Kind = Literal["rb", "old", "aside"]
_STAMP_LEN = 14
_BASE_LEN = 63 - len("_aside_") - _STAMP_LEN


def _base(schema: str) -> str:
    return schema[:_BASE_LEN]


def stamped_name(schema: str, kind: Kind, stamp: str | None = None) -> str:
    """`<schema>_<kind>_<ts>` (see the module docstring); `stamp` defaults to now (UTC)."""
    return f"{_base(schema)}_{kind}_{stamp or time.strftime('%Y%m%d%H%M%S', time.gmtime())}"


@dataclass(frozen=True)
class LeftoverSchema:
    """A schema named after AOP_DATABASE_SCHEMA by a rebuild or a set-aside."""

    name: str
    kind: str
    stamp: str
    tables: int
    bytes: int


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(libpq_url(settings), options=libpq_options(settings), autocommit=True)


def leftover_schemas(settings: Settings) -> list[LeftoverSchema]:
    """The leftover schemas of AOP_DATABASE_SCHEMA, oldest first, with their size."""
    pattern = re.compile(
        rf"^{re.escape(_base(settings.database_schema))}_(rb|old|aside)_(\d{{{_STAMP_LEN}}})$"
    )
    with _connect(settings) as conn:
        rows = conn.execute(
            "SELECT n.nspname, count(c.oid) FILTER (WHERE c.relkind = 'r'), "
            "coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relkind = 'r'), 0) "
            "FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid "
            "GROUP BY n.nspname"
        ).fetchall()
    found = []
    for name, tables, size in rows:
        match = pattern.match(name)
        if match:
            found.append(LeftoverSchema(name, match[1], match[2], int(tables), int(size)))
    return sorted(found, key=lambda s: (s.stamp, s.name))


def drop_schemas(settings: Settings, names: list[str]) -> None:
    """DROP SCHEMA ... CASCADE each of `names`, which must be leftovers of the settings' schema.

    Raises:
        ProjectionError: a name is not a leftover of AOP_DATABASE_SCHEMA (nothing is dropped).
    """
    known = {s.name for s in leftover_schemas(settings)}
    foreign = [n for n in names if n not in known]
    if foreign:
        raise ProjectionError(
            f"not a leftover schema of {settings.database_schema}: {', '.join(foreign)}"
        )
    with _connect(settings) as conn, conn.transaction():
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def set_aside(settings: Settings) -> str:
    """Rename AOP_DATABASE_SCHEMA to `<schema>_aside_<ts>` and return the new name, so that a
    restore (`pg_restore`) or a rebuild starts from no schema, and the old one stays to compare
    or to drop (`aop rebuild --drop-old`).

    Raises:
        ProjectionError: the schema does not exist.
    """
    schema = settings.database_schema
    target = stamped_name(schema, "aside")
    with _connect(settings) as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if not exists:
            raise ProjectionError(f"schema {schema} does not exist: nothing to set aside")
        conn.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(schema), sql.Identifier(target)
            )
        )
    return target
