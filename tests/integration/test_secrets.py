"""Secrets stay out of logs and metrics: every service runs (DEBUG logs, dry-run settlement
holding the publisher keypair) with a database login whose password is known, on a broker
reached over SASL_SSL with a SCRAM password read from a file, until a root is projected and
served, with an API key in the RPC URLs' query as providers issue them; then their logs,
/metrics and refusals are searched for both passwords, the API key and the secret key in every
form it could be printed in (JSON array, base58, hex, the 32-byte seed alone). The Kafka
password is also absent from every repr the settings and clients give."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from aop.cli.services import METRICS_PORTS, SERVICES
from aop.cli.supervisor import ServiceSpec, Supervisor
from aop.log.security import kafka_security
from aop.runtime.settings import load_settings
from aop.simchain.process import spawn_simchain
from aop.streams.fold.credentials import fold_credentials
from tests.conftest import libpq_url
from tests.live_pipeline import AOP, fresh_schema, http_get, pipeline_env, service_env
from tests.support.kafka_nodes import KafkaNodes

CHANNELS = ("sec:alpha",)
SIM_ARGS = ["--rate", "60", "--wallets", "20", "--slot-ms", "40", "--finality-depth", "4"]
ROOT_TIMEOUT_S = 90.0


def secret_forms(secret: bytes) -> set[str]:
    """The ways a 64-byte Solana keypair (or its 32-byte seed) may end up in text."""
    forms = {str(Keypair.from_bytes(secret)), str(Pubkey.from_bytes(secret[:32]))}  # base58
    for value in (secret, secret[:32]):
        forms |= {
            json.dumps(list(value)),
            ",".join(map(str, value)),
            value.hex(),
            value.hex().upper(),
            base64.b64encode(value).decode(),
        }
    return forms


@pytest.fixture
def password_login(database_url: str) -> Iterator[tuple[str, str]]:
    """A login in the owner role with a fresh password: (its URL, the password). What it
    creates lives in the test's schema, dropped (by the schema's owner) before the login."""
    user, password = f"t_secret_{uuid.uuid4().hex[:8]}", f"pw{uuid.uuid4().hex}"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        owner = conn.execute("SELECT current_user").fetchone()[0]
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(user), sql.Literal(password), sql.Identifier(owner)
            )
        )
    prefix, _, rest = database_url.partition("://")
    url = f"{prefix}://{user}:{password}@{rest.rpartition('@')[2]}"
    yield url, password
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))


def _run_until_served(
    env: dict[str, str], ports: dict[str, int], logs: Path, *, rpc_key: str
) -> dict[str, str]:
    """Every service, logging to `logs/<name>.log`, until the API serves a root; the
    /metrics text of each. The RPC URLs carry `rpc_key` as providers' API keys do."""
    sim = spawn_simchain([*SIM_ARGS, "--channels", ",".join(CHANNELS)], env=env)
    query = f"?api-key={rpc_key}"
    env = {**env, "AOP_RPC_URL": sim.http_url + query, "AOP_WS_URL": sim.ws_url + query}
    specs = [
        ServiceSpec(name, [*AOP, command], service_env(env, ports, name), logs / f"{name}.log")
        for name, command in SERVICES.items()
    ]
    supervisor = Supervisor(specs, stop_timeout=15)
    thread = threading.Thread(
        target=supervisor.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    api = f"http://127.0.0.1:{ports['api']}"
    try:
        deadline = time.monotonic() + ROOT_TIMEOUT_S
        while True:
            reply = http_get(f"{api}/v1/channels/{CHANNELS[0]}/roots")
            if reply is not None and reply.status_code == 200 and reply.json()["roots"]:
                break
            assert time.monotonic() < deadline, "no root served; read logs/*.log"
            time.sleep(0.5)
        assert http_get(f"{api}/v1/channels/{CHANNELS[0]}/claims/bad").status_code == 400
        urls = {name: f"http://127.0.0.1:{ports[name]}/metrics" for name in METRICS_PORTS}
        scrapes = {name: http_get(url) for name, url in {**urls, "api": f"{api}/metrics"}.items()}
        assert all(r is not None and r.status_code == 200 for r in scrapes.values())
        return {name: r.text for name, r in scrapes.items() if r is not None}
    finally:
        supervisor.request_stop()
        thread.join(60)
        sim.stop()


def test_no_service_logs_or_exports_the_keypair_the_passwords_or_rpc_key(
    secure_kafka: KafkaNodes, database_url: str, password_login: tuple[str, str], tmp_path: Path
) -> None:
    url, password = password_login
    kafka_password = secure_kafka.password()
    logs = tmp_path / "logs"
    logs.mkdir()
    with fresh_schema(database_url) as schema:
        env, ports = pipeline_env(
            kafka_bootstrap=secure_kafka.bootstrap,
            database_url=url,
            schema=schema,
            workdir=tmp_path,
            channels=CHANNELS,
            settings={**secure_kafka.env(), "AOP_LOG_LEVEL": "DEBUG"},
        )
        rpc_key = f"k3y{uuid.uuid4().hex}"
        scrapes = _run_until_served(env, ports, logs, rpc_key=rpc_key)
    secret = bytes(json.loads((tmp_path / "publisher.json").read_text()))
    forbidden = secret_forms(secret) | {password, rpc_key, kafka_password}
    texts = {f"{p.name}": p.read_text(errors="replace") for p in logs.glob("*.log")}
    texts |= {f"{name} /metrics": text for name, text in scrapes.items()}
    assert set(texts) == {f"{n}.log" for n in SERVICES} | {f"{n} /metrics" for n in scrapes}
    assert all(texts[f"{n}.log"] for n in SERVICES), "a service logged nothing"
    # the keypair was loaded and its public half logged: the search looks at the right text
    assert str(Keypair.from_bytes(secret).pubkey()) in texts["settlement.log"]
    leaks = {
        (where, form[:12]) for where, text in texts.items() for form in forbidden if form in text
    }
    assert leaks == set()


def test_the_kafka_password_is_in_no_repr_of_settings_security_or_faust_credentials(
    secure_kafka: KafkaNodes,
) -> None:
    """Every object that holds the SCRAM password, or the path to it, prints without it."""
    settings = load_settings(secure_kafka.env())
    kafka_password = secure_kafka.password()
    security = kafka_security(settings)
    credentials = fold_credentials(settings)
    assert security.password is not None and security.password.reveal() == kafka_password
    assert credentials is not None and credentials.password == kafka_password  # type: ignore[attr-defined]
    shown = [repr(settings), str(settings), repr(security), str(security), repr(credentials)]
    assert all(kafka_password not in text for text in shown)
    assert "username=aop" in repr(credentials) and "Secret(***)" in repr(security)


def test_a_refused_database_login_does_not_echo_the_password(
    database_url: str, db_schema: str
) -> None:
    """The error an operator sees names the user and the server, never the password."""
    password = f"wrong{uuid.uuid4().hex}"
    prefix, _, rest = database_url.partition("://")
    url = f"{prefix}://aop:{password}@{rest.rpartition('@')[2]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AOP_")},
        "AOP_DATABASE_URL": url,
        "AOP_DATABASE_SCHEMA": db_schema,
        "AOP_LOG_LEVEL": "DEBUG",
    }
    for command in (["db", "upgrade"], ["api"], ["project"]):
        result = subprocess.run(
            [*AOP, *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode != 0, command
        assert "password authentication failed" in result.stderr, result.stderr[-1000:]
        assert password not in result.stderr + result.stdout, command
