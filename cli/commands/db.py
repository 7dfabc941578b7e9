"""`aop db`: migrate the projection database (schema AOP_DATABASE_SCHEMA), set service roles."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from aop.cli.help import OPERATOR_ERROR, help_options
from aop.projections.roles import LOGIN_ROLES
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings

DB_SETTINGS = ("AOP_DATABASE_URL", "AOP_DATABASE_SCHEMA")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "db",
        help="projection database migrations (AOP_DATABASE_URL, AOP_DATABASE_SCHEMA)",
        **help_options(
            "The projections' PostgreSQL schema: migrations, the services' roles and logins.",
            settings=DB_SETTINGS,
            exits={0: "done", 2: OPERATOR_ERROR},
        ),
    )
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser(
        "upgrade",
        help="create or migrate the tables (idempotent)",
        **help_options(
            "Creates the schema and migrates it to REVISION (head): run before the first start "
            "and after every upgrade of the code. Idempotent.",
            settings=DB_SETTINGS,
            exits={0: "at the revision", 2: OPERATOR_ERROR + "; the database unreachable"},
        ),
    )
    upgrade.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    upgrade.set_defaults(handler=run_upgrade)
    current = actions.add_parser(
        "current",
        help="print the schema's migration revision",
        **help_options(
            "Prints the schema's revision and this code's head revision.",
            settings=DB_SETTINGS,
            exits={0: "printed", 2: OPERATOR_ERROR + "; the database unreachable"},
        ),
    )
    current.set_defaults(handler=run_current)
    roles = actions.add_parser(
        "roles",
        help="create the service roles (aop_api, aop_projector, aop_settle) and grant each only "
        "what it needs on the schema (idempotent; run after every upgrade; needs CREATEROLE)",
        **help_options(
            "Without --login: creates the NOLOGIN group roles aop_api, aop_projector and "
            "aop_settle and sets each one's rights on the schema to exactly what its service "
            "uses (revoking the rest). With --login NAME --role api|projector|settle: creates "
            "(or updates) the login role NAME with a password, member of that group role; the "
            "password is hashed (SCRAM-SHA-256) before it leaves this process and is never "
            "printed or logged. Run as the schema's owner with CREATEROLE.",
            settings=DB_SETTINGS,
            exits={
                0: "roles set, or the login created or updated",
                2: OPERATOR_ERROR + "; missing CREATEROLE; the group roles missing (--login: "
                "run `aop db roles` first); the passwords typed differ",
            },
        ),
    )
    roles.add_argument(
        "--login",
        metavar="NAME",
        help="instead: create (or update) login role NAME in the group role of --role",
    )
    roles.add_argument(
        "--role",
        choices=sorted(LOGIN_ROLES),
        help="with --login: the service the login is for (api: aop_api, projector: "
        "aop_projector, settle: aop_settle)",
    )
    roles.add_argument(
        "--password-file",
        metavar="PATH",
        help="with --login: read the password from the first line of PATH ('-': standard "
        "input); without it the password is asked for twice on the terminal",
    )
    roles.set_defaults(handler=run_roles)
    aside = actions.add_parser(
        "set-aside",
        help="rename the schema to <schema>_aside_<ts> (before a restore or a rebuild "
        "from scratch)",
        **help_options(
            "Renames AOP_DATABASE_SCHEMA to <schema>_aside_<ts> in one statement, so that "
            "pg_restore or `aop rebuild` starts from no schema, and prints the new name. Stop "
            "the writers (aop project, aop settle) first. `aop rebuild --drop-old` drops it "
            "once you are satisfied.",
            settings=DB_SETTINGS,
            exits={0: "renamed", 2: OPERATOR_ERROR + "; the schema does not exist"},
        ),
    )
    aside.set_defaults(handler=run_set_aside)


def run_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.projections.db import upgrade

    reached = upgrade(settings, args.revision)
    print(f"schema {settings.database_schema}: revision {reached}")
    return 0


def run_current(args: argparse.Namespace) -> int:
    settings = load_settings()
    from aop.projections.db import current_revision, head_revision

    have = current_revision(settings)
    print(f"schema {settings.database_schema}: revision {have} (head {head_revision()})")
    return 0


def run_roles(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.projections.db import check_schema_current
    from aop.projections.roles import apply_roles, create_login

    if args.login or args.role or args.password_file:
        if not (args.login and args.role):
            raise AopError("--login NAME and --role api|projector|settle go together")
        password = _password(args.password_file, args.login)
        done = create_login(settings, args.login, args.role, password)
        print(f"login {args.login}: {done}, member of {LOGIN_ROLES[args.role]}")
        return 0
    check_schema_current(settings)
    for role, tables in apply_roles(settings).items():
        print(f"{role}: {', '.join(tables)} (schema {settings.database_schema})")
    return 0


def _password(path: str | None, login: str) -> str:
    """The password from the first line of `path` ('-': stdin), or asked twice on the
    terminal (never echoed)."""
    if path == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if path:
        try:
            return Path(path).read_text().splitlines()[0] if Path(path).stat().st_size else ""
        except OSError as exc:
            raise AopError(f"--password-file {path}: {exc.strerror}") from exc
    if not sys.stdin.isatty():
        raise AopError("no terminal to ask for the password: pass --password-file PATH (or -)")
    first = getpass.getpass(f"password for {login}: ")
    if getpass.getpass(f"password for {login} (again): ") != first:
        raise AopError("the passwords typed differ; nothing was changed")
    return first


def run_set_aside(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.projections.schemas import set_aside

    print(f"schema {settings.database_schema} set aside as {set_aside(settings)}")
    return 0
