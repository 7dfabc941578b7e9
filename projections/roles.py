"""Least-privilege database roles: one group role per service, with only the rights it uses.

`aop db roles` creates the roles when missing (NOLOGIN: deployments create login users
`IN ROLE aop_api` and so on) and sets their rights on the tables of AOP_DATABASE_SCHEMA:
everything they held there is revoked first, then the table below is granted, so running it
again after a migration (new tables) or after this table changed leaves exactly these rights.
Migrations (`aop db upgrade`) and `aop rebuild` (which swaps schemas) keep the owner role.

Steps (one transaction, as the schema's owner, who needs CREATEROLE):
1. create each missing role (NOLOGIN);
2. revoke its rights on every table and sequence of the schema and on the schema;
3. grant USAGE on the schema, its table rights, and USAGE on the schema's sequences to the
   roles that insert (identity and serial columns draw from them).
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

from aop.projections.db import libpq_options, libpq_url
from aop.projections.errors import RoleSetupError
from aop.runtime.settings import Settings

__all__ = ["LOGIN_ROLES", "ROLE_GRANTS", "apply_roles", "create_login"]

_READ = ("SELECT",)
_WRITE = ("SELECT", "INSERT", "UPDATE")
#: role -> table -> privileges. No role gets DELETE or TRUNCATE: nothing but `aop rebuild`
#: (run as the owner) ever removes rows.
ROLE_GRANTS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "aop_api": {
        "alembic_version": _READ,
        "channels": _READ,
        "roots": _READ,
        "leaves": _READ,
        "tree_levels": _READ,
        "claimed_totals": _READ,
        "settlement_outbox": _READ,
    },
    "aop_projector": {
        "alembic_version": _READ,
        "channels": _WRITE,
        "roots": _WRITE,
        "leaves": _WRITE,
        "tree_levels": _WRITE,
        "claimed_totals": _WRITE,
        "settlement_outbox": _WRITE,
        "consumer_offsets": _WRITE,
    },
    "aop_settle": {
        "alembic_version": _READ,
        "channels": _READ,
        "roots": _READ,
        "settlement_outbox": ("SELECT", "UPDATE"),
        "settlement_attempts": _WRITE,
    },
}


#: `aop db roles --role` choice -> the group role a login of that service joins.
LOGIN_ROLES: Mapping[str, str] = {
    "api": "aop_api",
    "projector": "aop_projector",
    "settle": "aop_settle",
}


def create_login(settings: Settings, login: str, role: str, password: str) -> str:
    """Create (or update) login role `login` with `password`, member of the service's group
    role, and return what was done ("created" or "updated").

    The password never reaches the server in clear: libpq hashes it (SCRAM-SHA-256) on this
    side, as psql's \\password does, so neither the server's statement log nor this process's
    log holds it.

    Raises:
        RoleSetupError: an unknown role, a login name that is one of the group roles or not a
            name, an empty password, the group role missing (run `aop db roles`), or a missing
            privilege (CREATEROLE).
    """
    group = LOGIN_ROLES.get(role)
    if group is None:
        raise RoleSetupError(f"--role must be one of {sorted(LOGIN_ROLES)} (got {role!r})")
    if not 1 <= len(login) <= 63 or login in ROLE_GRANTS or login.startswith("pg_"):
        raise RoleSetupError(
            f"--login must be a new role name of 1-63 characters, not a group role (got {login!r})"
        )
    if not password:
        raise RoleSetupError(f"the password for login {login} is empty")
    try:
        with psycopg.connect(libpq_url(settings), options=libpq_options(settings)) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone()
            if not exists:
                raise RoleSetupError(
                    f"group role {group} does not exist; operator action: run `aop db roles` first"
                )
            verifier = conn.pgconn.encrypt_password(
                password.encode(), login.encode(), b"scram-sha-256"
            ).decode()
            found = conn.execute(
                "SELECT rolsuper OR rolcreaterole OR rolname = current_user FROM pg_roles "
                "WHERE rolname = %s",
                (login,),
            ).fetchone()
            if found and found[0]:
                raise RoleSetupError(
                    f"role {login} is a superuser, can create roles, or runs this command: it is "
                    "not a service login; choose another --login"
                )
            verb = "ALTER" if found else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(login), sql.Literal(verifier)
                )
            )
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login))
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RoleSetupError(
            f"cannot create login {login} ({exc.diag.message_primary}); operator action: run "
            "it as the schema's owner with CREATEROLE"
        ) from exc
    return "updated" if found else "created"


def apply_roles(settings: Settings) -> dict[str, list[str]]:
    """Create the service roles and set their rights on the settings' schema (module steps).

    Returns:
        role -> the tables it was granted rights on, sorted.
    Raises:
        RoleSetupError: a privilege is missing (the message says which and what to do), or a
            table of ROLE_GRANTS does not exist (run `aop db upgrade` first).
    """
    schema = sql.Identifier(settings.database_schema)
    try:
        with psycopg.connect(libpq_url(settings), options=libpq_options(settings)) as conn:
            for role, tables in ROLE_GRANTS.items():
                _create_role(conn, role)
                _grant(conn, schema, role, tables)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RoleSetupError(
            f"cannot set up the service roles in schema {settings.database_schema} "
            f"({exc.diag.message_primary}); operator action: run `aop db roles` as the schema's "
            "owner with CREATEROLE (`ALTER ROLE <owner> CREATEROLE`)"
        ) from exc
    except psycopg.errors.UndefinedTable as exc:
        raise RoleSetupError(
            f"{exc.diag.message_primary} in schema {settings.database_schema}; "
            "operator action: run `aop db upgrade` first"
        ) from exc
    return {role: sorted(tables) for role, tables in ROLE_GRANTS.items()}


def _create_role(conn: psycopg.Connection, role: str) -> None:
    """CREATE ROLE unless it exists; a concurrent creator winning the race is fine."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if exists:
        return
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    except psycopg.errors.DuplicateObject:
        pass


def _grant(
    conn: psycopg.Connection,
    schema: sql.Identifier,
    role: str,
    tables: Mapping[str, tuple[str, ...]],
) -> None:
    who = sql.Identifier(role)
    with conn.transaction():
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, who))
        conn.execute(
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema, who)
        )
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, who))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who))
        for table, privileges in tables.items():
            conn.execute(
                sql.SQL("GRANT {} ON {}.{} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges),
                    schema,
                    sql.Identifier(table),
                    who,
                )
            )
        if any("INSERT" in privileges for privileges in tables.values()):
            conn.execute(
                sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema, who)
            )
