"""`aop ingest` as a child process for tests, a tokens file, and the signals topic as a
read_committed reader sees it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition

from aop.api.ingest.tokens import mint_token
from aop.core.fold_config import FoldConfig
from aop.log.avro import AvroCodec
from aop.log.kafka import ATTENTION_SIGNALS
from aop.log.reader import log_bounds
from aop.runtime.settings import CCM_MINT, PROGRAM_ID, Settings
from tests.live_pipeline import AOP, free_ports

__all__ = ["Batch", "IngestProcess", "fold_partitions", "read_batches", "write_tokens"]


def fold_partitions(channels: tuple[str, ...], partitions: int) -> dict[str, int]:
    """Each channel's partition as the fold derives it (`core.fold_config`), under the
    default program id and mint: what the ingest's routing is checked against."""
    config = FoldConfig.create(
        program_id=PROGRAM_ID,
        mint=CCM_MINT,
        genesis_slot=0,
        epoch_slots=1,
        partitions=partitions,
        channels=channels,
        emission_for=lambda _: 1,
    )
    return {spec.name: spec.partition for spec in config.channels}


def write_tokens(path: Path, sources: list[str]) -> dict[str, str]:
    """A tokens file (mode 600) with one new token per source; source -> token."""
    minted = [mint_token(source) for source in sources]
    path.write_text("".join(m.line + "\n" for m in minted))
    path.chmod(0o600)
    return {m.source: m.token.reveal() for m in minted}


@dataclass(frozen=True)
class Batch:
    """A SignalBatch on the log, where it is and its key."""

    partition: int
    offset: int
    key: bytes | None
    value: dict[str, Any]


def read_batches(settings: Settings, timeout_s: float = 30.0) -> list[Batch]:
    """Every SignalBatch of aop.attention.signals a read_committed reader sees up to the
    partitions' last stable offsets at the call, partition by partition (the ingest may go on
    writing meanwhile)."""
    codec = AvroCodec()
    topic = settings.topic(ATTENTION_SIGNALS)
    stops = {
        p: b.stop for p, b in log_bounds(settings, topic, range(settings.chain_partitions)).items()
    }
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    out = []
    try:
        for partition, stop in stops.items():
            consumer.assign([TopicPartition(topic, partition, 0)])
            deadline = time.monotonic() + timeout_s
            while consumer.position([TopicPartition(topic, partition)])[0].offset < stop:
                assert time.monotonic() < deadline, f"reading {topic}[{partition}] to {stop}"
                message = consumer.poll(0.2)
                if message is None:
                    continue
                assert message.error() is None, message.error()
                offset = int(message.offset() or 0)
                if offset >= stop:
                    break
                value = codec.decode_as("SignalBatch", message.value() or b"")
                out.append(Batch(partition, offset, message.key(), value))
    finally:
        consumer.close()
    return out


class IngestProcess:
    """`aop ingest` with `env` on a free port; `start()` waits for /readyz."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_ports(1)[0]
        self.env = {**os.environ, **env, "AOP_INGEST_PORT": str(self.port)}
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start it and wait for /readyz; a port another process took meanwhile (the free
        port was picked earlier) is replaced by a fresh one, up to three times."""
        for _attempt in range(3):
            if self._start(timeout_s):
                return
            self.port = free_ports(1)[0]
            self.env["AOP_INGEST_PORT"] = str(self.port)
            self.url = f"http://127.0.0.1:{self.port}"
        raise AssertionError(f"aop ingest found no free port: {self.log()[-3000:]}")

    def _start(self, timeout_s: float) -> bool:
        """False when the port was taken; raises when it did not get ready otherwise."""
        with self._log_path.open("ab") as output:
            self.process = subprocess.Popen(
                [*AOP, "ingest"], env=self.env, stdout=output, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None and "address already in use" in self.log():
                return False
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"aop ingest did not get ready: {self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def wait_dead(self, timeout_s: float) -> int:
        """Wait for the process to exit on its own (a fault point); its exit code."""
        assert self.process is not None
        return self.process.wait(timeout_s)

    def stop(self) -> int:
        """SIGTERM; the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)
