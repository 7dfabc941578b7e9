"""core.combine with attention roots: the global root of chain epoch e takes exactly the
attention epochs that ended at or before e's end time T(e), waits for them to close, and does
not depend on how the two topics' outputs interleave on aop.epoch.roots. Checked against a
hand-computed example and a second, simple statement of the rule."""

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
from tests.unit.core import independent
from tests.unit.core.test_combine import MINT, MINT_BYTES, PROGRAM, W, channel_root
from tests.unit.core.vectors import CCM_MINT, PROGRAM_ID

L = 60


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    kind: str  # "root", "closed", "aroot", "aclosed"
    record: dict[str, Any]
    dataset: bytes = b""


def attention_root(
    channel: str,
    start: int,
    root_seq: int,
    totals: dict[bytes, int],
    fmt: str = "cumulative-v2",
    emission: int = 0,
) -> tuple[dict[str, Any], bytes]:
    """An AttentionRoot (cumulative totals, or a legacy epoch with one entry per user)."""
    if fmt == "cumulative-v2":
        dataset = b"".join(struct.pack("<32sQ", w, t) for w, t in sorted(totals.items()) if t)
        total = sum(totals.values())
    else:  # ring-v0-legacy: (wallet, index, amount, id length, id) per user
        dataset = b"".join(
            struct.pack("<32sIQB64s", w, i, t, 2, b"u%d" % i)
            for i, (w, t) in enumerate(totals.items())
        )
        total = sum(totals.values())
    record = {
        "program_id": PROGRAM_ID,
        "mint": CCM_MINT,
        "channel": channel,
        "channel_config": f"att-{channel}",
        "format": fmt,
        "epoch": start,
        "root_seq": root_seq,
        "emission": str(total if fmt != "cumulative-v2" else emission),
        "total": str(total),
    }
    return record, dataset


class Log:
    """Per-partition records of aop.epoch.roots (offsets count every record)."""

    def __init__(self, partitions: int) -> None:
        self.parts: dict[int, list[Rec]] = {p: [] for p in range(partitions)}

    def add(self, partition: int, kind: str, record: dict[str, Any], dataset: bytes = b"") -> None:
        recs = self.parts[partition]
        recs.append(Rec(partition, len(recs), kind, record, dataset))

    def closed(self, partition: int, epoch: int, time: int | None) -> None:
        self.add(
            partition,
            "closed",
            {
                "partition": partition,
                "epoch": epoch,
                "closed_at_slot": (epoch + 1) * 100 - 1,
                "source_offset": 0,
                "closed_at_time": time,
            },
        )

    def attention_closed(self, partition: int, start: int) -> None:
        self.add(
            partition,
            "aclosed",
            {
                "partition": partition,
                "epoch": start,
                "epoch_seconds": L,
                "watermark_ms": (start + L) * 1000,
                "source_offset": 0,
            },
        )

    def interleaved(self, rng: random.Random | None = None) -> list[Rec]:
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
        elif r.kind == "aroot":
            out += combiner.add_root(
                r.partition, r.offset, r.record, r.dataset, part="attention_bonus"
            )
        elif r.kind == "closed":
            out += combiner.add_closed(r.partition, r.offset, r.record)
        else:
            out += combiner.add_attention_closed(r.partition, r.offset, r.record)
    return out


def config(partitions: int = 2, attention: int | None = L) -> CombineConfig:
    return CombineConfig(PROGRAM, MINT, "global-v5", partitions, attention_epoch_seconds=attention)


def v5_root(parts: dict[bytes, tuple[int, int]], root_seq: int) -> bytes:
    leaves = [
        independent.global_v5_leaf(MINT_BYTES, root_seq, w, *parts[w])
        for w in sorted(parts)
        if sum(parts[w])
    ]
    return independent.root_of(leaves)


def example() -> Log:
    """Chain epoch 0 ends at T(0) = 1000 s, epoch 1 at 1100 s; attention epochs of 60 s.
    A(0) = floor(1000/60)*60 - 60 = 900: attention epochs 840 and 900 (ending 900 and 960 <=
    1000) go into the global root of epoch 0; 960 (ends 1020 > 1000) waits for epoch 1
    (A(1) = floor(1100/60)*60 - 60 = 1020). Stake channel "a" on partition 0, attention
    channel "x" (cumulative) on partition 1."""
    log = Log(2)
    log.add(0, "root", *channel_root("a", 0, 1, {W[0]: 100}, 100))
    log.closed(0, 0, 1000)
    log.attention_closed(0, 900)
    log.add(0, "root", *channel_root("a", 1, 2, {W[0]: 150}, 50))
    log.closed(0, 1, 1100)
    log.attention_closed(0, 960)
    log.attention_closed(0, 1020)
    log.add(1, "aroot", *attention_root("x", 840, 1, {W[1]: 5}))
    log.add(1, "aroot", *attention_root("x", 900, 2, {W[1]: 5, W[2]: 7}))
    log.closed(1, 0, 1003)  # partition 1 closed epoch 0 with a later batch: T(0) = min = 1000
    log.attention_closed(1, 900)
    log.add(1, "aroot", *attention_root("x", 960, 3, {W[1]: 5, W[2]: 7, W[3]: 1}))
    log.closed(1, 1, 1100)
    log.attention_closed(1, 1020)
    return log


def test_the_hand_computed_example() -> None:
    """Global root 1 (epoch 0): W0 base 100; W1 bonus 5, W2 bonus 7. Global root 2 (epoch 1):
    W0 base 150; W1 5, W2 7, W3 1."""
    combiner = GlobalCombiner(config())
    out = feed(combiner, example().interleaved())
    assert [type(o) for o in out] == [GlobalOutput, GlobalOutput]
    first, second = out
    assert isinstance(first, GlobalOutput) and isinstance(second, GlobalOutput)
    parts_1 = {W[0]: (100, 0), W[1]: (0, 5), W[2]: (0, 7)}
    parts_2 = {W[0]: (150, 0), W[1]: (0, 5), W[2]: (0, 7), W[3]: (0, 1)}
    assert first.tree.root == v5_root(parts_1, 1)
    assert second.tree.root == v5_root(parts_2, 2)
    assert (first.record["base_total"], first.record["bonus_total"]) == ("100", "12")
    assert (second.record["base_total"], second.record["bonus_total"]) == ("150", "13")
    sources = {(s["part"], s["channel"], s["root_seq"]) for s in first.record["sources"]}
    assert sources == {("base_yield", "a", 1), ("attention_bonus", "x", 2)}


def test_a_global_root_waits_for_every_partitions_attention_markers() -> None:
    log = example()
    combiner = GlobalCombiner(config())
    held = [r for r in log.interleaved() if not (r.partition == 1 and r.kind == "aclosed")]
    assert feed(combiner, held) == []
    assert (combiner.end_time(0), combiner.attention_through(0)) == (1000, 900)
    assert (combiner.end_time(1), combiner.attention_through(1)) == (1100, 1020)
    assert combiner.waiting_partitions == [1]
    assert combiner.pending_attention_epochs == [840, 900, 960]
    rest = [r for r in log.parts[1] if r.kind == "aclosed"]
    assert [o.epoch for o in feed(combiner, rest)] == [0, 1]  # type: ignore[union-attr]
    assert combiner.waiting_partitions == []


def _comparable(out: list[GlobalOutput | GlobalRefusal]) -> list[Any]:
    """The records without what names positions on aop.epoch.roots (resume, source offsets)."""
    shown = []
    for o in out:
        assert isinstance(o, GlobalOutput)
        record = {k: v for k, v in o.record.items() if k != "resume"}
        record["sources"] = [{**s, "offset": 0} for s in record["sources"]]
        shown.append(record)
    return shown


def _merge(a: list[Rec], b: list[Rec], rng: random.Random) -> list[Rec]:
    """A random merge of two ordered lists (each keeps its order), renumbered."""
    qa, qb, out = list(a), list(b), []
    while qa or qb:
        src = qa if qa and (not qb or rng.random() < 0.5) else qb
        out.append(src.pop(0))
    return [Rec(r.partition, i, r.kind, r.record, r.dataset) for i, r in enumerate(out)]


def test_the_interleaving_of_the_two_topics_on_each_partition_changes_no_record() -> None:
    """Each partition's stake-time records and attention records merged in many orders (as
    the fold may emit them), and partitions interleaved: the same global roots."""
    log = example()
    reference = _comparable(feed(GlobalCombiner(config()), log.interleaved()))
    for seed in range(30):
        rng = random.Random(seed)
        shuffled = Log(2)
        for p, recs in log.parts.items():
            chain = [r for r in recs if r.kind in ("root", "closed")]
            attention = [r for r in recs if r.kind in ("aroot", "aclosed")]
            shuffled.parts[p] = _merge(chain, attention, rng)
        got = feed(GlobalCombiner(config()), shuffled.interleaved(rng))
        assert _comparable(got) == reference


def test_an_unknown_end_time_takes_no_attention_until_a_known_one() -> None:
    """Markers of epoch 0 without closed_at_time (a log written before the field): epoch 0's
    global root has no bonus; epoch 1 (T known) takes every attention epoch <= A(1)."""
    log = Log(1)
    log.add(0, "root", *channel_root("a", 0, 1, {W[0]: 100}, 100))
    log.add(0, "aroot", *attention_root("x", 840, 1, {W[1]: 5}))
    log.closed(0, 0, None)
    log.attention_closed(0, 900)
    log.add(0, "root", *channel_root("a", 1, 2, {W[0]: 150}, 50))
    log.closed(0, 1, 1100)
    log.attention_closed(0, 1020)
    first, second = feed(GlobalCombiner(config(partitions=1)), log.interleaved())
    assert isinstance(first, GlobalOutput) and isinstance(second, GlobalOutput)
    assert first.record["bonus_total"] == "0"
    assert second.tree.root == v5_root({W[0]: (150, 0), W[1]: (0, 5)}, 2)


def test_with_attention_off_attention_roots_are_skipped_and_nothing_waits() -> None:
    combiner = GlobalCombiner(config(attention=None))
    out = feed(combiner, [r for r in example().interleaved() if r.kind != "aclosed"])
    assert [o.record["bonus_total"] for o in out] == ["0", "0"]  # type: ignore[union-attr]
    assert combiner.skipped["attention_off"] == 3


def test_legacy_epoch_roots_add_their_amounts_per_wallet() -> None:
    """A ring-v0-legacy attention root with two users bound to one wallet: W1 gets 3 + 4."""
    log = Log(1)
    log.add(0, "aroot", *attention_root("l", 900, 1, {W[1]: 3, W[2]: 9}, "ring-v0-legacy"))
    dataset = b"".join(
        struct.pack("<32sIQB64s", w, i, t, 2, b"v%d" % i) for i, (w, t) in enumerate([(W[1], 4)])
    )
    record = {**attention_root("l", 960, 2, {W[1]: 4}, "ring-v0-legacy")[0]}
    log.add(0, "aroot", record, dataset)
    log.closed(0, 0, 1030)
    log.attention_closed(0, 960)
    (out,) = feed(GlobalCombiner(config(partitions=1)), log.interleaved())
    assert out.tree.root == v5_root({W[1]: (0, 7), W[2]: (0, 9)}, 1)  # type: ignore[union-attr]


def test_restart_from_each_checkpoint_gives_the_same_records() -> None:
    """Rebuild the state from each GlobalRoot (cumulative sources' datasets re-read), resume
    from its offsets: the rest is byte-identical, pending attention roots included."""
    log = random_log(random.Random(7), partitions=3)[0]
    straight = feed(GlobalCombiner(config(partitions=3)), log.interleaved())
    assert len(straight) >= 3
    datasets = {(r.partition, r.offset): r.dataset for rs in log.parts.values() for r in rs}
    for stop, checkpoint in enumerate(straight):
        assert isinstance(checkpoint, GlobalOutput)
        record = checkpoint.record
        cumulative = {
            s["channel_config"]: datasets[(s["partition"], s["offset"])] for s in record["sources"]
        }
        state = CombinerState.from_global_root(record, checkpoint.tree.dataset, cumulative)
        resumed = GlobalCombiner(config(partitions=3), state)
        starts = {
            p["partition"]: min(p["first_offset"], p["last_offset"]) for p in record["resume"]
        }
        rest = Log(3)
        rest.parts = {p: [r for r in rs if r.offset >= starts[p]] for p, rs in log.parts.items()}
        got = feed(resumed, rest.interleaved(random.Random(stop)))
        assert [o.record for o in got] == [o.record for o in straight[stop + 1 :]]  # type: ignore[union-attr]


def _restart_after_first(log: Log) -> tuple[dict[int, int], list[Any], list[Any]]:
    """Run straight; restart from the first global root; (resume starts, rest, straight)."""
    straight = feed(GlobalCombiner(config()), log.interleaved())
    checkpoint = straight[0]
    assert isinstance(checkpoint, GlobalOutput)
    record = checkpoint.record
    datasets = {(r.partition, r.offset): r.dataset for rs in log.parts.values() for r in rs}
    cumulative = {
        s["channel_config"]: datasets[(s["partition"], s["offset"])] for s in record["sources"]
    }
    state = CombinerState.from_global_root(record, checkpoint.tree.dataset, cumulative)
    starts = {p["partition"]: min(p["first_offset"], p["last_offset"]) for p in record["resume"]}
    rest = Log(2)
    rest.parts = {p: [r for r in rs if r.offset >= starts[p]] for p, rs in log.parts.items()}
    got = feed(GlobalCombiner(config(), state), rest.interleaved())
    return starts, [o.record for o in got], [o.record for o in straight[1:]]  # type: ignore[union-attr]


def _two_epochs(partition_1: list[tuple[str, Any]]) -> Log:
    """Stake channel "a" on partition 0 over chain epochs 0 (T 1000) and 1 (T 1100);
    partition 1's records as given."""
    log = Log(2)
    log.add(0, "root", *channel_root("a", 0, 1, {W[0]: 100}, 100))
    log.closed(0, 0, 1000)
    log.attention_closed(0, 1020)
    log.add(0, "root", *channel_root("a", 1, 2, {W[0]: 150}, 50))
    log.closed(0, 1, 1100)
    for kind, arg in partition_1:
        if kind == "aroot":
            log.add(1, "aroot", *arg)
        elif kind == "aclosed":
            log.attention_closed(1, arg)
        else:
            log.closed(1, arg, 1000 + 100 * arg)
    return log


def test_a_restart_rereads_attention_roots_still_pending() -> None:
    """Attention epoch 960 (not in epoch 0's root) sits before partition 1's chain marker of
    epoch 0: the checkpoint resumes there, so epoch 1's root still gets it."""
    root = attention_root("x", 960, 1, {W[1]: 5}, emission=5)
    log = _two_epochs([("aroot", root), ("closed", 0), ("aclosed", 1020), ("closed", 1)])
    starts, got, straight = _restart_after_first(log)
    assert starts[1] == 0
    assert got == straight and straight[0]["bonus_total"] == "5"


def test_a_restart_knows_how_far_attention_is_closed() -> None:
    """Partition 1's attention runs ahead: it closes 1020 before chain epoch 0 closes there.
    The checkpoint resumes at that AttentionClosed, so the restarted combiner gives epoch 1
    (A(1) = 1020) without waiting for another attention marker."""
    log = _two_epochs([("aclosed", 1020), ("closed", 0), ("closed", 1)])
    starts, got, straight = _restart_after_first(log)
    assert starts == {0: 1, 1: 0}
    assert got == straight and len(straight) == 1


def random_log(rng: random.Random, partitions: int) -> tuple[Log, dict[str, Any]]:
    """Chain epochs 0..5 and attention epochs of L s over the same time, both topics'
    records merged at random on each partition. Returns the log and what a second, simple
    statement needs: per chain epoch its T(e), and every root."""
    log = Log(partitions)
    chain_channels = [(f"c{i}", rng.randrange(partitions)) for i in range(3)]
    attention_channels = [(f"x{i}", rng.randrange(partitions)) for i in range(3)]
    chain: dict[int, list[Rec]] = {p: [] for p in range(partitions)}
    attention: dict[int, list[Rec]] = {p: [] for p in range(partitions)}
    roots: list[tuple[str, dict[str, Any], bytes]] = []
    times: dict[int, int] = {}
    totals: dict[str, dict[bytes, int]] = {}
    seqs: dict[str, int] = {}

    def push(
        target: list[Rec], p: int, kind: str, record: dict[str, Any], data: bytes = b""
    ) -> None:
        target.append(Rec(p, 0, kind, record, data))

    for epoch in range(6):
        end = 1000 + 300 * epoch
        for name, p in chain_channels:
            if rng.random() < 0.3:
                continue
            mine = totals.setdefault(name, {})
            w = rng.choice(W)
            mine[w] = mine.get(w, 0) + rng.randint(1, 1000)
            seqs[name] = seqs.get(name, 0) + 1
            record, data = channel_root(name, epoch, seqs[name], dict(mine), 0)
            record["emission"] = "0"
            roots.append(("base", record, data))
            push(chain[p], p, "root", record, data)
        marker_times = [end + rng.randint(0, 30) for _ in range(partitions)]
        marker_times[rng.randrange(partitions)] = end
        times[epoch] = end
        for p in range(partitions):
            push(
                chain[p],
                p,
                "closed",
                {
                    "partition": p,
                    "epoch": epoch,
                    "closed_at_slot": 0,
                    "source_offset": 0,
                    "closed_at_time": marker_times[p],
                },
            )
    for start in range(900, 1000 + 300 * 6 + 2 * L, L):
        for name, p in attention_channels:
            if rng.random() < 0.4:
                continue
            mine = totals.setdefault(name, {})
            w = rng.choice(W)
            added = rng.randint(1, 50)
            mine[w] = mine.get(w, 0) + added
            seqs[name] = seqs.get(name, 0) + 1
            record, data = attention_root(name, start, seqs[name], dict(mine), emission=added)
            roots.append(("bonus", record, data))
            push(attention[p], p, "aroot", record, data)
        for p in range(partitions):
            push(
                attention[p],
                p,
                "aclosed",
                {
                    "partition": p,
                    "epoch": start,
                    "epoch_seconds": L,
                    "watermark_ms": 0,
                    "source_offset": 0,
                },
            )
    for p in range(partitions):
        log.parts[p] = _merge(chain[p], attention[p], rng)
    return log, {"times": times, "roots": roots}


def simple_statement(facts: dict[str, Any], epoch: int) -> dict[bytes, tuple[int, int]]:
    """Per wallet, base = the sum over stake channels of its total in the latest root of an
    epoch <= e; bonus = likewise over attention channels' roots of an epoch s with s + L <=
    T(e) (T(e) the end time of e)."""
    end = facts["times"][epoch]
    latest: dict[tuple[str, str], tuple[int, bytes]] = {}
    for part, record, data in facts["roots"]:
        ok = record["epoch"] <= epoch if part == "base" else record["epoch"] + L <= end
        key = (part, record["channel"])
        if ok and (key not in latest or latest[key][0] < record["root_seq"]):
            latest[key] = (record["root_seq"], data)
    out: dict[bytes, list[int]] = {}
    for (part, _), (_, data) in latest.items():
        for w, t in struct.iter_unpack("<32sQ", data):
            out.setdefault(w, [0, 0])[0 if part == "base" else 1] += t
    return {w: (b, o) for w, (b, o) in out.items()}


@pytest.mark.parametrize("seed", range(10))
def test_random_logs_match_the_simple_statement_in_any_interleaving(seed: int) -> None:
    rng = random.Random(seed)
    partitions = rng.randint(1, 3)
    log, facts = random_log(rng, partitions)
    out = feed(GlobalCombiner(config(partitions=partitions)), log.interleaved(rng))
    assert [type(o) for o in out] == [GlobalOutput] * len(out)
    for seq, output in enumerate(out, start=1):
        assert isinstance(output, GlobalOutput)
        assert output.tree.root == v5_root(simple_statement(facts, output.epoch), seq)
    other = feed(
        GlobalCombiner(config(partitions=partitions)), log.interleaved(random.Random(seed + 50))
    )
    assert [o.record for o in other] == [o.record for o in out]  # type: ignore[union-attr]


def test_two_attention_roots_of_the_other_mint_are_skipped() -> None:
    combiner = GlobalCombiner(config(partitions=1))
    record, data = attention_root("x", 900, 1, {W[1]: 5})
    out = combiner.add_root(
        0, 0, {**record, "mint": str(Pubkey(bytes(32)))}, data, part="attention_bonus"
    )
    assert out == [] and combiner.skipped["other_mint"] == 1
