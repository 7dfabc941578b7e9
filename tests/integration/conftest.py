"""Fixtures shared by the integration tests: the API's seed data, the SASL_SSL broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from aop.log.kafka import ensure_topics
from aop.projections.db import engine_for, upgrade
from aop.runtime.settings import Settings, load_settings
from tests.conftest import libpq_url
from tests.integration.test_api import Seed, seed_database
from tests.support.kafka_nodes import KafkaNodes, kafka_nodes


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Iterator[Seed]:
    """A schema with the seed data, shared by this module's tests (the API only reads)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": schema})
    try:
        yield seed_database(settings)
    finally:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def project_settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Settings of a projector test: a migrated fresh schema and the topics created."""
    settings = settings_factory({"AOP_PROJECTION_POLL_TIMEOUT_S": "0.2"})
    upgrade(settings)
    ensure_topics(settings)
    return settings


@pytest.fixture
def engine(project_settings: Settings) -> Iterator[Engine]:
    engine = engine_for(project_settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[KafkaNodes]:
    """A broker whose only client listener is SASL_SSL (SCRAM-SHA-256/512 users made when its
    storage is formatted, mutual TLS required, a throwaway CA), started once per session by
    `infra/local/kafka-secure.sh` on free ports (~6-10 s), its directory removed at the end.
    `secure_kafka.env()` holds the AOP_KAFKA_* settings of a client."""
    with kafka_nodes("kafka-secure") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def replicated_kafka() -> Iterator[KafkaNodes]:
    """Three KRaft nodes (RF 3, min.insync 2; `infra/local/kafka-cluster.sh`) on free ports,
    started when a (`slow`) test first asks for it, stopped and removed at the end."""
    with kafka_nodes("kafka-cluster") as cluster:
        yield cluster
