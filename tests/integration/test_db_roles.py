"""`aop db roles` on the real PostgreSQL: each service role holds exactly its declared rights,
the service's own code works through a login in that role, and every other write is refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from solders.pubkey import Pubkey

from aop.api.app import create_app
from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.projections.db import engine_for, libpq_options, libpq_url, upgrade
from aop.projections.errors import RoleSetupError
from aop.projections.roles import LOGIN_ROLES, ROLE_GRANTS, apply_roles, create_login
from aop.runtime.settings import Settings, load_settings
from aop.settlement.outbox import SettlementStore
from tests.conftest import ROOT
from tests.support.api_sample import write_sample_root

MINT = Pubkey.from_string("Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM")
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
Login = Callable[[str], Settings]


@pytest.fixture
def owner(database_url: str, db_schema: str) -> Settings:
    """The schema's owner settings, migrated, one root written, roles applied."""
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema})
    upgrade(settings)
    engine = engine_for(settings)
    try:
        amounts = {hashlib.sha256(b"w%d" % i).digest(): 10 + i for i in range(5)}
        write_sample_root(
            engine,
            channel="alpha",
            root_seq=1,
            amounts=amounts,
            program_id=DEFAULT_PROGRAM_ID,
            mint=MINT,
        )
    finally:
        engine.dispose()
    apply_roles(settings)
    return settings


@pytest.fixture
def login(owner: Settings) -> Iterator[Login]:
    """Creates a throwaway login user IN ROLE <role>; its settings; dropped at the end."""
    users: list[str] = []

    def make(role: str) -> Settings:
        user, password = f"t_{role}_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        service = next(name for name, group in LOGIN_ROLES.items() if group == role)
        users.append(user)
        assert create_login(owner, user, service, password) == "created"
        url = owner.database_url.replace("aop:aop@", f"{user}:{password}@", 1)
        assert url != owner.database_url, "the test expects the local `aop:aop@` URL"
        return load_settings(
            {
                "AOP_DATABASE_URL": url,
                "AOP_DATABASE_SCHEMA": owner.database_schema,
                "AOP_SETTLEMENT_TARGET": "channel",  # the seeded roots are channel roots
            }
        )

    yield make
    with psycopg.connect(libpq_url(owner), autocommit=True) as conn:
        for user in users:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(user)))


def _connect(settings: Settings) -> psycopg.Connection[Any]:
    return psycopg.connect(libpq_url(settings), options=libpq_options(settings), autocommit=True)


def _refused(settings: Settings, statement: str) -> bool:
    with _connect(settings) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def _held(settings: Settings) -> dict[str, set[tuple[str, str]]]:
    """role -> (table, privilege) it holds on every table of the schema."""
    with _connect(settings) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s",
                (settings.database_schema,),
            )
        ]
        return {
            role: {
                (table, privilege)
                for table in tables
                for privilege in PRIVILEGES
                if conn.execute(
                    "SELECT has_table_privilege(%s, %s, %s)",
                    (role, f'"{settings.database_schema}"."{table}"', privilege),
                ).fetchone()[0]
            }
            for role in ROLE_GRANTS
        }


DECLARED = {
    role: {(table, p) for table, privileges in grants.items() for p in privileges}
    for role, grants in ROLE_GRANTS.items()
}


def test_each_role_holds_exactly_its_declared_privileges(owner: Settings) -> None:
    assert _held(owner) == DECLARED


def test_applying_roles_again_after_extra_grants_restores_exactly_the_declared_rights(
    owner: Settings,
) -> None:
    with _connect(owner) as conn:
        conn.execute("GRANT DELETE, TRUNCATE ON roots TO aop_api")
    assert apply_roles(owner) == {role: sorted(t) for role, t in ROLE_GRANTS.items()}
    assert _held(owner) == DECLARED


async def test_api_role_serves_reads_and_cannot_write(login: Login) -> None:
    settings = login("aop_api")
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            assert (await client.get("/readyz")).status_code == 200
            roots = (await client.get("/v1/channels/alpha/roots")).json()["roots"]
            assert [r["root_seq"] for r in roots] == [1]
            dataset = await client.get("/v1/roots/alpha/1/dataset")
            assert dataset.status_code == 200 and len(dataset.json()) == 5
    finally:
        await app.state.db.close()
    for statement in (
        "INSERT INTO channels (channel_config) VALUES ('x')",
        "UPDATE roots SET total = 0",
        "DELETE FROM leaves",
        "UPDATE settlement_outbox SET status = 'published'",
        "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) "
        "VALUES ('c', 't', 0, 0)",
        "TRUNCATE claimed_totals",
        "CREATE TABLE evil (x int)",
    ):
        assert _refused(settings, statement), statement


def test_projector_role_writes_roots_and_cannot_delete_or_settle(login: Login) -> None:
    settings = login("aop_projector")
    engine = engine_for(settings)
    try:
        write_sample_root(
            engine,
            channel="beta",
            root_seq=1,
            amounts={bytes([7]) * 32: 5, bytes([8]) * 32: 6},
            program_id=DEFAULT_PROGRAM_ID,
            mint=MINT,
        )
    finally:
        engine.dispose()
    with _connect(settings) as conn:
        assert conn.execute("SELECT count(*) FROM roots").fetchone() == (2,)
    for statement in (
        "DELETE FROM roots",
        "DELETE FROM settlement_outbox",
        "TRUNCATE leaves",
        "INSERT INTO settlement_attempts (channel_config, root_seq, outcome) VALUES ('x', 1, 'y')",
        "UPDATE alembic_version SET version_num = 'x'",
    ):
        assert _refused(settings, statement), statement


async def test_settle_role_records_attempts_and_cannot_touch_roots(login: Login) -> None:
    settings = login("aop_settle")
    store = await SettlementStore.open(settings)
    try:
        assert await store.try_lead()
        [config] = await store.channels()
        [entry] = await store.open_entries(config)
        assert await store.record(entry, "intent", signature="sig1") > 0
        assert await store.lag() == 1
    finally:
        await store.close()
    for statement in (
        "UPDATE roots SET root_seq = root_seq + 1",
        "INSERT INTO leaves SELECT * FROM leaves",
        "DELETE FROM settlement_attempts",
        "INSERT INTO settlement_outbox SELECT * FROM settlement_outbox",
        "UPDATE consumer_offsets SET next_offset = 0",
    ):
        assert _refused(settings, statement), statement


def test_aop_db_roles_command_prints_the_grants(owner: Settings) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AOP_")},
        "AOP_DATABASE_URL": owner.database_url,
        "AOP_DATABASE_SCHEMA": owner.database_schema,
        "AOP_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-m", "aop.cli", "db", "roles"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    schema = owner.database_schema
    assert result.stdout.splitlines() == [
        f"{role}: {', '.join(sorted(tables))} (schema {schema})"
        for role, tables in ROLE_GRANTS.items()
    ]


def test_login_rerun_replaces_the_password(owner: Settings, login: Login) -> None:
    """`aop db roles --login` again for the same login sets the new password: the old one
    stops working, the new one connects as that login."""
    settings = login("aop_api")
    user = settings.database_url.split("//", 1)[1].split(":", 1)[0]
    old_password = settings.database_url.split(":", 2)[2].split("@", 1)[0]
    assert create_login(owner, user, "api", "a-new-password") == "updated"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(libpq_url(settings), connect_timeout=5).close()
    renewed = settings.database_url.replace(old_password, "a-new-password")
    with psycopg.connect(renewed.replace("+psycopg", ""), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)


def test_login_refuses_the_owner_a_group_role_and_an_unknown_service(owner: Settings) -> None:
    """The owner running the command, a group role and --role outside api|projector|settle
    are refused with the reason, and nothing changes."""
    with pytest.raises(RoleSetupError, match="not a service login"):
        create_login(owner, "aop", "api", "x")
    with pytest.raises(RoleSetupError, match="not a group role"):
        create_login(owner, "aop_api", "api", "x")
    with pytest.raises(RoleSetupError, match=r"--role must be one of \['api', 'projector', "):
        create_login(owner, "t_someone", "admin", "x")
