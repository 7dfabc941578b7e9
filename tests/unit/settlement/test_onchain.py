"""classify: what a channel's root account says about one of our roots."""

from __future__ import annotations

from aop.core.accounts import (
    CHANNEL_BITMAP_BYTES,
    ChannelConfigV2,
    ChannelSlot,
    ChannelState,
    GlobalRootConfig,
    RootEntry,
)
from aop.core.root_account import OurRoot
from aop.settlement.onchain import ChainView, Verdict, classify
from aop.settlement.outbox import target_formats

ROOT = b"\x11" * 32
DATASET = b"\x22" * 32
EMPTY = RootEntry(0, bytes(32), bytes(32), 0)


def config(latest: int, entries: dict[int, RootEntry]) -> bytes:
    roots = [entries.get(i, EMPTY) for i in range(4)]
    return ChannelConfigV2(
        version=1,
        bump=255,
        mint=b"\x01" * 32,
        subject=b"\x02" * 32,
        authority=b"\x03" * 32,
        latest_root_seq=latest,
        cutover_epoch=0,
        creator_wallet=b"\x04" * 32,
        creator_fee_bps=0,
        roots=tuple(roots),
    ).encode()


def cumulative(data: bytes | None, seq: int, assumed: set[int] | None = None) -> ChainView:
    ours = OurRoot("cumulative-v2", root_seq=seq, epoch=0, root=ROOT, dataset_hash=DATASET)
    return classify(ours, data, assumed_published=assumed or set())


def test_next_when_the_chain_is_exactly_one_behind() -> None:
    assert cumulative(config(4, {}), 5) == ChainView(Verdict.NEXT, "latest_root_seq 4", 4)


def test_on_chain_when_the_ring_slot_holds_our_root() -> None:
    data = config(6, {1: RootEntry(5, ROOT, DATASET, 77)})
    assert cumulative(data, 5) == ChainView(
        Verdict.ON_CHAIN, "slot 1 already holds root_seq 5 with our root", 6, 77
    )


def test_mismatch_when_the_slot_holds_another_root_or_dataset_hash() -> None:
    other_root = config(5, {1: RootEntry(5, b"\x99" * 32, DATASET, 77)})
    other_hash = config(5, {1: RootEntry(5, ROOT, b"\x98" * 32, 77)})
    assert cumulative(other_root, 5).verdict is Verdict.MISMATCH
    assert cumulative(other_hash, 5).verdict is Verdict.MISMATCH
    assert cumulative(other_root, 5).detail.startswith(
        f"slot 1 holds root_seq 5 with root {'99' * 32}"
    )


def test_mismatch_when_the_chain_is_ahead_or_behind() -> None:
    ahead = cumulative(config(9, {}), 5)
    behind = cumulative(config(2, {}), 5)
    assert (ahead.verdict, ahead.detail) == (
        Verdict.MISMATCH,
        "the chain is ahead: latest_root_seq 9 >= our root_seq 5, and the ring does not hold "
        "our root",
    )
    assert (behind.verdict, behind.detail) == (
        Verdict.MISMATCH,
        "the chain is behind: latest_root_seq 2 + 1 != our root_seq 5",
    )


def test_dry_run_assumes_its_earlier_roots_published() -> None:
    assert cumulative(config(2, {}), 5, {3, 4}).verdict is Verdict.NEXT
    assert cumulative(config(2, {}), 5, {4}).verdict is Verdict.MISMATCH


def test_missing_config_account_and_garbage_data() -> None:
    assert cumulative(None, 1).verdict is Verdict.MISSING
    assert cumulative(b"\x00" * 10, 1).verdict is Verdict.MISMATCH


def ring(latest: int, slots: dict[int, tuple[int, bytes]]) -> bytes:
    empty = ChannelSlot(0, bytes(32), 0, bytes(CHANNEL_BITMAP_BYTES))
    return ChannelState(
        version=1,
        bump=254,
        mint=b"\x01" * 32,
        streamer=b"\x02" * 32,
        latest_epoch=latest,
        slots=tuple(
            ChannelSlot(slots[i][0], slots[i][1], 0, bytes(CHANNEL_BITMAP_BYTES))
            if i in slots
            else empty
            for i in range(10)
        ),
    ).encode()


def ring_view(data: bytes | None, epoch: int) -> ChainView:
    return classify(OurRoot("ring-v0", 1, epoch, ROOT, DATASET), data)


def test_ring_verdicts() -> None:
    assert ring_view(None, 21).verdict is Verdict.NEXT
    assert ring_view(ring(20, {0: (20, b"\x05" * 32)}), 21).verdict is Verdict.NEXT
    assert ring_view(ring(21, {1: (21, ROOT)}), 21).verdict is Verdict.ON_CHAIN
    assert ring_view(ring(21, {1: (21, b"\x06" * 32)}), 21).verdict is Verdict.MISMATCH
    assert ring_view(ring(31, {1: (31, b"\x06" * 32)}), 21).verdict is Verdict.MISMATCH
    assert ring_view(ring(25, {5: (25, b"\x06" * 32)}), 21).verdict is Verdict.MISMATCH


def test_unknown_format_is_a_mismatch() -> None:
    view = classify(OurRoot("v9", 1, 1, ROOT, DATASET), None)
    assert view == ChainView(Verdict.MISMATCH, "unknown claim format 'v9'")


def global_config(latest: int, entries: dict[int, RootEntry]) -> bytes:
    roots = tuple(entries.get(i, EMPTY) for i in range(4))
    return GlobalRootConfig(
        version=1, bump=255, mint=b"\x01" * 32, latest_root_seq=latest, roots=roots
    ).encode()


def global_view(data: bytes | None, seq: int) -> ChainView:
    return classify(
        OurRoot("global-v5", root_seq=seq, epoch=9, root=ROOT, dataset_hash=DATASET), data
    )


def test_global_verdicts_follow_the_mints_config() -> None:
    assert global_view(global_config(1802, {}), 1803) == ChainView(
        Verdict.NEXT, "latest_root_seq 1802", 1802
    )
    published = global_config(1803, {3: RootEntry(1803, ROOT, DATASET, 55)})
    assert global_view(published, 1803).verdict is Verdict.ON_CHAIN
    assert global_view(global_config(1900, {}), 1803).verdict is Verdict.MISMATCH
    missing = global_view(None, 1803)
    assert missing.verdict is Verdict.MISSING
    assert "GlobalRootConfig account does not exist" in missing.detail
    assert "initialize_global_root" in missing.detail


def test_settlement_targets_pick_their_formats() -> None:
    assert target_formats("channel") == ("cumulative-v2", "ring-v0")
    assert target_formats("global-v5") == ("global-v5",)
    assert target_formats("global-v4") == ("global-v4",)
