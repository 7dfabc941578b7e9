"""judge_root_account: every standing of the module's table, for every format."""

from __future__ import annotations

import pytest

from aop.core.accounts import (
    CHANNEL_BITMAP_BYTES,
    ChannelConfigV2,
    ChannelSlot,
    ChannelState,
    GlobalRootConfig,
    RootEntry,
)
from aop.core.root_account import OurRoot, RootAccountJudgement, Standing, judge_root_account

OURS, OTHER, HASH, OTHER_HASH = b"\x11" * 32, b"\x99" * 32, b"\x22" * 32, b"\x98" * 32
EMPTY_ENTRY = RootEntry(0, bytes(32), bytes(32), 0)


def config(latest: int, *entries: RootEntry) -> bytes:
    roots = [EMPTY_ENTRY] * 4
    for entry in entries:
        roots[entry.seq % 4] = entry
    return ChannelConfigV2(
        1, 255, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, latest, 0, b"\x04" * 32, 0, tuple(roots)
    ).encode()


def ring(latest: int, slots: dict[int, tuple[int, bytes]]) -> bytes:
    held = [slots.get(i, (0, bytes(32))) for i in range(10)]
    bitmap = bytes(CHANNEL_BITMAP_BYTES)
    return ChannelState(
        1,
        254,
        b"\x01" * 32,
        b"\x02" * 32,
        latest,
        tuple(ChannelSlot(epoch, root, 0, bitmap) for epoch, root in held),
    ).encode()


def cumulative(data: bytes | None, seq: int) -> RootAccountJudgement:
    return judge_root_account(OurRoot("cumulative-v2", seq, 0, OURS, HASH), data)


def ring_v0(data: bytes | None, epoch: int) -> RootAccountJudgement:
    return judge_root_account(OurRoot("ring-v0", 0, epoch, OURS, HASH), data)


@pytest.mark.parametrize(
    ("data", "seq", "standing", "latest"),
    [
        (None, 5, Standing.ABSENT, None),
        (b"\x00" * 10, 5, Standing.UNDECODABLE, None),
        (config(6, RootEntry(5, OURS, HASH, 77)), 5, Standing.PUBLISHED, 6),
        (config(5, RootEntry(5, OTHER, HASH, 77)), 5, Standing.OTHER_ROOT, 5),
        (config(5, RootEntry(5, OURS, OTHER_HASH, 77)), 5, Standing.OTHER_ROOT, 5),
        (config(9), 5, Standing.AHEAD, 9),
        (config(5), 5, Standing.AHEAD, 5),  # latest is ours, but the entry was replaced
        (config(4), 5, Standing.NEXT, 4),
        (config(2), 5, Standing.BEHIND, 2),
    ],
)
def test_cumulative_standings(
    data: bytes | None, seq: int, standing: Standing, latest: int | None
) -> None:
    judged = cumulative(data, seq)
    assert (judged.standing, judged.latest, judged.index) == (standing, latest, 1)


def test_cumulative_facts_of_the_entry_and_the_held_seqs() -> None:
    judged = cumulative(
        config(6, RootEntry(5, OTHER, OTHER_HASH, 77), RootEntry(6, OURS, HASH, 80)), 5
    )
    assert judged == RootAccountJudgement(
        Standing.OTHER_ROOT,
        OurRoot("cumulative-v2", 5, 0, OURS, HASH),
        1,
        6,
        held_root=OTHER,
        held_dataset_hash=OTHER_HASH,
        published_slot=77,
        held_seqs=(5, 6),
    )
    undecodable = cumulative(b"\x00" * 10, 5)
    assert undecodable.error.startswith("ChannelConfigV2")


@pytest.mark.parametrize(
    ("data", "epoch", "standing", "latest", "slot_epoch"),
    [
        (None, 21, Standing.ABSENT, None, None),
        (b"\x00" * 10, 21, Standing.UNDECODABLE, None, None),
        (ring(21, {1: (21, OURS)}), 21, Standing.PUBLISHED, 21, 21),
        (ring(21, {1: (21, OTHER)}), 21, Standing.OTHER_ROOT, 21, 21),
        (ring(31, {1: (31, OTHER)}), 21, Standing.AHEAD, 31, 31),  # the slot moved on
        (ring(25, {5: (25, OTHER)}), 21, Standing.AHEAD, 25, 0),  # a later epoch published
        (ring(20, {0: (20, OTHER)}), 21, Standing.NEXT, 20, 0),
        (ring(11, {1: (11, OTHER)}), 21, Standing.NEXT, 11, 11),  # an older epoch in the slot
        (ring(21, {1: (21, bytes(32))}), 21, Standing.NEXT, 21, 21),  # zero root: empty slot
    ],
)
def test_ring_standings(
    data: bytes | None,
    epoch: int,
    standing: Standing,
    latest: int | None,
    slot_epoch: int | None,
) -> None:
    judged = ring_v0(data, epoch)
    assert (judged.standing, judged.latest, judged.index, judged.slot_epoch) == (
        standing,
        latest,
        1,
        slot_epoch,
    )


def test_ring_never_judges_behind_and_ignores_root_seq_and_hash() -> None:
    """Epochs may skip: a ring far behind is still NEXT; root_seq and dataset_hash do not
    enter the ring's judgement."""
    far = ring(3, {3: (3, OTHER)})
    assert ring_v0(far, 21).standing is Standing.NEXT
    published = ring(21, {1: (21, OURS)})
    other = judge_root_account(OurRoot("ring-v0", 99, 21, OURS, OTHER_HASH), published)
    assert other.standing is Standing.PUBLISHED


def test_unknown_format_is_judged_before_the_data() -> None:
    for data in (None, config(4)):
        judged = judge_root_account(OurRoot("v9", 5, 0, OURS, HASH), data)
        assert judged.standing is Standing.UNKNOWN_FORMAT


def global_config(latest: int, *entries: RootEntry) -> bytes:
    roots = [EMPTY_ENTRY] * 4
    for entry in entries:
        roots[entry.seq % 4] = entry
    return GlobalRootConfig(1, 255, b"\x01" * 32, latest, tuple(roots)).encode()


@pytest.mark.parametrize("format_name", ["global-v4", "global-v5"])
@pytest.mark.parametrize(
    ("data", "seq", "standing", "latest"),
    [
        (None, 1803, Standing.ABSENT, None),
        (config(1802), 1803, Standing.UNDECODABLE, None),  # a ChannelConfigV2 is not one
        (global_config(1803, RootEntry(1803, OURS, HASH, 7)), 1803, Standing.PUBLISHED, 1803),
        (global_config(1803, RootEntry(1803, OTHER, HASH, 7)), 1803, Standing.OTHER_ROOT, 1803),
        (global_config(1810), 1803, Standing.AHEAD, 1810),
        (global_config(1802), 1803, Standing.NEXT, 1802),
        (global_config(1800), 1803, Standing.BEHIND, 1800),
    ],
)
def test_global_standings_follow_the_ring_of_the_mints_config(
    format_name: str, data: bytes | None, seq: int, standing: Standing, latest: int | None
) -> None:
    judged = judge_root_account(OurRoot(format_name, seq, 0, OURS, HASH), data)
    assert (judged.standing, judged.latest, judged.index) == (standing, latest, seq % 4)
