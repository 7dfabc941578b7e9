"""`aop combine` after the roots purge, on the real broker: a new combiner process resumes
from the last GlobalRoot over purged aop.epoch.roots and aop.global.roots and writes, for the
next epochs' channel roots, the pure combiner's global roots byte for byte (root,
dataset_hash, leaf chunks), as if nothing had been purged.

The purge points are the rule's (`log.purge_point`) over inputs derived here from the
records produced: the projector's committed offset = each partition's end, the headers of
the newest K = 1 root of each account, and the newest GlobalRoot's sources and resume offsets.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS
from aop.log.last_root import last_global_root
from aop.log.purge import delete_below
from aop.log.purge_point import KeptRoot, combiner_floor, kept_floor, purge_points
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.runtime.settings import Settings
from tests.integration import test_combiner as base

# fixtures (pytest finds them in this module's namespace)
combine_env = base.combine_env
combine_settings = base.combine_settings
combiners = base.combiners

CODEC = base.CODEC
HEADERS = ("EpochRoot", "AttentionRoot", "GlobalRoot")


def global_from(settings: Settings, start: int) -> list[tuple[int, str, bytes]]:
    """The committed records of aop.global.roots from `start`: (offset, type, value bytes)."""
    topic = settings.topic(GLOBAL_ROOTS)
    stop = log_bounds(settings, topic, [0])[0].stop
    out = []
    with LogReader(settings, [ReadRange(topic, 0, start, stop)]) as reader:
        for batch in reader.batches():
            for _, _, offset, value in batch:
                out.append((offset, CODEC.decode(value)[0], value))
    return out


def purge(settings: Settings, roots: list[KeptRoot]) -> tuple[dict[int, int], dict[int, int]]:
    """Purge both roots topics by the rule; returns their new log starts."""
    epoch, glob = settings.topic(EPOCH_ROOTS), settings.topic(GLOBAL_ROOTS)
    parts = range(settings.chain_partitions)
    newest = last_global_root(settings, CODEC)
    assert newest is not None
    epoch_points = purge_points(
        parts,
        committed={p: b.stop for p, b in log_bounds(settings, epoch, parts).items()},
        kept=kept_floor(roots, kept=1),
        combiner=combiner_floor(newest.record),
    )
    global_roots = [
        KeptRoot("global", i, 0, offset)
        for i, (offset, name, _) in enumerate(global_from(settings, 0))
        if name == "GlobalRoot"
    ]
    global_points = purge_points(
        [0],
        committed={0: log_bounds(settings, glob, [0])[0].stop},
        kept=kept_floor(global_roots, kept=1),
    )
    assert global_points == {0: global_roots[-1].offset}
    return delete_below(settings, epoch, epoch_points), delete_below(settings, glob, global_points)


def test_a_restarted_combiner_over_purged_roots_topics_writes_the_reference_roots(
    combine_settings: Settings, combiners: Callable[..., base.Combiner]
) -> None:
    settings = combine_settings
    records = base.fold_output(settings, seed=14)
    markers = [i for i, r in enumerate(records) if r[2] == "EpochClosed"]
    cut = next(i for i in markers if i >= len(records) // 2) + 1  # after an epoch's marker
    placed = base.produce(settings, records[:cut])
    before = base.expected_roots(settings, records[:cut], placed)
    assert len(before) >= 2
    first = combiners()
    base.wait_for_roots(settings, len(before))
    time.sleep(1.0)  # nothing more may come
    assert first.stop() == 0
    written = global_from(settings, 0)
    assert [(name, value) for _, name, value in written] == base.encoded(before)
    end = written[-1][0] + 1

    headers = [
        KeptRoot(str(value["channel_config"]), int(value["root_seq"]), part, offset)
        for (part, _, name, value), (_, offset) in zip(records[:cut], placed, strict=True)
        if name in HEADERS
    ]
    epoch_starts, global_starts = purge(settings, headers)
    assert any(start > 0 for start in epoch_starts.values()), epoch_starts
    assert global_starts[0] > 0
    assert log_bounds(settings, settings.topic(GLOBAL_ROOTS), [0])[0].low == global_starts[0]

    second = combiners()  # a new process: it recovers from the log
    placed += base.produce(settings, records[cut:])
    expected = base.expected_roots(settings, records, placed)
    assert expected[: len(before)] == before
    after = len(expected) - len(before)
    assert after >= 2
    deadline = time.monotonic() + 90
    while sum(1 for _, name, _ in global_from(settings, end) if name == "GlobalRoot") < after:
        assert time.monotonic() < deadline, f"{after} global roots not written in 90 s"
        time.sleep(0.5)
    time.sleep(1.0)
    assert second.stop() == 0
    got = [(name, value) for _, name, value in global_from(settings, end)]
    assert got == base.encoded(expected[len(before) :])
