"""`aop parity` on the real broker and database: the newest roots of every channel, Prometheus
text metrics for node_exporter, a JSON report, exit 1 on a mismatch."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import Engine

from aop.core.fold import fold_log
from aop.runtime.settings import Settings
from aop.streams.fold.config import fold_config
from tests.integration import test_replay as base
from tests.support.fold_logs import random_log

AopRunner = base.AopRunner
execute = base.execute
produce_log = base.produce_log
project = base.project
# the fixtures of test_replay (pytest finds them in this module's namespace)
replay_env = base.replay_env
settings = base.settings
engine = base.engine
aop = base.aop


def metric_lines(path: Path) -> dict[str, float]:
    """name{labels} -> value of a Prometheus text file (comments left out)."""
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_parity_checks_the_newest_roots_and_exports_metrics_and_a_report(
    settings: Settings, engine: Engine, aop: AopRunner, tmp_path: Path
) -> None:
    """--roots 2: the two newest roots of each channel are replayed and match (exit 0); a leaf
    altered in beta's newest root makes it exit 1 with aop_parity_mismatches 1."""
    config = fold_config(settings)
    batches = random_log(config, seed=11, batches=20, events_per_batch=8, slots_per_batch=25)
    roots = fold_log(produce_log(settings, batches), config)
    project(settings, engine, roots)
    newest: dict[str, list[int]] = {}
    for root in roots:
        newest.setdefault(root.channel, []).append(root.root_seq)
    assert all(len(seqs) >= 3 for seqs in newest.values())
    metrics, report = tmp_path / "aop_parity.prom", tmp_path / "parity.json"

    started = time.time()
    code, out = aop(
        "parity",
        "--roots",
        "2",
        "--metrics-file",
        str(metrics),
        "--report",
        str(report),
        "--no-chain",
    )
    assert code == 0, out
    assert out.splitlines()[-1] == "MATCH: 6 root(s) checked"
    document = json.loads(report.read_text())
    assert document["kind"] == "aop.parity"
    assert document["roots_per_channel"] == 2
    assert document["status"] == "match"
    assert document["skipped"] == []
    assert {c["channel"]: [r["root_seq"] for r in c["roots"]] for c in document["channels"]} == {
        name: seqs[-2:] for name, seqs in newest.items()
    }
    values = metric_lines(metrics)
    last_run = values.pop("aop_parity_last_run_timestamp_seconds")
    assert started <= last_run <= time.time()
    assert values.pop("aop_parity_run_seconds") < 60
    assert values == {
        "aop_parity_roots_checked": 6.0,
        "aop_parity_mismatches": 0.0,
        'aop_parity_channel_mismatches{channel="alpha"}': 0.0,
        'aop_parity_channel_mismatches{channel="beta"}': 0.0,
        'aop_parity_channel_mismatches{channel="gamma"}': 0.0,
        "aop_parity_last_run_success": 1.0,
    }

    beta = max(r.root_seq for r in roots if r.channel == "beta")
    beta_key = next(r.key.decode() for r in roots if r.channel == "beta")
    execute(
        engine,
        "UPDATE leaves SET amount = amount - 1 WHERE leaf_index = 0 AND root_id = "
        "(SELECT root_id FROM roots WHERE channel_config = :c AND root_seq = :s)",
        c=beta_key,
        s=beta,
    )
    code, out = aop(
        "parity", "--metrics-file", str(metrics), "--report", str(report), "--no-chain", "--quiet"
    )
    assert code == 1
    assert out.splitlines()[-1] == "MISMATCH: 1 of 12 root(s) differ"
    values = metric_lines(metrics)
    assert values["aop_parity_mismatches"] == 1.0
    assert values['aop_parity_channel_mismatches{channel="beta"}'] == 1.0
    assert values["aop_parity_roots_checked"] == 12.0
    assert values["aop_parity_last_run_success"] == 0.0
    failed = [
        (c["channel"], r["root_seq"], r["leaves"]["counts"]["amount"])
        for c in json.loads(report.read_text())["channels"]
        for r in c["roots"]
        if r["failed"]
    ]
    assert failed == [("beta", beta, 1)]
