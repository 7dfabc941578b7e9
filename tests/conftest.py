"""Fixtures that hand tests real services.

Kafka and PostgreSQL come from, in order: `AOP_KAFKA_BOOTSTRAP` / `AOP_DATABASE_URL` when set;
else testcontainers' Redpanda and Postgres modules where a Docker engine answers; else the
project's local services (`infra/local/*.sh up`, idempotent). Each integration test gets its
own topic prefix and database schema, so tests run in any order and twice in a row.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from aop.runtime.settings import Settings, load_settings
from tests.topics import JANITOR

ROOT = Path(__file__).resolve().parent.parent
LOCAL_KAFKA = f"127.0.0.1:{os.environ.get('AOP_LOCAL_KAFKA_PORT', '19092')}"
LOCAL_DATABASE = (
    f"postgresql+psycopg://aop:aop@127.0.0.1:{os.environ.get('AOP_LOCAL_PG_PORT', '15432')}/aop"
)


def pytest_sessionfinish(session: pytest.Session) -> None:
    JANITOR.delete_all()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in item.path.as_posix():
            item.add_marker(pytest.mark.integration)


def _docker_ping() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
    except Exception:
        return False
    try:
        client.ping()
    except Exception:
        return False
    finally:
        client.close()
    return True


def _docker_answers() -> bool:
    """Whether a Docker engine answers (testcontainers then starts Redpanda and Postgres).

    Where none runs (CI, these machines), docker-py's client leaks its socket while failing,
    and pytest (`filterwarnings = error`) would turn the unraisable ResourceWarning into a
    failure of whichever test runs at the next collection: the leak is collected here, once
    the failed attempt's traceback is gone, under a warnings filter of its own.
    """
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        answers = _docker_ping()
        gc.collect()
    return answers


def _local_service(name: str) -> None:
    subprocess.run(["bash", str(ROOT / "infra" / "local" / f"{name}.sh"), "up"], check=True)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real Kafka-compatible broker."""
    if os.environ.get("AOP_KAFKA_BOOTSTRAP"):
        JANITOR.bootstrap = os.environ["AOP_KAFKA_BOOTSTRAP"]
        yield os.environ["AOP_KAFKA_BOOTSTRAP"]
    elif _docker_answers():
        from testcontainers.community.kafka import RedpandaContainer

        with RedpandaContainer() as redpanda:
            yield redpanda.get_bootstrap_server()
    else:
        _local_service("kafka")
        JANITOR.bootstrap = LOCAL_KAFKA
        yield LOCAL_KAFKA


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """SQLAlchemy URL (psycopg 3 driver) of a real PostgreSQL server."""
    if os.environ.get("AOP_DATABASE_URL"):
        yield os.environ["AOP_DATABASE_URL"]
    elif _docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as postgres:
            yield postgres.get_connection_url()
    else:
        _local_service("postgres")
        yield LOCAL_DATABASE


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as plain libpq takes it."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def new_topic_prefix() -> str:
    """A fresh topic prefix, whose topics are deleted when the session ends."""
    return JANITOR.track(f"t{uuid.uuid4().hex[:12]}.")


@pytest.fixture
def topic_prefix() -> str:
    return new_topic_prefix()


@pytest.fixture
def db_schema(database_url: str) -> Iterator[str]:
    """A fresh, empty schema, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def settings_factory(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, db_schema: str
) -> Callable[..., Settings]:
    """Builds Settings pointing at the real services, this test's topics and schema."""

    def make(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        base = {
            "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "AOP_DATABASE_URL": database_url,
            "AOP_TOPIC_PREFIX": topic_prefix,
            "AOP_DATABASE_SCHEMA": db_schema,
            "AOP_CHAIN_PARTITIONS": "4",
        }
        return load_settings({**base, **(env or {})}, **overrides)

    return make
