"""core.combine: global roots from channel roots, checked against a second, simple statement of
the rule (a wallet's global total = the sum over channels of its total in the channel's latest
root of an epoch <= e) and the independent tree builder; interleavings, duplicates, restarts,
guards."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from solders.pubkey import Pubkey

from aop.core.combine import (
    CombineConfig,
    CombinerState,
    GlobalCombiner,
    GlobalOutput,
    GlobalRefusal,
)
from aop.core.pda import global_root_config_address
from tests.unit.core import independent
from tests.unit.core.vectors import CCM_MINT, MINT_HEX, PROGRAM_ID

PROGRAM = Pubkey.from_string(PROGRAM_ID)
MINT = Pubkey.from_string(CCM_MINT)
MINT_BYTES = bytes.fromhex(MINT_HEX)
W = [bytes([i]) * 32 for i in range(1, 9)]


@dataclass(frozen=True)
class Rec:
    """One record of aop.epoch.roots as the combiner gets it."""

    partition: int
    offset: int
    kind: str  # "root" or "closed"
    record: dict[str, Any]
    dataset: bytes = b""


def channel_root(
    channel: str,
    epoch: int,
    root_seq: int,
    totals: dict[bytes, int],
    emission: int,
    fmt: str = "cumulative-v2",
    declared: int | None = None,
) -> tuple[dict[str, Any], bytes]:
    account = f"cfg-{channel}"
    if fmt == "cumulative-v2":
        dataset = b"".join(struct.pack("<32sQ", w, t) for w, t in sorted(totals.items()) if t)
    else:
        dataset = b"".join(
            struct.pack("<32sIQ", w, i, t) for i, (w, t) in enumerate(sorted(totals.items()))
        )
    record = {
        "program_id": PROGRAM_ID,
        "mint": CCM_MINT,
        "channel": channel,
        "channel_config": account,
        "format": fmt,
        "epoch": epoch,
        "root_seq": root_seq,
        "emission": str(emission),
        "total": str(sum(totals.values()) if declared is None else declared),
    }
    return record, dataset


class Log:
    """Builds per-partition record lists with offsets."""

    def __init__(self, partitions: int) -> None:
        self.parts: dict[int, list[Rec]] = {p: [] for p in range(partitions)}

    def root(self, partition: int, record_and_dataset: tuple[dict[str, Any], bytes]) -> None:
        record, dataset = record_and_dataset
        recs = self.parts[partition]
        recs.append(Rec(partition, len(recs) * 3, "root", record, dataset))  # offsets skip chunks

    def closed(self, partition: int, epoch: int, slot: int = 0) -> None:
        recs = self.parts[partition]
        record = {
            "partition": partition,
            "epoch": epoch,
            "closed_at_slot": slot or (epoch + 1) * 100 - 1,
            "source_offset": 0,
        }
        recs.append(Rec(partition, len(recs) * 3, "closed", record))

    def interleaved(self, rng: random.Random | None = None) -> list[Rec]:
        """Every record, partitions interleaved (randomly with `rng`), each partition in order."""
        queues = {p: list(r) for p, r in self.parts.items()}
        out = []
        while any(queues.values()):
            live = [p for p, q in queues.items() if q]
            p = rng.choice(live) if rng else live[0]
            out.append(queues[p].pop(0))
        return out


def feed(combiner: GlobalCombiner, records: Iterable[Rec]) -> list[GlobalOutput | GlobalRefusal]:
    out: list[GlobalOutput | GlobalRefusal] = []
    for r in records:
        if r.kind == "root":
            out += combiner.add_root(r.partition, r.offset, r.record, r.dataset)
        else:
            out += combiner.add_closed(r.partition, r.offset, r.record)
    return out


def config(partitions: int = 2, fmt: str = "global-v5", first: int = 1) -> CombineConfig:
    return CombineConfig(PROGRAM, MINT, fmt, partitions, first_root_seq=first)


def expected_totals(roots: list[tuple[dict[str, Any], bytes]], through: int) -> dict[bytes, int]:
    """The second statement of the rule: per channel the latest cumulative root of an epoch
    <= `through`, summed wallet by wallet (ring roots: every root's amounts summed)."""
    latest: dict[str, tuple[int, bytes]] = {}
    totals: dict[bytes, int] = {}
    for record, dataset in roots:
        if record["epoch"] > through:
            continue
        if record["format"] == "ring-v0":
            for i in range(0, len(dataset), 44):
                w, _, a = struct.unpack_from("<32sIQ", dataset, i)
                totals[w] = totals.get(w, 0) + a
            continue
        seq = record["root_seq"]
        if record["channel_config"] not in latest or latest[record["channel_config"]][0] < seq:
            latest[record["channel_config"]] = (seq, dataset)
    for _, dataset in latest.values():
        for i in range(0, len(dataset), 40):
            w, t = struct.unpack_from("<32sQ", dataset, i)
            totals[w] = totals.get(w, 0) + t
    return {w: t for w, t in totals.items() if t}


def independent_v5_root(totals: dict[bytes, int], root_seq: int) -> bytes:
    leaves = [
        independent.global_v5_leaf(MINT_BYTES, root_seq, w, totals[w], 0) for w in sorted(totals)
    ]
    return independent.root_of(leaves)


def scenario() -> tuple[Log, list[tuple[dict[str, Any], bytes]]]:
    """Three channels over two partitions and three epochs; 'c' is idle in epoch 1 and
    appears late, 'b' stops after epoch 0."""
    log = Log(2)
    a0 = channel_root("a", 0, 1, {W[0]: 60, W[1]: 40}, 100)
    b0 = channel_root("b", 0, 1, {W[1]: 10, W[2]: 190}, 200)
    a1 = channel_root("a", 1, 2, {W[0]: 110, W[1]: 90}, 100)
    a2 = channel_root("a", 2, 3, {W[0]: 150, W[1]: 150}, 100)
    c2 = channel_root("c", 2, 1, {W[3]: 7}, 7)
    log.root(0, a0)
    log.root(1, b0)
    log.closed(0, 0)
    log.closed(1, 0)
    log.root(0, a1)
    log.closed(0, 1)
    log.closed(1, 1)  # b idle in 1
    log.root(0, a2)
    log.root(1, c2)
    log.closed(0, 2)
    log.closed(1, 3)  # partition 1 closes 2 and 3 at once
    return log, [a0, b0, a1, a2, c2]


def test_each_epoch_gives_one_global_root_equal_to_the_independent_sum() -> None:
    log, roots = scenario()
    out = feed(GlobalCombiner(config()), log.interleaved())
    assert [type(o) for o in out] == [GlobalOutput] * 3
    for root_seq, (output, epoch) in enumerate(zip(out, (0, 1, 2), strict=True), start=1):
        assert isinstance(output, GlobalOutput)
        totals = expected_totals(roots, epoch)
        assert (output.epoch, output.root_seq) == (epoch, root_seq)
        assert output.tree.wallets == sorted(totals)
        assert output.tree.amounts == [totals[w] for w in sorted(totals)]
        assert output.tree.root == independent_v5_root(totals, root_seq)
        assert output.record["root"] == output.tree.root
        assert output.record["total"] == str(sum(totals.values()))
    # epoch 2 adds a's 100 and c's 7
    assert out[2].record["emission"] == "107"  # type: ignore[union-attr]
    assert out[0].record["emission"] == "300"  # type: ignore[union-attr]


def test_records_do_not_depend_on_the_interleaving_of_partitions() -> None:
    log, _ = scenario()
    reference = [o.record for o in feed(GlobalCombiner(config()), log.interleaved())]  # type: ignore[union-attr]
    for seed in range(25):
        got = feed(GlobalCombiner(config()), log.interleaved(random.Random(seed)))
        assert [o.record for o in got] == reference  # type: ignore[union-attr]


def test_duplicated_roots_and_markers_change_nothing() -> None:
    log, _ = scenario()
    records = log.interleaved()
    reference = [o.record for o in feed(GlobalCombiner(config()), records)]  # type: ignore[union-attr]
    doubled: list[Rec] = []
    for r in records:
        doubled += [r, r]
    combiner = GlobalCombiner(config())
    assert [o.record for o in feed(combiner, doubled)] == reference  # type: ignore[union-attr]
    assert combiner.skipped["duplicate_root"] == 5


def test_an_epoch_waits_for_every_partition() -> None:
    log, _ = scenario()
    combiner = GlobalCombiner(config())
    assert feed(combiner, log.parts[0]) == []
    assert combiner.waiting_partitions == [1]
    assert combiner.pending_epochs == [0, 1, 2]
    assert len(feed(combiner, log.parts[1])) == 3
    assert combiner.waiting_partitions == []


def test_first_root_seq_continues_an_on_chain_sequence_and_the_key_is_the_config() -> None:
    log, _ = scenario()
    out = feed(GlobalCombiner(config(first=1802)), log.interleaved())
    assert [o.root_seq for o in out] == [1802, 1803, 1804]  # type: ignore[union-attr]
    account = str(global_root_config_address(program_id=PROGRAM, mint=MINT).address)
    assert out[0].key == account.encode()  # type: ignore[union-attr]
    assert {c["channel_config"] for o in out for c in o.chunks} == {account}  # type: ignore[union-attr]


def test_v4_commits_to_the_same_totals() -> None:
    log, roots = scenario()
    out = feed(GlobalCombiner(config(fmt="global-v4")), log.interleaved())
    totals = expected_totals(roots, 2)
    leaves = [independent.global_v4_leaf(MINT_BYTES, 3, w, totals[w]) for w in sorted(totals)]
    assert out[2].tree.root == independent.root_of(leaves)  # type: ignore[union-attr]


def test_ring_roots_add_their_epoch_amounts() -> None:
    log = Log(1)
    r0 = channel_root("legacy", 0, 0, {W[0]: 5, W[1]: 6}, 11, fmt="ring-v0")
    r1 = channel_root("legacy", 1, 1, {W[0]: 3}, 3, fmt="ring-v0")
    log.root(0, r0)
    log.closed(0, 0)
    log.root(0, r1)
    log.closed(0, 1)
    out = feed(GlobalCombiner(config(partitions=1)), log.interleaved())
    assert out[1].tree.amounts == [8, 6]  # type: ignore[union-attr]
    assert out[1].tree.amounts == [expected_totals([r0, r1], 1)[w] for w in (W[0], W[1])]  # type: ignore[union-attr]


def test_restart_from_each_checkpoint_gives_the_same_records() -> None:
    """Stop after each global root, rebuild the state from its GlobalRoot record (re-reading the
    cumulative sources' datasets), resume from its offsets: the rest is byte-identical."""
    log, _ = scenario()
    straight = feed(GlobalCombiner(config()), log.interleaved())
    datasets = {(r.partition, r.offset): r.dataset for rs in log.parts.values() for r in rs}
    for stop in range(len(straight)):
        checkpoint = straight[stop]
        assert isinstance(checkpoint, GlobalOutput)
        record = checkpoint.record
        cumulative = {
            s["channel_config"]: datasets[(s["partition"], s["offset"])] for s in record["sources"]
        }
        state = CombinerState.from_global_root(record, checkpoint.tree.dataset, cumulative)
        resumed = GlobalCombiner(config(), state)
        starts = {
            r["partition"]: min(r["first_offset"], r["last_offset"]) for r in record["resume"]
        }
        rest = Log(2)
        rest.parts = {p: [r for r in rs if r.offset >= starts[p]] for p, rs in log.parts.items()}
        got = feed(resumed, rest.interleaved(random.Random(stop)))
        assert [o.record for o in got] == [o.record for o in straight[stop + 1 :]]  # type: ignore[union-attr]


def test_a_sum_mismatch_is_refused_and_consumes_no_root_seq() -> None:
    log = Log(1)
    bad = channel_root("a", 0, 1, {W[0]: 60}, 100, declared=100)  # leaves sum to 60
    good = channel_root("a", 1, 2, {W[0]: 160}, 100)
    log.root(0, bad)
    log.closed(0, 0)
    log.root(0, good)
    log.closed(0, 1)
    out = feed(GlobalCombiner(config(partitions=1)), log.interleaved())
    assert isinstance(out[0], GlobalRefusal)
    assert out[0].reason == "sum_mismatch"
    assert "its leaves sum to 60 but the root says 100" in out[0].detail
    # the next epoch's root takes root_seq 1 and carries the channel's whole total
    assert isinstance(out[1], GlobalOutput) and out[1].root_seq == 1
    assert out[1].tree.amounts == [160] and out[1].record["emission"] == "100"
    letter = out[0].dead_letter(5)
    assert (letter["stage"], letter["reason"]) == ("combiner", "sum_mismatch")


def test_a_total_that_goes_down_is_refused() -> None:
    log = Log(1)
    log.root(0, channel_root("a", 0, 1, {W[0]: 60, W[1]: 40}, 100))
    log.closed(0, 0)
    log.root(0, channel_root("a", 1, 2, {W[0]: 50, W[1]: 150}, 100))
    log.closed(0, 1)
    out = feed(GlobalCombiner(config(partitions=1)), log.interleaved())
    assert isinstance(out[1], GlobalRefusal) and out[1].reason == "total_decreased"
    assert "goes from 60 to 50" in out[1].detail


def test_base_plus_bonus_over_u64_is_refused() -> None:
    log = Log(1)
    log.root(0, channel_root("a", 0, 1, {W[0]: 2**64 - 1}, 2**64 - 1))
    log.root(0, channel_root("b", 0, 1, {W[0]: 1}, 1))
    log.closed(0, 0)
    (out,) = feed(GlobalCombiner(config(partitions=1)), log.interleaved())
    assert isinstance(out, GlobalRefusal) and out.reason == "total_overflow"


def test_a_root_for_an_epoch_already_combined_is_refused_as_late() -> None:
    log = Log(1)
    log.root(0, channel_root("a", 0, 1, {W[0]: 5}, 5))
    log.closed(0, 0)
    log.root(0, channel_root("b", 0, 1, {W[1]: 5}, 5))
    out = feed(GlobalCombiner(config(partitions=1)), log.interleaved())
    assert isinstance(out[1], GlobalRefusal) and out[1].reason == "late_root"


def test_roots_of_another_mint_are_skipped() -> None:
    log = Log(1)
    record, dataset = channel_root("a", 0, 1, {W[0]: 5}, 5)
    log.root(0, ({**record, "mint": str(Pubkey(bytes(32)))}, dataset))
    log.closed(0, 0)
    combiner = GlobalCombiner(config(partitions=1))
    assert feed(combiner, log.interleaved()) == []
    assert combiner.skipped["other_mint"] == 1


def test_random_logs_match_the_simple_statement() -> None:
    """Random channels, partitions, idle epochs and joiners: every global root equals the
    independent sum and tree, for several interleavings."""
    for seed in range(12):
        rng = random.Random(seed)
        partitions = rng.randint(1, 4)
        log = Log(partitions)
        roots: list[tuple[dict[str, Any], bytes]] = []
        totals: dict[str, dict[bytes, int]] = {}
        seqs: dict[str, int] = {}
        channels = [(f"ch{i}", rng.randrange(partitions)) for i in range(rng.randint(1, 6))]
        for epoch in range(rng.randint(1, 5)):
            for name, partition in channels:
                if rng.random() < 0.3:
                    continue  # idle this epoch
                emission = rng.randint(1, 10**6)
                mine = totals.setdefault(name, {})
                share = [rng.random() for _ in range(3)]
                wallets = rng.sample(W, 3)
                given = 0
                for k, w in enumerate(wallets):
                    part = emission - given if k == 2 else int(emission * share[k] / sum(share))
                    given += part
                    mine[w] = mine.get(w, 0) + part
                seqs[name] = seqs.get(name, 0) + 1
                root = channel_root(name, epoch, seqs[name], dict(mine), emission)
                roots.append(root)
                log.root(partition, root)
            for p in range(partitions):
                log.closed(p, epoch)
        out = feed(GlobalCombiner(config(partitions=partitions)), log.interleaved(rng))
        epochs_with_roots = sorted({r["epoch"] for r, _ in roots})
        assert [o.epoch for o in out] == epochs_with_roots  # type: ignore[union-attr]
        for seq, output in enumerate(out, start=1):
            assert isinstance(output, GlobalOutput)
            want = expected_totals(roots, output.epoch)
            assert output.tree.root == independent_v5_root(want, seq)


@pytest.mark.parametrize("partitions", [0])
def test_a_config_needs_a_partition(partitions: int) -> None:
    from aop.core.errors import CoreError

    with pytest.raises(CoreError, match="partitions must be >= 1"):
        config(partitions=partitions)
