"""`aop log export` onto a full disk: it fails loudly and the previous export stays valid.

The export directory is a small tmpfs (in a private mount namespace, `unshare -rm`, so
nothing is mounted on the host) holding a first export; a filler file leaves ~256 KiB free
and the second export needs several MiB. Run in the namespace, one after another: the
failing export, `aop log verify`, then (filler removed) the export again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aop.log.backup import export_log, latest_manifest
from aop.log.kafka import CHAIN_EVENTS
from aop.runtime.settings import Settings
from tests.support.kafka_log import PipelineLikeWriter

SCRIPT = r"""
set -u
mount -t tmpfs -o size=$(( $(du -sk "$FIRST" | cut -f1) + 16384 ))k tmpfs "$DIR"
cp -a "$FIRST/." "$DIR/"
head -c $(( $(df -k --output=avail "$DIR" | tail -1) * 1024 - 262144 )) /dev/zero > "$DIR/filler"
step() { name=$1; shift; "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.rc"; }
step full $AOP log export "$DIR" --quiet --metrics-file "$OUT/full.prom"
find "$DIR" -type f ! -name filler ! -name .lock | sort > "$OUT/files_after_full"
step verify $AOP log verify "$DIR"
rm "$DIR/filler"
step freed $AOP log export "$DIR" --quiet --metrics-file "$OUT/freed.prom"
rm -rf "$OUT/final" && cp -a "$DIR" "$OUT/final"
"""


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_work(), reason="no private mount namespace (unshare -rm)")
def test_export_on_a_full_disk_fails_loudly_and_keeps_the_previous_manifest(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """ENOSPC mid-export: exit 2 naming the file and the cause; manifest 1 stays the newest,
    only its files are left and they verify; with space again the next export completes."""
    settings = settings_factory()
    writer = PipelineLikeWriter(settings)
    for _ in range(3):
        writer.listener_range(dead=1)
    first = tmp_path / "first"
    assert export_log(settings, first).written
    for _ in range(40):  # ~6.4 MiB of incompressible values
        writer.listener_range(size=40_000)
    writer.close()
    out, mountpoint = tmp_path / "out", tmp_path / "mnt"
    out.mkdir()
    mountpoint.mkdir()
    env = {
        **os.environ,
        **{k: str(v) for k, v in _settings_env(settings).items()},
        "FIRST": str(first),
        "DIR": str(mountpoint),
        "OUT": str(out),
        "AOP": f"{sys.executable} -m aop.cli",
    }
    subprocess.run(["unshare", "-rm", "bash", "-c", SCRIPT], env=env, check=True, timeout=300)

    def read(name: str) -> str:
        return (out / name).read_text()

    assert read("full.rc").strip() == "2", read("full.err")
    error = read("full.err")
    assert "No space left on device" in error and f"{mountpoint}/topics/" in error, error
    assert "the previous manifest stays the newest" in error
    left = [
        Path(line).relative_to(mountpoint).as_posix() for line in read("files_after_full").split()
    ]
    manifest_1 = latest_manifest(first)
    assert manifest_1 is not None
    assert sorted(left) == sorted(
        ["manifests/00000001.json", *(s.path for s in manifest_1[1].segments)]
    )
    assert read("verify.rc").strip() == "0", read("verify.err")
    assert "every sha256 matches" in read("verify.out")
    full_metrics = _gauges(read("full.prom"))
    assert full_metrics["aop_backup_last_run_success"] == 0.0
    assert full_metrics["aop_backup_manifest_seq"] == 1.0

    assert read("freed.rc").strip() == "0", read("freed.err")
    final = latest_manifest(out / "final")
    assert final is not None and final[1].seq == 2
    committed = sum(len(v) for parts in writer.ledger.values() for v in parts.values())
    assert final[1].records == committed
    chain = final[1].topic(CHAIN_EVENTS)
    assert chain is not None and sum(c.records for c in chain.coverage) == sum(
        len(v) for v in writer.ledger[CHAIN_EVENTS].values()
    )
    assert _gauges(read("freed.prom"))["aop_backup_last_run_success"] == 1.0


def _gauges(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def _settings_env(settings: Settings) -> dict[str, object]:
    return {
        "AOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AOP_TOPIC_PREFIX": settings.topic_prefix,
        "AOP_CHAIN_PARTITIONS": settings.chain_partitions,
        "AOP_LOG_LEVEL": "WARNING",
    }
