"""A legacy-shaped database for the parallel run against the legacy aggregator (`aop parity
--legacy-dsn-file`): a `roots(epoch bigint, channel text, root bytea)` table in a schema of
its own, a login that may only read it (its search_path on that schema), and that login's
connection string in a mode-600 file, as docs/runbook.md "Parallel run against the legacy"
sets one up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.conftest import libpq_url

__all__ = ["LegacyDb", "legacy_database"]


@dataclass(frozen=True)
class LegacyDb:
    """The legacy's schema, its read-only login's `dsn_file` (mode 600) and `password`, and
    the owner's libpq URL (what fills the table)."""

    schema: str
    dsn_file: Path
    password: str
    owner: str

    def execute(self, statement: str, *params: object) -> None:
        """`statement` as the owner, `{s}` standing for the schema."""
        with psycopg.connect(self.owner, autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(s=sql.Identifier(self.schema)), params)

    def upsert(self, roots: Mapping[tuple[str, int], bytes]) -> None:
        """Store (channel, epoch) -> root, replacing a root already there."""
        if not roots:
            return
        statement = sql.SQL(
            "INSERT INTO {}.roots VALUES (%s, %s, %s) "
            "ON CONFLICT (channel, epoch) DO UPDATE SET root = EXCLUDED.root"
        ).format(sql.Identifier(self.schema))
        with psycopg.connect(self.owner, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.executemany(statement, [(e, c, r) for (c, e), r in sorted(roots.items())])


@contextmanager
def legacy_database(database_url: str, directory: Path) -> Iterator[LegacyDb]:
    """A fresh legacy schema with an empty `roots` table and its read-only login, in the
    database of `database_url` (the owner's SQLAlchemy URL, user `aop`); the DSN file in
    `directory`. Both are dropped on exit."""
    schema, user = f"legacy_{uuid.uuid4().hex[:10]}", f"t_legacy_{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    owner = libpq_url(database_url)
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {}.roots (epoch bigint NOT NULL, channel text NOT NULL, "
                "root bytea NOT NULL, PRIMARY KEY (channel, epoch))"
            ).format(sql.Identifier(schema))
        )
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )
        for grant in ("GRANT USAGE ON SCHEMA {s} TO {u}", "GRANT SELECT ON {s}.roots TO {u}"):
            conn.execute(sql.SQL(grant).format(s=sql.Identifier(schema), u=sql.Identifier(user)))
        conn.execute(
            sql.SQL("ALTER ROLE {} SET search_path = {}").format(
                sql.Identifier(user), sql.Identifier(schema)
            )
        )
    dsn_file = directory / f"{schema}.dsn"
    dsn_file.write_text(owner.replace("aop:aop@", f"{user}:{password}@", 1) + "\n")
    dsn_file.chmod(0o600)
    try:
        yield LegacyDb(schema, dsn_file, password, owner)
    finally:
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
