"""The attention fold over the bucketed changelog store: the reference's roots after any crash,
with the stake-time fold's chunks sharing the same changelog partitions."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from aop.core.attention.fold import AttentionFold
from aop.core.fold import PartitionFold, ReferenceFold
from aop.core.fold_config import FoldConfig
from aop.streams.fold.attention_state import AttentionChunkStore
from aop.streams.fold.table_state import KeyChunk, TableState
from tests.support.fold_logs import random_log
from tests.support.signal_logs import attention_config_for, random_signals

Log = dict[str, dict[int, list[dict[str, Any]]]]


def _config() -> FoldConfig:
    return attention_config_for(
        ["alpha", "beta", "gamma", "delta", "epsilon"],
        partitions=3,
        epoch_slots=50,
        formats={"beta": "ring-v0-legacy"},
    )


def _logs(config: FoldConfig, seed: int) -> Log:
    logs: Log = {"chain": defaultdict(list), "signals": defaultdict(list)}
    for p, batch in random_log(config, seed=seed, batches=20, events_per_batch=4):
        logs["chain"][p].append(batch)
    for p, batch in random_signals(config, seed=seed, batches=200, users=40):
        logs["signals"][p].append(batch)
    return logs


def _reference(config: FoldConfig, logs: Log) -> dict[str, set[str]]:
    fold = ReferenceFold(config)
    out: dict[str, set[str]] = {"chain": set(), "signals": set()}
    for topic, feed in (("chain", fold.feed), ("signals", fold.feed_signals)):
        for partition, batches in logs[topic].items():
            for offset, batch in enumerate(batches):
                out[topic] |= _outputs(feed(partition, offset, batch))
    return out


def _outputs(result: Any) -> set[str]:
    out = {repr((r.record_type, r.epoch_root, r.chunks)) for r in result.roots}
    for marker in (result.closed, result.attention_closed):
        if marker is not None:
            out.add(repr(marker.record))
    return out


class Harness:
    """`streams.fold.app`'s protocol over a dict table whose per-partition changelog a crash
    cuts to any durable prefix; chunks of both topics interleave on one changelog."""

    def __init__(self, config: FoldConfig, logs: Log, rng: random.Random, entries: int) -> None:
        self.config, self.logs, self.rng, self.entries = config, logs, rng, entries
        self.changelog: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        self.durable: dict[int, int] = defaultdict(int)
        self.committed: dict[tuple[str, int], int] = defaultdict(int)
        self.emitted: dict[str, set[str]] = {"chain": set(), "signals": set()}
        self._restart()

    def _restart(self) -> None:
        table: dict[bytes, bytes] = {}
        for partition in sorted(self.changelog):
            for key, data in self.changelog[partition]:
                table[key] = data
        self.state = TableState(table, self.entries)
        self.position = dict(self.committed)

    def chunk(self, topic: str, partition: int) -> None:
        start = self.position.get((topic, partition), 0)
        records = self.logs[topic][partition][start : start + self.rng.randint(1, 5)]
        store: KeyChunk
        if topic == "chain":
            store = self.state.chunk(partition)
            fold: Any = PartitionFold(self.config, partition)
        else:
            assert self.config.attention is not None
            store = AttentionChunkStore(self.state, partition)
            fold = AttentionFold(self.config.attention, partition)
        for i, batch in enumerate(records):
            self.emitted[topic] |= _outputs(fold.apply(store, start + i, batch))
        for write in store.writes(start + len(records) - 1):
            self.changelog[partition].append((write.key, write.data))
            self.state.table[write.key] = write.data
            self.state.remember(write)
        self.position[(topic, partition)] = start + len(records)

    def run(self, crashes: int) -> None:
        def pending() -> list[tuple[str, int]]:
            return [
                (t, p)
                for t, by_p in self.logs.items()
                for p, log in by_p.items()
                if self.position.get((t, p), 0) < len(log)
            ]

        while todo := pending():
            self.chunk(*self.rng.choice(todo))
            roll = self.rng.random()
            if roll < 0.3:
                for partition, records in self.changelog.items():
                    self.durable[partition] = len(records)
                self.committed.update(self.position)
            elif roll < 0.4 and crashes > 0:
                crashes -= 1
                for partition, records in self.changelog.items():
                    keep = self.rng.randint(self.durable[partition], len(records))
                    del records[keep:]
                self._restart()


#: tiny buckets (1-2 entries) split all the time: the case that caught a moved entry shared
#: with its old bucket's undo (a double count after a crash).
CASES = [(seed, entries, 10 * entries + 10) for seed in range(1, 7) for entries in (1, 2)]
FAST = {(1, 1), (3, 2), (7, 1), (8, 2)}


@pytest.mark.parametrize(
    ("seed", "entries", "crashes"),
    [
        (9, 4, 0),
        *(
            case if case[:2] in FAST else pytest.param(*case, marks=pytest.mark.slow)
            for case in [*CASES, (7, 1, 20), (8, 2, 30)]
        ),
    ],
)
def test_the_changelog_store_survives_crashes_with_the_reference_outputs(
    seed: int, entries: int, crashes: int
) -> None:
    """Random chunk sizes, commits and crashes on both topics, tiny buckets: every root and
    marker of either fold is the reference's, and every one of the reference's is emitted."""
    config = _config()
    logs = _logs(config, seed)
    expected = _reference(config, logs)
    assert any("AttentionRoot" in line for line in expected["signals"])
    assert any("ring-v0-legacy" in line for line in expected["signals"])
    harness = Harness(config, logs, random.Random(seed * 7 + entries), entries)
    harness.run(crashes)
    assert harness.emitted == expected
