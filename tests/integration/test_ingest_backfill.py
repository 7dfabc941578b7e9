"""`aop ingest --file`: the same validation and writer as the live ingest, beside it.

A file's lines land as the given source's; running it again counts duplicates; a bad line
refuses the whole file (by line number) with nothing written; beside a live ingest the
backfill refuses what is not well inside the live acceptance and never moves a partition's
watermark. Also `aop simulate-collectors` against a live ingest.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from solders.pubkey import Pubkey

from aop.log.kafka import ATTENTION_SIGNALS
from aop.runtime.settings import Settings, load_settings
from aop.simchain.keys import Keys
from tests.conftest import new_topic_prefix
from tests.live_pipeline import AOP
from tests.support.ingest import IngestProcess, read_batches, write_tokens

CHANNELS = ("fill:a", "fill:b")
LATENESS_S = 120  # wide: a backfill process may start many seconds late on a busy host
WALLET = "Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM"


def _env(kafka_bootstrap: str, workdir: Path) -> dict[str, str]:
    write_tokens(workdir / "tokens", ["live"])
    return {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_TOPIC_PREFIX": new_topic_prefix(),
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_ATTENTION_ALLOWED_LATENESS_S": str(LATENESS_S),
        "AOP_INGEST_WATERMARK_INTERVAL_S": "0.2",
        "AOP_INGEST_TOKENS_FILE": str(workdir / "tokens"),
        "AOP_INGEST_MAX_ITEMS": "3",
        "AOP_INGEST_RATE_BURST": "1000",
        "AOP_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """Settings of a topic prefix no ingest writes to."""
    return _env(kafka_bootstrap, tmp_path)


@pytest.fixture(scope="module")
def live(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[IngestProcess, dict[str, str]]]:
    """A live ingest (and its settings) shared by the tests that write beside one."""
    workdir = tmp_path_factory.mktemp("live")
    env = _env(kafka_bootstrap, workdir)
    service = IngestProcess(env, workdir / "ingest.log")
    service.start()
    try:
        yield service, env
    finally:
        assert service.stop() == 0, service.log()[-3000:]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _line(what: str = "signal", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": what,
        "id": f"f-{uuid.uuid4().hex[:10]}",
        "observed_at": _now_ms(),
    }
    if what == "signal":
        base |= {"channel": CHANNELS[0], "user": "Ann", "kind": "presence", "value": 1}
    else:
        base |= {"user": "Ann", "wallet": WALLET}
    return base | fields


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n\n" for line in lines))  # blank lines skipped
    return path


def _backfill(env: dict[str, str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AOP, "ingest", "--file", str(path), "--source", "backfiller"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


def test_a_file_lands_as_its_source_and_again_counts_duplicates(
    env: dict[str, str], tmp_path: Path
) -> None:
    lines = [_line(), _line(channel=CHANNELS[1], kind="bits", value=9), _line(), _line("binding")]
    path = _write(tmp_path / "signals.ndjson", lines)
    first = _backfill(env, path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith(
        "4 lines, 4 accepted, 0 duplicates, 2 transaction(s)\n"  # AOP_INGEST_MAX_ITEMS=3
    )
    again = _backfill(env, path)
    assert again.stdout.endswith("4 lines, 0 accepted, 4 duplicates, 2 transaction(s)\n")
    batches = read_batches(_settings(env))
    assert {b.value["source"] for b in batches} == {"backfiller"}
    assert all(b.value["watermark_ms"] == 0 for b in batches)  # none on the log: none moved
    signals = sorted(s["id"] for b in batches for s in b.value["signals"])
    assert signals == sorted(line["id"] for line in lines[:3])
    binding_partitions = sorted(b.partition for b in batches if b.value["bindings"])
    assert binding_partitions == [0, 1, 2, 3]


def test_a_bad_line_refuses_the_file_by_line_number(env: dict[str, str], tmp_path: Path) -> None:
    lines = [_line(), _line(kind="shout"), _line("binding", wallet="nope"), _line()]
    result = _backfill(env, _write(tmp_path / "bad.ndjson", lines))
    assert result.returncode == 2
    assert result.stderr.startswith("aop ingest: 2 line(s) refused (nothing was written): ")
    # lines 1, 3, 5, 7 (a blank line follows each)
    assert "line 3: bad_kind" in result.stderr and "line 5: bad_wallet" in result.stderr
    assert "line 7" not in result.stderr
    topics = AdminClient({"bootstrap.servers": env["AOP_KAFKA_BOOTSTRAP"]}).list_topics(timeout=10)
    assert _settings(env).topic(ATTENTION_SIGNALS) not in topics.topics  # nothing touched


def test_beside_a_live_ingest_it_keeps_inside_its_acceptance_and_moves_no_watermark(
    live: tuple[IngestProcess, dict[str, str]], tmp_path: Path
) -> None:
    _, env = live
    time.sleep(1)  # the live ingest has written watermarks
    now = _now_ms()
    inside = _line(observed_at=now - 5000)  # inside: the floor is its clock - 120 s + 10 s
    edge = _line(observed_at=now - LATENESS_S * 1000 + 2000)  # the live ingest takes it, not us
    late = _line(observed_at=now - (LATENESS_S + 10) * 1000)
    refused = _backfill(env, _write(tmp_path / "late.ndjson", [inside, edge, late]))
    assert refused.returncode == 2
    assert "line 3: late" in refused.stderr and "line 5: late" in refused.stderr
    assert "line 1" not in refused.stderr
    accepted = _backfill(env, _write(tmp_path / "ok.ndjson", [inside]))
    assert accepted.returncode == 0, accepted.stderr
    assert "1 accepted" in accepted.stdout
    batches = read_batches(_settings(env))
    backfilled = [b for b in batches if b.value["source"] == "backfiller"]
    assert {s["id"] for b in backfilled for s in b.value["signals"]} == {inside["id"]}
    for partition in range(4):
        mine = [b for b in batches if b.partition == partition]
        for at, batch in enumerate(mine):
            if batch.value["source"] == "backfiller":
                before = max(b.value["watermark_ms"] for b in mine[:at])
                assert 0 < batch.value["watermark_ms"] <= before


def test_simulated_collectors_bind_the_simulators_wallets_and_post_signals(
    live: tuple[IngestProcess, dict[str, str]], tmp_path: Path
) -> None:
    service, env = live
    token = tmp_path / "sim.token"
    minted = subprocess.run(
        [*AOP, "ingest", "token", "new", "--source", "simulated", "--output", str(token),
         "--tokens-file", env["AOP_INGEST_TOKENS_FILE"]],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    assert token.stat().st_mode & 0o777 == 0o600
    time.sleep(1.5)  # the ingest reloads its tokens file
    result = subprocess.run(
        [*AOP, "simulate-collectors", "--token-file", str(token), "--url", service.url,
         "--seed", "3", "--wallets", "5", "--rate", "60", "--batch", "3", "--duration", "1.5"],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bindings"] == 5 and report["refused"] == 0 and report["accepted"] > 5
    batches = [b for b in read_batches(_settings(env)) if b.value["source"] == "simulated"]
    keys = Keys(3)
    bound = {
        (g["user"], Pubkey(g["wallet"]))
        for b in batches
        if b.partition == 2
        for g in b.value["bindings"]
    }
    assert bound == {(f"sim-user-{i}", keys.wallet_key(i)) for i in range(5)}
    signals = [s for b in batches for s in b.value["signals"]]
    assert len(signals) == report["accepted"] - 5
    assert {s["user"] for s in signals} <= {f"sim-user-{i}" for i in range(5)}
    assert {s["channel"] for s in signals} <= set(CHANNELS)
