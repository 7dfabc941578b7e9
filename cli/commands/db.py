"""`aop db`: migrate the projection database (schema AOP_DATABASE_SCHEMA), set service roles."""

from __future__ import annotations

import argparse

from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "db", help="projection database migrations (AOP_DATABASE_URL, AOP_DATABASE_SCHEMA)"
    )
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="create or migrate the tables (idempotent)")
    upgrade.add_argument("revision", nargs="?", default="head", help="target (default: head)")
    upgrade.set_defaults(handler=run_upgrade)
    current = actions.add_parser("current", help="print the schema's migration revision")
    current.set_defaults(handler=run_current)
    roles = actions.add_parser(
        "roles",
        help="create the service roles (aop_api, aop_projector, aop_settle) and grant each only "
        "what it needs on the schema (idempotent; run after every upgrade; needs CREATEROLE)",
    )
    roles.set_defaults(handler=run_roles)


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
    from aop.projections.roles import apply_roles

    check_schema_current(settings)
    for role, tables in apply_roles(settings).items():
        print(f"{role}: {', '.join(tables)} (schema {settings.database_schema})")
    return 0
