"""Manifests: a round trip keeps everything, any change to the file is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aop.log.backup.errors import ForeignManifestError, ManifestError
from aop.log.backup.manifest import (
    Deployment,
    Manifest,
    PartitionCoverage,
    Segment,
    TopicCoverage,
    latest_manifest,
    log_schemas,
    write_manifest,
)

DEPLOYMENT = Deployment("Prog1111", "Mint1111", "p.", 2)


def manifest_factory(seq: int = 1) -> Manifest:
    segment = Segment("topics/aop.dlq/0/a.avro", 0, 10, 4, 1234, "ab" * 32)
    topic = TopicCoverage(
        "aop.dlq", 1, {"retention.ms": "-1"}, True, (PartitionCoverage(0, 0, 10, 4, (segment,)),)
    )
    return Manifest(
        seq, "2026-01-01T00:00:00.000+00:00", "0.1.0", DEPLOYMENT, (topic,), log_schemas()
    )


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    """Written and read back, the manifest is equal, found as the newest, with its schemas."""
    write_manifest(tmp_path, manifest_factory(1))
    path = write_manifest(tmp_path, manifest_factory(2))
    found = latest_manifest(tmp_path)
    assert found == (path, manifest_factory(2))
    assert path.name == "00000002.json"
    assert set(found[1].schemas["log"]) >= {"SlotBatch", "EpochRoot", "DeadLetter"}
    assert found[1].schemas["container_record"]["name"] == "LogRecord"


def test_a_changed_value_makes_the_manifest_corrupt(tmp_path: Path) -> None:
    """One record count edited: the manifest's own sha256 no longer matches; refused."""
    path = write_manifest(tmp_path, manifest_factory(1))
    body = json.loads(path.read_text())
    body["topics"][0]["coverage"][0]["records"] = 5
    path.write_text(json.dumps(body))
    with pytest.raises(ManifestError, match=f"{path} is corrupt: its sha256 field"):
        latest_manifest(tmp_path)


def test_another_deployment_is_refused_naming_both_values() -> None:
    other = Deployment("Prog1111", "Mint2222", "q.", 2)
    with pytest.raises(
        ForeignManifestError, match="its mint is 'Mint1111', this pipeline's is 'Mint2222'"
    ):
        DEPLOYMENT.refuse_other(other, source="m.json", same_prefix=False)
    with pytest.raises(ForeignManifestError, match=r"its topic_prefix is 'p\.'"):
        DEPLOYMENT.refuse_other(
            Deployment("Prog1111", "Mint1111", "q.", 2), source="m.json", same_prefix=True
        )
    DEPLOYMENT.refuse_other(
        Deployment("Prog1111", "Mint1111", "q.", 2), source="m", same_prefix=False
    )


def test_not_json_or_another_format_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"x\.json is not JSON"):
        Manifest.from_json(b"{", source="x.json")
    with pytest.raises(ManifestError, match="format must be 'aop-log-export/1' \\(got 'v0'\\)"):
        Manifest.from_json(b'{"format": "v0"}', source="x.json")
