"""The restore drill: the whole pipeline's log backed up under load, the cluster lost, the
log restored with the runbook's own steps, and the pipeline back to exactly-once.

1. Run the pipeline under load (`tests.faults.scenario`) on a broker and server of the
   test's own; take an export mid-run (`aop log export`, as the cron job runs it).
2. Keep the load on; take a second, incremental export; note a sample of wallets' proofs
   from the API.
3. Stop every service (the chain runs on), stop the broker, delete its data directory,
   start an empty broker.
4. Run the restore block of docs/runbook.md ("Restoring the log") as it is: `aop log
   import`, a new fold app id, the schema set aside and rebuilt with `aop rebuild`.
5. Start every service again; wait until caught up with the epoch the chain had finalized
   when the restore began (the restore time).

Asserted: every event the chain emitted is on the log exactly once, those of the outage
included (the event-id audit); every root in Postgres equals the replay of the log, and
`aop replay --all` and `aop parity` say MATCH; the API serves the same proofs as before for
the sampled wallets. The figures (restore time and its parts) go to RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aop.log.backup import Manifest, latest_manifest
from tests.conftest import ROOT
from tests.faults.assertions import assert_no_loss_and_roots_match
from tests.faults.cluster import LocalCluster, local_cluster
from tests.faults.figures import ScenarioFigures
from tests.faults.scenario import FAULT_RATE, FaultRun, fault_run
from tests.live_pipeline import AOP, http_get

pytestmark = pytest.mark.slow

RUNBOOK = ROOT / "docs" / "runbook.md"
STEPS_MARK = (
    "<!-- runbook: not-run (wipes the broker: tests/faults/test_restore_drill.py runs it as "
    "written) -->"
)
#: load before the first export, and between the exports and the loss.
LOAD_S = 10.0
WALLETS_PER_CHANNEL = 3
#: the fields of a claim answer that make the proof (the rest, e.g. `stale`, moves on).
PROOF_FIELDS = ("root_seq", "epoch", "leaf_index", "cumulative_total", "leaf", "root", "proof")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(f"restore-{uuid.uuid4().hex[:8]}") as running:
        yield running


def runbook_restore_steps() -> str:
    """The bash block right after the restore-steps mark of docs/runbook.md."""
    text = RUNBOOK.read_text()
    found = re.search(re.escape(STEPS_MARK) + r"\n```bash\n(.*?)\n```", text, re.S)
    assert found, f"{RUNBOOK} has no bash block after {STEPS_MARK!r}"
    return found.group(1)


def _aop(run: FaultRun, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    reply = subprocess.run(
        [*AOP, *args],
        env={**os.environ, **run.services.env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(f"$ aop {' '.join(args)}\n{reply.stdout}{reply.stderr}")
    return reply


def _export(run: FaultRun, directory: Path, metrics: Path) -> str:
    """`aop log export` as the cron job runs it; its output."""
    reply = _aop(run, "log", "export", str(directory), "--metrics-file", str(metrics))
    assert reply.returncode == 0, reply.stderr
    return reply.stdout


def _manifest(directory: Path, seq: int) -> Manifest:
    path = directory / "manifests" / f"{seq:08d}.json"
    return Manifest.from_json(path.read_bytes(), source=str(path))


def _sample_proofs(run: FaultRun) -> dict[str, dict[str, Any]]:
    """url -> proof fields, for a few wallets of each channel's newest root."""
    api = f"http://127.0.0.1:{run.ports['api']}"
    sample: dict[str, dict[str, Any]] = {}
    for channel in run.probe.channels:
        roots = http_get(f"{api}/v1/channels/{channel}/roots", limit=1)
        assert roots is not None and roots.status_code == 200, channel
        seq = int(roots.json()["roots"][0]["root_seq"])
        dataset = http_get(f"{api}/v1/roots/{channel}/{seq}/dataset")
        assert dataset is not None and dataset.status_code == 200, (channel, seq)
        wallets = [w["wallet"] for w in _dataset_entries(dataset.text)][:WALLETS_PER_CHANNEL]
        for wallet in wallets:
            url = f"{api}/v1/channels/{channel}/roots/{seq}/claims/{wallet}"
            reply = http_get(url)
            assert reply is not None and reply.status_code == 200, url
            sample[url] = {k: reply.json()[k] for k in PROOF_FIELDS}
    return sample


def _dataset_entries(text: str) -> list[dict[str, Any]]:
    """The dataset's JSON array of {"index", "wallet", "amount"}."""
    entries = json.loads(text)
    assert isinstance(entries, list) and entries, text[:300]
    return entries


def _write_env(path: Path, env: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(env.items())))


def _read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = shlex.split(value)[0] if value else ""
    return out


def test_restore_drill_loses_nothing_and_serves_the_same_proofs(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Steps 1-5 of the module docstring."""
    figures = ScenarioFigures(
        scenario="restore_drill",
        injected="two exports under load, then every service stopped, the broker's data "
        "directory deleted, an empty broker started, the runbook's restore steps",
        rate_target=FAULT_RATE,
    )
    backup, metrics = tmp_path / "backup", tmp_path / "aop_backup.prom"
    with fault_run(
        figures,
        kafka_bootstrap=cluster.kafka_bootstrap,
        database_url=cluster.database_url,
        workdir=tmp_path,
    ) as run:
        run.run_for(LOAD_S)  # step 1
        outputs = [_export(run, backup, metrics)]
        run.run_for(LOAD_S)  # step 2
        outputs.append(_export(run, backup, metrics))
        first, second = _manifest(backup, 1), _manifest(backup, 2)
        assert latest_manifest(backup) == (backup / "manifests" / "00000002.json", second)
        assert set(first.segments) < set(second.segments)
        ends = {(t.name, c.partition): c.end for t in first.topics for c in t.coverage}
        for topic in second.topics:
            for part in topic.coverage:
                new = [s for s in part.segments if s not in first.segments]
                assert all(s.start == ends[(topic.name, part.partition)] for s in new), part
        outputs.append(_aop(run, "log", "verify", str(backup)).stdout)
        figures.extra["export_output"] = "".join(outputs)
        figures.extra["exports"] = [
            {"seq": m.seq, "records": m.records, "files": len(m.segments)} for m in (first, second)
        ]
        proofs = _sample_proofs(run)
        run.run_for(LOAD_S / 2)

        run.services.stop_all()  # step 3: the chain runs on
        lost_at = time.monotonic()
        cluster.down("kafka")
        shutil.rmtree(cluster.directory / "kafka" / "data")
        cluster.up("kafka")
        figures.extra["empty_broker_s"] = round(time.monotonic() - lost_at, 1)

        mark = run.restart_mark()  # step 4
        env_file = tmp_path / "aop.env"
        _write_env(env_file, run.services.env)
        bindir = str(Path(sys.executable).parent)
        started = time.monotonic()
        steps = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", runbook_restore_steps()],
            env={
                **os.environ,
                "ENV": str(env_file),
                "BACKUP": str(backup),
                "PATH": f"{bindir}:{os.environ['PATH']}",
            },
            capture_output=True,
            text=True,
            timeout=900,
        )
        figures.extra["restore_steps_s"] = round(time.monotonic() - started, 1)
        print(steps.stdout, steps.stderr)
        assert steps.returncode == 0, steps.stdout + steps.stderr
        restored = _read_env(env_file)
        assert restored["AOP_FOLD_APP_ID"].startswith("aop-fold-restored-"), restored
        run.services.env.update(restored)

        run.services.start_all()  # step 5
        run.recovered("restore", mark)
        figures.extra["restore_output"] = steps.stdout

        after = {url: http_get(url) for url in proofs}
        served = {
            url: {k: r.json()[k] for k in PROOF_FIELDS}
            if r is not None and r.status_code == 200
            else None
            for url, r in after.items()
        }
        figures = run.quiesce_and_audit()
        replay = _aop(run, "replay", "--all", "--no-chain", "--quiet")
        parity = _aop(run, "parity", "--no-chain", "--quiet")
    assert_no_loss_and_roots_match(figures, min_roots=len(run.probe.channels) * 3)
    assert served == proofs
    assert replay.returncode == 0 and "MATCH:" in replay.stdout, replay.stdout + replay.stderr
    assert parity.returncode == 0 and "MATCH:" in parity.stdout, parity.stdout + parity.stderr
