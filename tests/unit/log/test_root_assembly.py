"""RootAssembler: whole roots out of interleaved, repeated and broken record streams."""

from __future__ import annotations

import hashlib
from typing import Any

from solders.pubkey import Pubkey

from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.log.root_assembly import CompleteRoot, PurgedRemainder, RejectedRecord, RootAssembler
from tests.support.sample_roots import SampleRoot, build_sample_root

MINT = Pubkey.from_string("Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM")


def sample(channel: str = "alpha", n: int = 5, root_seq: int = 1) -> SampleRoot:
    return build_sample_root(
        channel=channel,
        root_seq=root_seq,
        epoch=1,
        amounts={hashlib.sha256(b"%d" % i).digest(): i + 1 for i in range(n)},
        program_id=DEFAULT_PROGRAM_ID,
        mint=MINT,
        chunk_entries=2,
    )


Item = CompleteRoot | RejectedRecord | PurgedRemainder


def feed(
    assembler: RootAssembler, records: list[tuple[str, dict[str, Any]]], start: int = 0
) -> list[Item]:
    out: list[Item] = []
    for offset, (record_type, value) in enumerate(records, start=start):
        out.extend(assembler.add(1, offset, record_type, value, b"p%d" % offset))
    return out


def test_root_completes_with_its_last_chunk_and_offsets_wait_for_it() -> None:
    root = sample()
    assembler = RootAssembler()
    records = root.records()
    assert feed(assembler, records[:3]) == []
    assert assembler.safe_offset(1, 3) == 0
    (done,) = feed(assembler, records[3:], start=3)
    assert isinstance(done, CompleteRoot)
    assert (done.partition, done.offset, done.payload) == (1, 0, b"p0")
    assert done.chunks == [c["entries"] for c in root.chunks]
    assert assembler.safe_offset(1, 4) == 4


def test_reemitted_root_restarts_the_assembly_and_completes_once() -> None:
    root = sample()
    records = root.records()
    done = feed(RootAssembler(), [*records[:2], *records])
    assert [(type(d).__name__, d.offset) for d in done] == [("CompleteRoot", 2)]


def test_interleaved_roots_both_complete_and_offsets_stop_at_the_pending_one() -> None:
    a, b = sample("alpha"), sample("beta", n=3)
    ra, rb = a.records(), b.records()
    assembler = RootAssembler()
    done = feed(assembler, [ra[0], rb[0], ra[1], rb[1], rb[2]])
    assert [d.record["channel"] for d in done if isinstance(d, CompleteRoot)] == ["beta"]
    assert assembler.safe_offset(1, 5) == 0
    done = feed(assembler, ra[2:], start=5)
    assert [d.record["channel"] for d in done if isinstance(d, CompleteRoot)] == ["alpha"]
    assert assembler.safe_offset(1, 7) == 7


def test_repeated_identical_chunk_is_ignored_and_a_different_one_rejects_the_root() -> None:
    root = sample()
    records = root.records()
    assembler = RootAssembler()
    assert feed(assembler, [records[0], records[1], records[1]]) == []
    changed = {**root.chunks[0], "entries": bytes(len(root.chunks[0]["entries"]))}
    (rejected,) = feed(assembler, [("LeafChunk", changed)], start=3)
    assert isinstance(rejected, RejectedRecord)
    assert (rejected.reason, rejected.offset, rejected.payload) == ("conflicting_chunk", 0, b"p0")
    assert assembler.pending_count(1) == 0


def test_orphan_chunk_and_foreign_record_types_are_rejected() -> None:
    root = sample()
    out = feed(RootAssembler(), [("LeafChunk", root.chunks[0]), ("SlotBatch", {})])
    assert [(r.reason, r.offset) for r in out if isinstance(r, RejectedRecord)] == [
        ("orphan_chunk", 0),
        ("unexpected_record", 1),
    ]


def test_chunk_count_index_and_first_leaf_must_agree_with_the_root() -> None:
    root = sample()
    records = root.records()
    bad_count = {**root.chunks[0], "chunk_count": 9}
    bad_index = {**root.chunks[0], "chunk_index": 5}
    bad_first = {**root.chunks[1], "first_leaf": 3}
    reasons = []
    for chunk in (bad_count, bad_index):
        out = feed(RootAssembler(), [records[0], ("LeafChunk", chunk)])
        reasons.extend(r.reason for r in out if isinstance(r, RejectedRecord))
    out = feed(RootAssembler(), [records[0], records[1], ("LeafChunk", bad_first), records[3]])
    reasons.extend(r.reason for r in out if isinstance(r, RejectedRecord))
    assert reasons == ["chunk_count_mismatch", "bad_chunk_index", "bad_first_leaf"]


def test_drop_partition_forgets_pending_assemblies() -> None:
    root = sample()
    assembler = RootAssembler()
    feed(assembler, root.records()[:2])
    assembler.drop_partition(1)
    assert assembler.pending_count(1) == 0
    assert assembler.safe_offset(1, 2) == 2


def kinds(items: list[Item]) -> list[tuple[str, int]]:
    return [(type(i).__name__, i.offset) for i in items]


def test_chunks_of_a_root_begun_below_a_purged_start_are_a_remainder_until_its_channel_heads() -> (
    None
):
    """Partition 1 held alpha#1 header, beta#1 header, alpha#1 chunk 0 | purged here |
    beta#1 chunks 0-1, alpha#1 chunks 1-2, alpha#2 header + chunk 0, then a stray alpha#1
    chunk: beta's chunks and alpha#1's (before alpha#2's header) are the purged remainder;
    alpha#2 completes; the alpha#1 chunk after alpha#2's header is an orphan."""
    a1, b1, a2 = sample("alpha"), sample("beta", n=3), sample("alpha", n=2, root_seq=2)
    ra1, rb1, ra2 = a1.records(), b1.records(), a2.records()
    assert (len(ra1), len(rb1), len(ra2)) == (4, 3, 2)
    tail = [rb1[1], rb1[2], ra1[2], ra1[3], ra2[0], ra2[1], ra1[3]]
    assembler = RootAssembler()
    assembler.purged_start(1)
    out = feed(assembler, tail, start=3)
    assert kinds(out) == [
        ("PurgedRemainder", 3),
        ("PurgedRemainder", 4),
        ("PurgedRemainder", 5),
        ("PurgedRemainder", 6),
        ("CompleteRoot", 7),
        ("RejectedRecord", 9),
    ]
    remainder = [(r.channel_config, r.root_seq) for r in out if isinstance(r, PurgedRemainder)]
    keys = [(str(r[1]["channel_config"]), int(r[1]["root_seq"])) for r in (rb1[0], ra1[0])]
    assert remainder == [keys[0], keys[0], keys[1], keys[1]]
    assert isinstance(out[5], RejectedRecord) and out[5].reason == "orphan_chunk"
    assert assembler.safe_offset(1, 10) == 10


def test_without_a_purged_start_the_same_tail_is_rejected_chunk_by_chunk() -> None:
    a1, b1 = sample("alpha"), sample("beta", n=3)
    tail = [b1.records()[1], a1.records()[2]]
    assert kinds(feed(RootAssembler(), tail)) == [("RejectedRecord", 0), ("RejectedRecord", 1)]
    assembler = RootAssembler()
    assembler.purged_start(1)
    assembler.drop_partition(1)  # a re-seek forgets the purged start
    assert kinds(feed(assembler, tail)) == [("RejectedRecord", 0), ("RejectedRecord", 1)]
