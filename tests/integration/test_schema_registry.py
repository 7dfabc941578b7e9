"""With `AOP_SCHEMA_REGISTRY_URL` set, every service writes the Confluent wire format through
the registry and every reader (fold, projector, API, `aop replay`) still gets the same roots.

The registry here is a small Confluent-compatible HTTP server in the test process (the two
calls the codec makes: register a subject's version, fetch a schema by id), so the test runs
where no Redpanda is; the broker and the database are the real ones.
"""

from __future__ import annotations

import json
import re
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from psycopg import sql

from aop.log.kafka import CHAIN_EVENTS, EPOCH_ROOTS, consumer_config
from aop.runtime.settings import load_settings
from tests.conftest import libpq_url
from tests.live_pipeline import fresh_schema, http_get, live_pipeline

CHANNELS = ("reg:alpha", "reg:beta")
SIM_ARGS = ["--rate", "60", "--wallets", "30", "--slot-ms", "40", "--finality-depth", "4"]
SIM_ARGS += ["--seed", "5"]
ROOT_TIMEOUT_S = 90.0


class Registry(ThreadingHTTPServer):
    """Subjects -> schema ids; one id per distinct schema text, as Confluent's registry does."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ids: dict[str, int] = {}
        self.subjects: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Registry

    def do_POST(self) -> None:
        subject = re.fullmatch(r"/subjects/([^/]+)/versions", self.path.split("?", 1)[0])
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if subject is None:
            self._reply(404, {"error_code": 404})
            return
        with self.server.lock:
            schema_id = self.server.ids.setdefault(body["schema"], len(self.server.ids) + 1)
            self.server.subjects[subject.group(1)] = schema_id
        self._reply(200, {"id": schema_id})

    def do_GET(self) -> None:
        found = re.fullmatch(r"/schemas/ids/(\d+)", self.path.split("?", 1)[0])
        with self.server.lock:
            texts = {i: text for text, i in self.server.ids.items()}
        if found is None or int(found.group(1)) not in texts:
            self._reply(404, {"error_code": 40403})
            return
        self._reply(200, {"schema": texts[int(found.group(1))]})

    def _reply(self, status: int, value: object) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def registry() -> Iterator[Registry]:
    server = Registry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _topic_values(env: dict[str, str], topic_name: str) -> list[bytes]:
    """Every record value of the topic (to each partition's end; transaction markers take
    offsets too, so the end is found by the consumer's end-of-partition events)."""
    settings = load_settings(env)
    topic = settings.topic(topic_name)
    config = consumer_config(settings, f"{settings.topic_prefix}registry-check")
    reader = Consumer({**config, "enable.partition.eof": True})
    try:
        partitions = set(reader.list_topics(topic, timeout=10).topics[topic].partitions)
        reader.assign([TopicPartition(topic, p, 0) for p in partitions])
        values: list[bytes] = []
        at_end: set[int] = set()
        while at_end != partitions:
            batch = reader.consume(500, timeout=5)
            assert batch, f"{topic}: no end of partitions {partitions - at_end} in sight"
            for message in batch:
                error = message.error()
                if error is None:
                    values.append(message.value())
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                else:
                    raise AssertionError(f"{topic}: {error}")
        return values
    finally:
        reader.close()


def _wait_for_roots(api: str) -> dict[str, int]:
    """Newest root_seq per channel once every channel has one."""
    deadline = time.monotonic() + ROOT_TIMEOUT_S
    while time.monotonic() < deadline:
        newest = {}
        for channel in CHANNELS:
            reply = http_get(f"{api}/v1/channels/{channel}/roots", limit=1)
            if reply is not None and reply.status_code == 200 and reply.json()["roots"]:
                newest[channel] = int(reply.json()["roots"][0]["root_seq"])
        if len(newest) == len(CHANNELS):
            return newest
        time.sleep(0.5)
    pytest.fail(f"not every channel had a root within {ROOT_TIMEOUT_S:.0f} s")


def test_the_pipeline_runs_on_confluent_framing_through_the_registry(
    registry: Registry, kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    with fresh_schema(database_url) as schema:
        with live_pipeline(
            kafka_bootstrap=kafka_bootstrap,
            database_url=database_url,
            schema=schema,
            workdir=tmp_path,
            channels=CHANNELS,
            sim_args=SIM_ARGS,
            settings={"AOP_SCHEMA_REGISTRY_URL": registry.url},
        ) as live:
            newest = _wait_for_roots(live.api)
            channel = CHANNELS[0]
            dataset = http_get(f"{live.api}/v1/roots/{channel}/{newest[channel]}/dataset")
            assert dataset is not None and dataset.status_code == 200
        # the services are stopped: the log and the database hold what they wrote
        prefix = live.env["AOP_TOPIC_PREFIX"]
        assert {
            f"{prefix}{CHAIN_EVENTS}-aop.v1.SlotBatch",
            f"{prefix}{EPOCH_ROOTS}-aop.v1.EpochRoot",
            f"{prefix}{EPOCH_ROOTS}-aop.v1.LeafChunk",
        } <= set(registry.subjects)
        registered = set(registry.ids.values())
        for topic in (CHAIN_EVENTS, EPOCH_ROOTS):
            values = _topic_values(live.env, topic)
            assert values, topic
            framings = {(v[0], struct.unpack(">I", v[1:5])[0] in registered) for v in values}
            assert framings == {(0, True)}, f"{topic}: every record in Confluent framing"
        replay = live.aop("replay", "--channel", channel, "--all", "--no-chain", "--quiet")
        assert replay.returncode == 0, replay.stdout + replay.stderr
        with psycopg.connect(libpq_url(database_url)) as conn:
            stored = conn.execute(
                sql.SQL("SELECT count(*) FROM {}.roots WHERE channel = %s").format(
                    sql.Identifier(schema)
                ),
                (channel,),
            ).fetchone()
        assert stored is not None and stored[0] >= 1
        assert replay.stdout.strip().splitlines()[-1] == f"MATCH: {stored[0]} root(s) checked"
