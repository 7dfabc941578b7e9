"""The pipeline over SASL_SSL, as operators deploy it on a secured cluster: every service and
`aop replay` run the demo-sized pipeline on a broker whose only client listener is SASL_SSL
(SCRAM-SHA-256, mutual TLS, a throwaway CA; `infra/local/kafka-secure.sh`), and a refused
login, an untrusted CA or a missing password file stops each of them at start with one line
naming the setting and, where a broker was asked, its reason."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from aop.cli.demo import DEMO_CHANNELS, DemoOptions
from aop.cli.services import SERVICES
from aop.log.kafka import SETTLEMENT, consumer_config
from aop.runtime.settings import load_settings
from tests.live_pipeline import AOP, fresh_schema, http_get, live_pipeline, pipeline_env
from tests.support.kafka_nodes import KafkaNodes

#: `aop demo`'s workload: 4 channels, 3,000 wallets, 400 events/s, 100 ms slots, 150-slot
#: epochs, seed 7, until every channel has 3 roots.
DEMO = DemoOptions()
SIM_ARGS = [
    *("--rate", str(DEMO.rate), "--wallets", str(DEMO.wallets)),
    *("--slot-ms", str(DEMO.slot_ms), "--seed", "7"),
]
ROOTS_TIMEOUT_S = 240.0


def _roots_per_channel(api: str) -> dict[str, int]:
    counts = {}
    for channel in DEMO_CHANNELS:
        reply = http_get(f"{api}/v1/channels/{channel}/roots", limit=100)
        ok = reply is not None and reply.status_code == 200
        counts[channel] = len(reply.json()["roots"]) if ok and reply is not None else 0
    return counts


def _settlement_records(settings_env: dict[str, str]) -> int:
    """Records on aop.settlement, read over SASL_SSL with the pipeline's consumer config."""
    settings = load_settings(settings_env)
    consumer = Consumer(
        consumer_config(settings, f"{settings.topic_prefix}check", **{"enable.partition.eof": True})
    )
    consumer.assign([TopicPartition(settings.topic(SETTLEMENT), 0, 0)])
    records, deadline = 0, time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                break  # end of the partition
            records += 1
    finally:
        consumer.close()
    return records


def test_every_service_and_replay_run_the_demo_sized_pipeline_over_sasl_ssl(
    secure_kafka: KafkaNodes, database_url: str, tmp_path: Path
) -> None:
    settings = {
        **secure_kafka.env(),
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_GENESIS_SLOT": "1000",
        "AOP_EPOCH_SLOTS": str(DEMO.epoch_slots),
    }
    assert settings["AOP_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    with (
        fresh_schema(database_url) as schema,
        live_pipeline(
            kafka_bootstrap=secure_kafka.bootstrap,
            database_url=database_url,
            schema=schema,
            workdir=tmp_path,
            channels=DEMO_CHANNELS,
            sim_args=SIM_ARGS,
            settings=settings,
        ) as pipeline,
    ):
        deadline = time.monotonic() + ROOTS_TIMEOUT_S
        while min((roots := _roots_per_channel(pipeline.api)).values()) < DEMO.roots:
            assert time.monotonic() < deadline, f"roots per channel after the budget: {roots}"
            time.sleep(1)
        restarts = {name: pipeline.supervisor.restarts(name) for name in SERVICES}
        replay = pipeline.aop("replay", "--all", "--no-chain", "--quiet", timeout=180)
        doctor = pipeline.aop("doctor")
        settled = _settlement_records(pipeline.env)
    assert restarts == dict.fromkeys(SERVICES, 0)  # no service failed on the secured broker
    assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-3000:]
    checked = re.search(r"^MATCH: (\d+) root\(s\) checked$", replay.stdout, re.MULTILINE)
    assert checked is not None, replay.stdout[-3000:]
    assert int(checked.group(1)) >= DEMO.roots * len(DEMO_CHANNELS)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "(SASL_SSL)" in doctor.stdout and doctor.stdout.rstrip().endswith("no findings")
    assert re.search(r"^\S*aop-fold\s+\S*aop\.chain\.events\s+4\s", doctor.stdout, re.M)
    assert settled >= len(DEMO_CHANNELS)  # settlement's producer wrote its dry runs


#: the commands that talk to Kafka at start (the API reads PostgreSQL only).
COMMANDS = {
    "listen": ["listen"],
    "fold": ["fold"],
    "project": ["project"],
    "settle": ["settle"],
    "replay": ["replay", "--all", "--no-chain", "--quiet"],
}


@pytest.fixture(scope="module")
def refused(
    secure_kafka: KafkaNodes, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], tuple[int, str, str]]:
    """Every command of COMMANDS with each bad setting, all started at once: (case, command)
    -> (exit code, stdout, stderr); ("passwords", "") holds the wrong password."""
    workdir = tmp_path_factory.mktemp("refused")
    wrong = workdir / "wrong.password"
    wrong.write_text(f"wrong-{uuid.uuid4().hex}\n")
    wrong.chmod(0o600)
    other_ca = workdir / "other-ca.crt"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=not the broker's CA", "-keyout", str(workdir / "other-ca.key")),
            *("-out", str(other_ca)),
        ],
        check=True,
        capture_output=True,
    )
    cases = {
        "wrong_password": {"AOP_KAFKA_SASL_PASSWORD_FILE": str(wrong)},
        "untrusted_ca": {"AOP_KAFKA_SSL_CA_FILE": str(other_ca)},
        "missing_password_file": {"AOP_KAFKA_SASL_PASSWORD_FILE": str(workdir / "gone")},
    }
    with fresh_schema(database_url) as schema:
        env, _ports = pipeline_env(
            kafka_bootstrap=secure_kafka.bootstrap,
            database_url=database_url,
            schema=schema,
            workdir=workdir,
            channels=DEMO_CHANNELS,
            settings={**secure_kafka.env(), "AOP_LOG_LEVEL": "INFO"},
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
        processes = {
            (case, name): subprocess.Popen(
                [*AOP, *args],
                env={**clean, **env, **bad},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for case, bad in cases.items()
            for name, args in COMMANDS.items()
        }
        out = {}
        for key, process in processes.items():
            stdout, stderr = process.communicate(timeout=120)
            out[key] = (process.returncode, stdout, stderr)
    out[("passwords", "")] = (0, wrong.read_text().strip(), "")
    return out


#: case -> (setting named, the broker's reason) in the one line a refused start prints.
EXPECTED = {
    "wrong_password": (
        "AOP_KAFKA_SASL_PASSWORD_FILE: the broker refused the login: ",
        "SASL authentication error: Authentication failed during authentication due to "
        "invalid credentials with SASL mechanism SCRAM-SHA-256",
    ),
    "untrusted_ca": (
        "AOP_KAFKA_SSL_CA_FILE=",
        "certificate verify failed",
    ),
    "missing_password_file": ("AOP_KAFKA_SASL_PASSWORD_FILE: file ", "/gone does not exist"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(EXPECTED))
def test_a_bad_credential_stops_each_command_at_start_with_one_line(
    refused: dict[tuple[str, str], tuple[int, str, str]],
    secure_kafka: KafkaNodes,
    case: str,
    command: str,
) -> None:
    """Exit code 2, and the last stderr line, the only one naming a Kafka setting, names the
    setting and quotes the broker's reason; no password, right or wrong, printed."""
    code, stdout, stderr = refused[(case, command)]
    setting, reason = EXPECTED[case]
    assert code == 2, stderr[-2000:]
    naming = [line for line in stderr.splitlines() if "AOP_KAFKA_" in line]
    assert len(naming) == 1, stderr[-2000:]
    assert naming[0] == stderr.splitlines()[-1]  # the last thing it printed
    assert naming[0].startswith(f"aop {COMMANDS[command][0]}: ")
    assert setting in naming[0] and reason in naming[0], naming[0]
    password = secure_kafka.password()
    wrong = refused[("passwords", "")][1]
    assert password not in stdout + stderr and wrong not in stdout + stderr
