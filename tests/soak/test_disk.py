"""The day run's disk, counter and latency arithmetic (fast; runs in the default suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak.disk import DiskSample, growth_per_million, kafka_topic_bytes, tree_bytes
from tests.soak.figures import counter_increase
from tests.soak.proof_load import ProofLoad


def _file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_kafka_topic_bytes_sums_partitions_and_nodes_per_topic_without_the_prefix(
    tmp_path: Path,
) -> None:
    """Two nodes, a topic's partitions 0 and 1 on each, an internal topic and a checkpoint
    file: each topic's blocks summed, the prefix cut, the rest under `kafka other`."""
    nodes = [tmp_path / "n1", tmp_path / "n2"]
    for node in nodes:
        _file(node / "t1.aop.chain.events-0" / "0.log", 10_000)
        _file(node / "t1.aop.chain.events-1" / "0.log", 10_000)
        _file(node / "__transaction_state-7" / "0.log", 5_000)
        _file(node / "recovery-point-offset-checkpoint", 100)
    sizes = kafka_topic_bytes(nodes, "t1.")
    one = tree_bytes([nodes[0] / "t1.aop.chain.events-0"])
    assert one >= 10_000
    assert set(sizes) == {"kafka aop.chain.events", "kafka __transaction_state", "kafka other"}
    assert sizes["kafka aop.chain.events"] == 4 * one
    assert sum(sizes.values()) == tree_bytes(nodes)


def test_growth_per_million_scales_to_a_million_events() -> None:
    """+3 MB over 1.5M events is 2 MB per million; a component new at the end grew from 0."""
    first = DiskSample(0.0, 500_000, {"pg leaves": 1_000_000})
    last = DiskSample(60.0, 2_000_000, {"pg leaves": 4_000_000, "audit files": 300})
    assert growth_per_million(first, last) == {"pg leaves": 2_000_000, "audit files": 200}
    with pytest.raises(ValueError, match="no events between the samples"):
        growth_per_million(last, last)


def test_increase_counts_across_a_restart_of_the_counting_process() -> None:
    """10 -> 30, restart (counts again from 0) -> 5 -> 25: it rose by 20 + 5 + 20 = 45."""
    assert counter_increase([10.0, 30.0, 5.0, 25.0]) == 45.0
    assert counter_increase([7.0]) == 0.0


def test_p99_of_a_hundred_latencies_is_the_99th_by_inclusive_interpolation() -> None:
    """Latencies 1..100 ms: the inclusive 99th percentile is 1 + 0.99 x 99 = 99.01 ms."""
    load = ProofLoad("http://127.0.0.1:9", ["c"], rate=1.0)
    load.latencies_s = [ms / 1000 for ms in range(1, 101)]
    assert load.p99_ms() == pytest.approx(99.01)
    load.latencies_s = [0.5]
    assert load.p99_ms() != load.p99_ms()  # NaN with a single request
