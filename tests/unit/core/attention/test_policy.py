"""The attention policy on examples worked out by hand (the numbers are in the comments)."""

from __future__ import annotations

import pytest

from aop.core.attention.policy import AttentionPolicy, InvalidPolicyError, per_weight_amount
from aop.core.attention.weights import InvalidWeightsError, weight_table

ALICE, BOB, CAROL, DAVE = (bytes([n]) * 32 for n in (0x0A, 0x0B, 0x0C, 0x0D))


def _weights(policy: AttentionPolicy, signals: list[tuple[str, int]]) -> int:
    return sum(policy.weight(kind, value) for kind, value in signals)


#: the users of the examples and their signals in one (channel, epoch):
#:   alice: presence 1, sub 1, bits 250 -> 1 + 10 + 0.01*250 = 13.5 -> 1350 hundredths
#:   bob:   presence 1, raid 3          -> 1 + 0.1*3        =  1.3 ->  130
#:   carol: gift 2, resub 1             -> 5*2 + 10         = 20   -> 2000
#:   dave:  chat 5                      -> 0 (the legacy gave messages no weight)
SIGNALS = {
    ALICE: [("presence", 1), ("sub", 1), ("bits", 250)],
    BOB: [("presence", 1), ("raid", 3)],
    CAROL: [("gift", 2), ("resub", 1)],
    DAVE: [("chat", 5)],
}


def test_legacy_weights_in_hundredths() -> None:
    policy = AttentionPolicy()
    got = {user: _weights(policy, signals) for user, signals in SIGNALS.items()}
    assert got == {ALICE: 1350, BOB: 130, CAROL: 2000, DAVE: 0}


def test_per_weight_pays_the_legacy_80_ccm_per_weight() -> None:
    """amount = weight x 80 x 10^9: alice 13.5 -> 1,080,000,000,000; bob 1.3 ->
    104,000,000,000; carol 20 -> 1,600,000,000,000; dave nothing. Emission = their sum,
    2,784,000,000,000."""
    policy = AttentionPolicy()
    weights = {user: _weights(policy, signals) for user, signals in SIGNALS.items()}
    amounts, emission = policy.allocate(weights)
    assert amounts == {
        ALICE: 1_080_000_000_000,
        BOB: 104_000_000_000,
        CAROL: 1_600_000_000_000,
    }
    assert emission == 2_784_000_000_000


def test_per_weight_rounds_half_up_like_math_round() -> None:
    """With 7 base units per weight: alice 13.5 x 7 = 94.5 -> 95 (half up); bob 1.3 x 7 = 9.1
    -> 9; carol 20 x 7 = 140 exactly; a weight of 0.07 (7 bits) x 7 = 0.49 -> 0 (no leaf)."""
    policy = AttentionPolicy(reward_per_weight=7)
    amounts, emission = policy.allocate({ALICE: 1350, BOB: 130, CAROL: 2000, DAVE: 7})
    assert amounts == {ALICE: 95, BOB: 9, CAROL: 140}
    assert emission == 244
    assert [per_weight_amount(w, 1) for w in (49, 50, 51, 149, 150)] == [0, 1, 1, 1, 2]


def test_pro_rata_splits_the_emission_by_largest_remainder() -> None:
    """E = 1000 over weights 1350 / 130 / 2000 (total 3480):
    alice 1,350,000 / 3480 = 387 rem 3240; bob 130,000 / 3480 = 37 rem 1240; carol
    2,000,000 / 3480 = 574 rem 2480. Floors sum to 998: the 2 units left go to the two largest
    remainders, alice (3240) and carol (2480) -> 388 / 37 / 575 = 1000."""
    policy = AttentionPolicy(mode="pro-rata", emission=1000)
    amounts, emission = policy.allocate({ALICE: 1350, BOB: 130, CAROL: 2000, DAVE: 0})
    assert amounts == {ALICE: 388, BOB: 37, CAROL: 575}
    assert emission == 1000


def test_pro_rata_ties_go_to_the_lower_payee_bytes() -> None:
    """E = 3 over two equal weights: 1 each, remainders tie, the third unit goes to 0x0a...
    (alice) before 0x0b... (bob), whatever the input order."""
    policy = AttentionPolicy(mode="pro-rata", emission=3)
    assert policy.allocate({BOB: 5, ALICE: 5}) == ({ALICE: 2, BOB: 1}, 3)


def test_nobody_with_weight_pays_nothing_in_either_mode() -> None:
    for policy in (AttentionPolicy(), AttentionPolicy(mode="pro-rata", emission=10)):
        assert policy.allocate({DAVE: 0}) == ({}, 0)
        assert policy.allocate({}) == ({}, 0)


def test_a_per_channel_table_overrides_the_legacy_weights() -> None:
    """chat at 0.05 per message and listening at 0.01 per second: 5 messages + 600 s ->
    25 + 600 = 625 hundredths (6.25)."""
    policy = AttentionPolicy(weights=weight_table({"chat": 5, "listen_seconds": 1}))
    assert policy.weight("chat", 5) + policy.weight("listen_seconds", 600) == 625
    assert policy.weight("sub", 1) == 1000


def test_bad_tables_and_policies_are_refused_naming_the_value() -> None:
    with pytest.raises(InvalidWeightsError, match=r"signal kind must be one of .* \(got 'hug'\)"):
        weight_table({"hug": 1})
    with pytest.raises(InvalidWeightsError, match=r"weight of 'bits' must be an integer >= 0"):
        weight_table({"bits": -1})
    with pytest.raises(InvalidPolicyError, match=r"attention mode must be one of .*'lottery'"):
        AttentionPolicy(mode="lottery")  # type: ignore[arg-type]
    with pytest.raises(InvalidPolicyError, match=r"emission must be an integer in 0\.\."):
        AttentionPolicy(mode="pro-rata", emission=2**64)
