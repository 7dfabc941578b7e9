"""Properties of the fold: order and duplicates inside a slot never matter, splits are exact,
totals only grow, and the bucketed changelog store survives any crash with the same roots."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aop.core.fold import PartitionFold, fold_log
from aop.core.fold_output import RootOutput
from aop.streams.fold.table_state import TableState
from tests.unit.streams.fold.strategies import Scenario, scenarios

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shuffle_within_slots(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    by_slot: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_slot[event["slot"]].append(event)
    out = []
    for slot in sorted(by_slot):
        group = by_slot[slot]
        rng.shuffle(group)
        out.extend(group)
    return out


def _without_input(roots: list[RootOutput]) -> list[tuple[Any, ...]]:
    return [
        (r.partition, r.key, {k: v for k, v in r.epoch_root.items() if k != "input"}, r.chunks)
        for r in roots
    ]


@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_permuting_events_inside_a_slot_changes_nothing(
    scenario: Scenario, rng: random.Random
) -> None:
    expected = fold_log(scenario.records(), scenario.config)
    shuffled = Scenario(
        scenario.config,
        {
            p: [(f, last, _shuffle_within_slots(list(evs), rng)) for f, last, evs in batches]
            for p, batches in scenario.batches.items()
        },
    )
    assert fold_log(shuffled.records(), scenario.config) == expected


@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_duplicated_events_and_records_count_once(scenario: Scenario, rng: random.Random) -> None:
    """Repeats of an event inside its batch, and whole batches appended twice, change no root
    (only the offsets in `input` move when records are repeated)."""
    expected = fold_log(scenario.records(), scenario.config)
    doubled = Scenario(
        scenario.config,
        {
            p: [
                (f, last, _shuffle_within_slots([e for e in evs for _ in (0, 1)], rng))
                for f, last, evs in batches
            ]
            for p, batches in scenario.batches.items()
        },
    )
    assert fold_log(doubled.records(), scenario.config) == expected
    records = scenario.records()
    repeated = []
    for record in records:
        repeated.append(record)
        if rng.random() < 0.3:
            repeated.append(record)
    offsets: dict[int, int] = defaultdict(int)
    renumbered = []
    for partition, _, batch in repeated:
        renumbered.append((partition, offsets[partition], batch))
        offsets[partition] += 1
    assert _without_input(fold_log(renumbered, scenario.config)) == _without_input(expected)


@SETTINGS
@given(scenarios())
def test_allocations_sum_to_the_emission_and_totals_never_decrease(scenario: Scenario) -> None:
    previous: dict[str, dict[bytes, int]] = {}
    seqs: dict[str, list[int]] = defaultdict(list)
    for root in fold_log(scenario.records(), scenario.config):
        record = root.epoch_root
        amounts = dict(zip(root.tree.wallets, root.tree.amounts, strict=True))
        before = previous.get(root.channel, {})
        if record["format"] == "ring-v0":
            assert int(record["total"]) == int(record["emission"])
        else:
            assert sum(amounts.values()) - sum(before.values()) == int(record["emission"])
            assert all(amounts.get(w, 0) >= t for w, t in before.items())
            previous[root.channel] = amounts
        seqs[root.channel].append(root.root_seq)
    for channel_seqs in seqs.values():
        assert channel_seqs == list(range(1, len(channel_seqs) + 1))


class ChangelogHarness:
    """Runs the fold the way `streams.fold.app` does, over a dict 'table' whose changelog
    (one list per partition, written in order) a crash cuts to any durable prefix."""

    def __init__(self, scenario: Scenario, bucket_entries: int, rng: random.Random) -> None:
        self.scenario = scenario
        self.bucket_entries = bucket_entries
        self.rng = rng
        self.changelog: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        self.committed: dict[int, int] = defaultdict(int)  # next offset to read
        self.durable: dict[int, int] = defaultdict(int)  # changelog length known durable
        self.emitted: list[RootOutput] = []
        self._restart()

    def _restart(self) -> None:
        table: dict[bytes, bytes] = {}
        for partition in sorted(self.changelog):
            for key, data in self.changelog[partition]:
                table[key] = data
        self.state = TableState(table, self.bucket_entries)
        self.folds = {p: PartitionFold(self.scenario.config, p) for p in self.scenario.batches}
        self.position = dict(self.committed)

    def crash(self) -> None:
        """Lose an arbitrary suffix of each partition's changelog past its durable part."""
        for partition, records in self.changelog.items():
            keep = self.rng.randint(self.durable[partition], len(records))
            del records[keep:]
        self._restart()

    def commit(self) -> None:
        for partition, records in self.changelog.items():
            self.durable[partition] = len(records)
        self.committed.update(self.position)

    def chunk(self, partition: int, records: list[dict[str, Any]], first_offset: int) -> None:
        store = self.state.chunk(partition)
        fold = self.folds[partition]
        for i, batch in enumerate(records):
            self.emitted.extend(fold.apply(store, first_offset + i, batch).roots)
        for write in store.writes(first_offset + len(records) - 1):
            self.changelog[partition].append((write.key, write.data))
            self.state.table[write.key] = write.data
            self.state.remember(write)
        self.position[partition] = first_offset + len(records)

    def run(self, crashes: int) -> None:
        logs = {
            p: [r for q, _, r in self.scenario.records() if q == p] for p in self.scenario.batches
        }
        while any(self.position.get(p, 0) < len(log) for p, log in logs.items()):
            pending = [p for p, log in logs.items() if self.position.get(p, 0) < len(log)]
            partition = self.rng.choice(pending)
            start = self.position.get(partition, 0)
            size = self.rng.randint(1, 4)
            self.chunk(partition, logs[partition][start : start + size], start)
            roll = self.rng.random()
            if roll < 0.3:
                self.commit()
            elif roll < 0.5 and crashes > 0:
                crashes -= 1
                self.crash()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(1, 4), st.integers(0, 4), st.randoms(use_true_random=False))
def test_bucketed_store_survives_any_crash_with_the_reference_roots(
    scenario: Scenario, bucket_entries: int, crashes: int, rng: random.Random
) -> None:
    """Chunks of random size, commits and crashes at random points (any durable changelog
    prefix survives), tiny buckets that split often: every root emitted equals the
    reference's root of the same (channel, root_seq), and every reference root is emitted."""
    expected = {(r.key, r.root_seq): r for r in fold_log(scenario.records(), scenario.config)}
    harness = ChangelogHarness(scenario, bucket_entries, rng)
    harness.run(crashes)
    emitted = {(r.key, r.root_seq) for r in harness.emitted}
    assert emitted == set(expected)
    for root in harness.emitted:
        assert root == expected[(root.key, root.root_seq)]
