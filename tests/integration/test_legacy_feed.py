"""`tests.support.legacy_feed` on the real broker: the independent legacy aggregator fed from
aop.attention.signals in pieces, one aggregator per partition sealing at that partition's
watermark, gives the roots the same aggregator gives when fed the collectors' POSTs and
sealed at each epoch's close (`tests.support.legacy_scenario.legacy_roots`), the day run's
legacy table thus equal to what the legacy would have sealed."""

from __future__ import annotations

from aop.log.kafka import ensure_topics
from aop.runtime.settings import load_settings
from tests.conftest import new_topic_prefix
from tests.integration.fold.support import produce_log
from tests.support.ingest import fold_partitions
from tests.support.legacy_feed import LegacySignalFeed
from tests.support.legacy_scenario import legacy_roots, legacy_scenario, signal_batches

CHANNELS = ("lofigirl", "ansem", "mixed")
LEGACY = frozenset({"ansem", "lofigirl"})
FIRST = 1_794_960_000
PARTITIONS = 2


def test_the_feed_seals_what_the_legacy_seals_whatever_the_pieces(kafka_bootstrap: str) -> None:
    settings = load_settings(
        {
            "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "AOP_TOPIC_PREFIX": new_topic_prefix(),
            "AOP_CHAIN_PARTITIONS": str(PARTITIONS),
            "AOP_CHANNELS": ",".join(CHANNELS),
            "AOP_ATTENTION_EPOCH_SECONDS": "3600",
        }
    )
    ensure_topics(settings)
    partition_of = fold_partitions(CHANNELS, PARTITIONS)
    assert set(partition_of.values()) == {0, 1}  # both partitions carry signals
    steps = legacy_scenario(list(CHANNELS), seed=7, first_epoch=FIRST)
    expected = {k: r for k, r in legacy_roots(steps).items() if k[0] in LEGACY}
    assert sorted(expected) == [(c, FIRST + e * 3600) for c in sorted(LEGACY) for e in range(3)]
    batches = signal_batches(steps, partition_of, PARTITIONS)
    feed = LegacySignalFeed(settings, LEGACY)
    assert feed.catch_up() == {}  # an empty topic
    half = len(batches) // 2
    produce_log(settings, batches[:half], record_type="SignalBatch")
    first = feed.catch_up()
    produce_log(settings, batches[half:], record_type="SignalBatch")
    second = feed.catch_up()
    assert first and second and not set(first) & set(second)
    assert {**first, **second} == expected
    assert feed.catch_up() == {}
    assert feed.records == len(batches)
    assert feed.sealed_epochs == {FIRST, FIRST + 3600, FIRST + 7200}
