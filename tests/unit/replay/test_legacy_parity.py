"""The comparison with the legacy aggregator, in memory: the query rule, the root decoding,
the verdicts, the epochs a round compares, and the counters."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aop.replay.errors import LegacyParityError, UnknownChannelError
from aop.replay.legacy_metrics import LEGACY_REGISTRY, record_check, start_run
from aop.replay.legacy_parity import (
    Check,
    LegacyComparison,
    judge,
    legacy_plan,
    read_ours,
)
from aop.replay.legacy_query import DEFAULT_LEGACY_QUERY, check_legacy_query, decode_legacy_root
from tests.support.fold_logs import config_for
from tests.support.signal_logs import attention_config_for

L = 3600
#: 2026-11-18 00:00 UTC.
E0 = 1_794_960_000
E1, E2, E3 = E0 + L, E0 + 2 * L, E0 + 3 * L
A, B = b"\xaa" * 32, b"\xbb" * 32
FAR_LATER_MS = (E3 + 10 * L) * 1000

# -- the query and the answer -------------------------------------------------------------


def test_default_query_is_the_rebuild_plans_daily_check() -> None:
    assert check_legacy_query(DEFAULT_LEGACY_QUERY) == (
        "SELECT root FROM roots WHERE epoch = %(epoch)s AND channel = %(channel)s"
    )


def test_a_query_with_both_named_parameters_and_escaped_percents_is_accepted() -> None:
    query = (
        "SELECT '0x' || root_hex FROM sealed WHERE name LIKE 'tw%%' AND channel = %(channel)s "
        "AND hour = %(epoch)s"
    )
    assert check_legacy_query(query) == query


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("SELECT root FROM roots WHERE epoch = %(epoch)s", "missing %(channel)s"),
        ("SELECT root FROM roots", "missing %(epoch)s, %(channel)s"),
        (
            "SELECT root FROM roots WHERE epoch = %s AND channel = %(channel)s",
            "missing %(epoch)s; positional %s",
        ),
        (
            "SELECT root FROM roots WHERE epoch = %(epoch)s AND channel = %(channel)s "
            "AND v = %(version)s",
            "unknown parameter %(version)s",
        ),
        ("SELECT root FROM roots WHERE epoch = {epoch} AND channel = '{channel}'", "missing"),
    ],
)
def test_a_query_without_the_named_parameters_is_refused_naming_them(
    query: str, problem: str
) -> None:
    with pytest.raises(LegacyParityError) as refused:
        check_legacy_query(query)
    message = str(refused.value)
    assert message.startswith(
        "--legacy-query must use the named parameters %(epoch)s and %(channel)s and no other "
        f"placeholder (got {problem}"
    )
    assert repr(query) in message


@pytest.mark.parametrize(
    "value",
    [
        A,
        memoryview(A),
        "aa" * 32,
        "0x" + "AA" * 32,
        "0X" + "aA" * 32,
        " " + "aa" * 32 + "\n",
    ],
)
def test_a_legacy_root_reads_as_bytea_hex_or_0x_hex(value: object) -> None:
    assert decode_legacy_root(value, "lofigirl", E0) == A


def test_a_null_legacy_root_is_no_root() -> None:
    assert decode_legacy_root(None, "lofigirl", E0) is None


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (b"\x01" * 31, "bytea of 31 bytes"),
        ("aa" * 31, "text '" + "aa" * 31 + "'"),
        ("0x" + "zz" * 32, "text '0x" + "zz" * 32 + "'"),
        ("4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi", "text '4vJ9JU1bJJE96FWSJKvHsmmF"),
        (12, "a int"),
    ],
)
def test_any_other_legacy_root_is_refused_naming_channel_epoch_and_value(
    value: object, got: str
) -> None:
    with pytest.raises(LegacyParityError) as refused:
        decode_legacy_root(value, "lofigirl", E0)
    message = str(refused.value)
    assert message.startswith(f"the legacy root of channel 'lofigirl' epoch {E0} must be 32 bytes")
    assert f"(got {got}" in message


# -- verdicts -------------------------------------------------------------------------------


def _judge(ours: bytes | None, legacy: bytes | None, now_ms: int, grace_s: int = 600) -> str:
    check = judge("lofigirl", E0, ours, legacy, epoch_seconds=L, grace_s=grace_s, now_ms=now_ms)
    return "none" if check is None else check.verdict


def test_judge_both_sides() -> None:
    """Equal bytes MATCH, different MISMATCH, whenever (no grace needed)."""
    assert _judge(A, A, E0 * 1000) == "MATCH"
    assert _judge(A, B, E0 * 1000) == "MISMATCH"
    assert _judge(None, None, FAR_LATER_MS) == "none"


def test_judge_one_side_is_pending_until_grace_after_the_epoch_ended() -> None:
    """The epoch ends at E1; with a 600 s grace a lone root is PENDING before E1 + 600 s."""
    edge = (E1 + 600) * 1000
    assert _judge(A, None, edge - 1) == "PENDING"
    assert _judge(None, A, edge - 1) == "PENDING"
    assert _judge(A, None, edge) == "MISSING_LEGACY"
    assert _judge(None, A, edge) == "MISSING_OURS"
    assert _judge(None, A, E1 * 1000, grace_s=0) == "MISSING_OURS"


def test_check_lines_name_verdict_channel_epoch_and_roots() -> None:
    assert Check("lofigirl", E0, "MATCH", A, A).line() == (
        f"MATCH lofigirl epoch {E0} (2026-11-18T00:00Z): root 0x{'aa' * 32}"
    )
    assert Check("ansem", E1, "MISMATCH", A, B).line() == (
        f"MISMATCH ansem epoch {E1} (2026-11-18T01:00Z): ours 0x{'aa' * 32} legacy 0x{'bb' * 32}"
    )
    assert (
        Check("ansem", E1, "MISSING_LEGACY", A, None)
        .line()
        .endswith(f"ours 0x{'aa' * 32} legacy none")
    )


# -- the plan -------------------------------------------------------------------------------

FORMATS = {"lofigirl": "ring-v0-legacy", "ansem": "ring-v0-legacy"}
CONFIG = attention_config_for(["lofigirl", "ansem", "mixed"], partitions=2, formats=FORMATS)


def test_the_plan_takes_every_ring_v0_legacy_channel_by_default() -> None:
    plan = legacy_plan(CONFIG)
    assert CONFIG.attention is not None
    specs = {c.name: c for c in CONFIG.attention.channels}
    assert [(c.name, c.key, c.partition) for c in plan.channels] == [
        (n, specs[n].key, specs[n].partition) for n in ("ansem", "lofigirl")
    ]
    assert sorted(k for keys in plan.partition_keys.values() for k in keys) == sorted(
        s.key for s in specs.values()
    )
    assert (plan.epoch_seconds, plan.first, plan.last, plan.grace_s) == (L, None, None, 900)
    assert [c.name for c in legacy_plan(CONFIG, ["LOFIGIRL"]).channels] == ["lofigirl"]


@pytest.mark.parametrize(
    ("names", "options", "message"),
    [
        (["mixed"], {}, "channel 'mixed' has attention format cumulative-v2: only ring-v0-legacy"),
        ([], {"first": E0 + 1}, f"--from must be an epoch id: .* {L} \\(got {E0 + 1}\\)"),
        ([], {"last": -L}, "--to must be an epoch id"),
        ([], {"first": E1, "last": E0}, f"--from must not be after --to \\(got {E1} > {E0}\\)"),
        ([], {"grace_s": -1}, "--grace must be >= 0 seconds"),
    ],
)
def test_the_plan_refuses_bad_channels_and_epochs(
    names: list[str], options: dict[str, int], message: str
) -> None:
    with pytest.raises(LegacyParityError, match=message):
        legacy_plan(CONFIG, names, **options)


def test_the_plan_refuses_unknown_channels_and_deployments_without_legacy_channels() -> None:
    with pytest.raises(UnknownChannelError, match="'nope' is not one of AOP_CHANNELS"):
        legacy_plan(CONFIG, ["nope"])
    with pytest.raises(LegacyParityError, match="no channel's attention format is ring-v0"):
        legacy_plan(attention_config_for(["mixed"], partitions=2))
    with pytest.raises(LegacyParityError, match="AOP_ATTENTION_ENABLED is false"):
        legacy_plan(config_for(["lofigirl"], partitions=2))


# -- rounds ---------------------------------------------------------------------------------


class FakeStore:
    """Attention roots as the projections hold them: key -> {epoch: (root, closed_at_ms)}."""

    def __init__(self, roots: dict[str, dict[int, tuple[bytes, int]]], formats: dict[str, str]):
        self.roots = roots
        self.formats = formats

    def attention_closed_ms(self, keys: Sequence[str]) -> dict[str, int]:
        return {k: max(ms for _, ms in self.roots[k].values()) for k in keys if self.roots.get(k)}

    def epoch_roots(self, keys: Sequence[str], claim_format: str) -> list[tuple[str, int, bytes]]:
        return [
            (k, e, r)
            for k in keys
            if self.formats.get(k) == claim_format
            for e, (r, _) in sorted(self.roots.get(k, {}).items())
        ]


class DictLegacy:
    def __init__(self, roots: dict[tuple[str, int], bytes]) -> None:
        self.roots = roots
        self.asked: list[tuple[str, int]] = []

    def root(self, channel: str, epoch: int) -> bytes | None:
        self.asked.append((channel, epoch))
        return self.roots.get((channel, epoch))


def _keys() -> dict[str, str]:
    assert CONFIG.attention is not None
    return {c.name: c.key for c in CONFIG.attention.channels}


def _partners() -> tuple[str, str]:
    """(a ring-v0-legacy channel sharing its partition with 'mixed', the other one)."""
    assert CONFIG.attention is not None
    part = {c.name: c.partition for c in CONFIG.attention.channels}
    same = [n for n in FORMATS if part[n] == part["mixed"]]
    other = [n for n in FORMATS if part[n] != part["mixed"]]
    assert same and other, part  # the routing puts one of the two beside 'mixed'
    return same[0], other[0]


def test_a_partition_is_closed_as_far_as_any_of_its_attention_roots_says() -> None:
    """'mixed' (cumulative-v2) closed E2 on its partition: its ring-v0-legacy neighbour is
    compared through E2 though its own last root is of E0; the other partition's channel
    through E0 (its watermark closed E0 only)."""
    plan = legacy_plan(CONFIG)
    keys = _keys()
    beside, apart = _partners()
    store = FakeStore(
        {
            keys[beside]: {E0: (A, (E1 + 5) * 1000)},
            keys["mixed"]: {E2: (B, E3 * 1000 + 1)},
            keys[apart]: {E0: (B, E1 * 1000)},
        },
        {keys[beside]: "ring-v0-legacy", keys[apart]: "ring-v0-legacy", keys["mixed"]: "c"},
    )
    ours = read_ours(store, plan)
    assert ours.roots == {(beside, E0): A, (apart, E0): B}
    assert ours.closed_through == {beside: E2, apart: E0}
    comparison = LegacyComparison(plan)
    expected = [(beside, E0), (beside, E1), (beside, E2), (apart, E0)]
    assert comparison.targets(ours) == sorted(expected)


def test_rounds_compare_again_all_but_the_matched_and_report_only_changes() -> None:
    plan = legacy_plan(CONFIG, ["lofigirl"], grace_s=0)
    key = _keys()["lofigirl"]
    closed = {E0: (A, E1 * 1000), E1: (B, E2 * 1000)}
    store = FakeStore({key: dict(closed)}, {key: "ring-v0-legacy"})
    legacy = DictLegacy({("lofigirl", E0): A, ("lofigirl", E1): A})
    comparison = LegacyComparison(plan)

    first = comparison.round(read_ours(store, plan), legacy, now_ms=FAR_LATER_MS)
    assert [(c.epoch, c.verdict) for c in first.checks] == [(E0, "MATCH"), (E1, "MISMATCH")]
    assert first.changed == first.checks
    assert comparison.exit_code() == 1

    # the legacy fixes E1, ours closes E2 with a root the legacy lacks
    legacy.roots[("lofigirl", E1)] = B
    store.roots[key][E2] = (A, E3 * 1000)
    legacy.asked.clear()
    second = comparison.round(read_ours(store, plan), legacy, now_ms=FAR_LATER_MS)
    assert legacy.asked == [("lofigirl", E1), ("lofigirl", E2)]
    assert [(c.epoch, c.verdict) for c in second.changed] == [
        (E1, "MATCH"),
        (E2, "MISSING_LEGACY"),
    ]
    assert comparison.summary() == (
        "SUMMARY 3 (channel, epoch) over 2 round(s): 2 MATCH, 0 MISMATCH, 0 MISSING_OURS, "
        "1 MISSING_LEGACY, 0 PENDING; exit 1"
    )
    legacy.roots[("lofigirl", E2)] = A
    third = comparison.round(read_ours(store, plan), legacy, now_ms=FAR_LATER_MS)
    assert [(c.epoch, c.verdict) for c in third.changed] == [(E2, "MATCH")]
    assert comparison.exit_code() == 0
    assert comparison.summary() == (
        "SUMMARY 3 (channel, epoch) over 3 round(s): 3 MATCH, 0 MISMATCH, 0 MISSING_OURS, "
        "0 MISSING_LEGACY, 0 PENDING; exit 0"
    )


def test_from_and_to_bound_the_epochs_and_legacy_only_epochs_are_missing_ours() -> None:
    """--from before our first root finds the legacy's earlier epoch; --to stops early."""
    plan = legacy_plan(CONFIG, ["lofigirl"], first=E0 - L, last=E1, grace_s=0)
    key = _keys()["lofigirl"]
    store = FakeStore({key: {E0: (A, E1 * 1000), E2: (A, E3 * 1000)}}, {key: "ring-v0-legacy"})
    legacy = DictLegacy({("lofigirl", E0 - L): B, ("lofigirl", E0): A})
    comparison = LegacyComparison(plan)
    result = comparison.round(read_ours(store, plan), legacy, now_ms=FAR_LATER_MS)
    assert legacy.asked == [("lofigirl", E0 - L), ("lofigirl", E0), ("lofigirl", E1)]
    assert [(c.epoch, c.verdict) for c in result.checks] == [
        (E0 - L, "MISSING_OURS"),
        (E0, "MATCH"),
    ]


def test_nothing_compared_is_exit_1_and_pending_alone_too() -> None:
    plan = legacy_plan(CONFIG, ["lofigirl"])
    comparison = LegacyComparison(plan)
    empty = FakeStore({}, {})
    assert comparison.round(read_ours(empty, plan), DictLegacy({}), now_ms=0).checks == []
    assert comparison.exit_code() == 1
    assert comparison.summary().endswith("; exit 1 (nothing compared)")
    key = _keys()["lofigirl"]
    store = FakeStore({key: {E0: (A, E1 * 1000)}}, {key: "ring-v0-legacy"})
    result = comparison.round(read_ours(store, plan), DictLegacy({}), now_ms=E1 * 1000)
    assert [c.verdict for c in result.checks] == ["PENDING"]
    assert comparison.exit_code() == 1


# -- counters -------------------------------------------------------------------------------


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, sorted labels) -> value of a Prometheus text exposition (`_created` left out)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if not s.name.endswith("_created")
    }


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return metric_samples(generate_latest(LEGACY_REGISTRY).decode())


def test_every_channel_series_starts_at_0_and_each_verdict_counts_its_own() -> None:
    start_run(["lofigirl", "ansem"], interval_s=300)
    for verdict in ("MATCH", "MISMATCH", "MISMATCH", "MISSING_OURS", "MISSING_LEGACY", "PENDING"):
        record_check("lofigirl", verdict)
    got = _samples()
    for channel, match, mismatch, ours, legacy in (
        ("lofigirl", 1, 2, 1, 1),
        ("ansem", 0, 0, 0, 0),
    ):
        assert got[("aop_parity_legacy_matched_total", (("channel", channel),))] == match
        assert got[("aop_parity_legacy_mismatched_total", (("channel", channel),))] == mismatch
        missing = "aop_parity_legacy_missing_total"
        assert got[(missing, (("channel", channel), ("side", "ours")))] == ours
        assert got[(missing, (("channel", channel), ("side", "legacy")))] == legacy
    assert got[("aop_parity_legacy_interval_seconds", ())] == 300
    assert got[("aop_parity_legacy_running", ())] == 1
    start_run(["ansem"], interval_s=0)
    assert ("aop_parity_legacy_matched_total", (("channel", "lofigirl"),)) not in _samples()
