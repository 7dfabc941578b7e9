"""A replay folds with the deployment's configuration narrowed to the channels it replays:
the roots of those channels are byte-identical to the full fold's."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aop.core.fold import fold_log
from aop.core.fold_config import ChannelSpec
from aop.core.fold_output import RootOutput
from aop.replay.engine import ChannelTarget, narrow_config, root_account
from tests.support.fold_logs import config_for, random_log

CONFIG = config_for(
    ["alpha", "beta", "gamma", "delta"],
    partitions=2,
    epoch_slots=40,
    emission={"alpha": 1_000_000, "beta": 7, "gamma": 10**12, "delta": 0},
    formats={"gamma": "ring-v0"},
    first_root_seq={"beta": 41},
)


def records(seed: int) -> list[tuple[int, int, dict[str, Any]]]:
    offsets: dict[int, int] = {}
    out = []
    for partition, batch in random_log(CONFIG, seed=seed, batches=18, events_per_batch=6):
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        out.append((partition, offset, batch))
    return out


def encoded(roots: list[RootOutput]) -> list[tuple[bytes, dict[str, Any], tuple[Any, ...]]]:
    return [(r.key, r.epoch_root, r.chunks) for r in roots]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10_000), st.sampled_from(CONFIG.channels))
def test_narrowed_fold_emits_the_full_folds_roots_of_its_channel(
    seed: int, spec: ChannelSpec
) -> None:
    """Same EpochRoot records (input offsets included) and LeafChunks, in the same order."""
    log = records(seed)
    full = [r for r in fold_log(log, CONFIG) if r.channel == spec.name]
    narrow = fold_log(log, narrow_config(CONFIG, [spec]))
    assert encoded(narrow) == encoded(full)


def test_narrow_config_keeps_everything_but_the_channel_list() -> None:
    beta = next(s for s in CONFIG.channels if s.name == "beta")
    narrowed = narrow_config(CONFIG, [beta])
    assert narrowed.channels == (beta,)
    assert (narrowed.clock, narrowed.partitions, narrowed.program_id, narrowed.mint) == (
        CONFIG.clock,
        CONFIG.partitions,
        CONFIG.program_id,
        CONFIG.mint,
    )


def test_targets_say_which_roots_they_want_and_when_reading_may_stop() -> None:
    """seqs: stop once the last asked root_seq is out; epoch: once the epoch closed; all:
    never before the end."""
    alpha = next(s for s in CONFIG.channels if s.name == "alpha")
    key = root_account(CONFIG, alpha)
    seqs = ChannelTarget(alpha, key, "seqs", frozenset({2, 4}))
    assert [seqs.satisfied(last, 9) for last in (None, 2, 3, 4, 5)] == [
        False,
        False,
        False,
        True,
        True,
    ]
    epoch = ChannelTarget(alpha, key, "epoch", epoch=3)
    assert [epoch.satisfied(None, open_epoch) for open_epoch in (2, 3, 4)] == [False, False, True]
    assert ChannelTarget(alpha, key, "all").satisfied(99, 99) is False


def test_root_account_is_the_key_of_the_formats_roots() -> None:
    """cumulative-v2: the ChannelConfigV2 PDA; ring-v0: the ChannelState PDA (what the fold
    puts in EpochRoot.channel_config)."""
    roots = fold_log(records(3), CONFIG)
    for spec in CONFIG.channels:
        keys = {r.key.decode() for r in roots if r.channel == spec.name}
        assert keys <= {root_account(CONFIG, spec)}
    assert {r.channel for r in roots} >= {"alpha", "gamma"}
