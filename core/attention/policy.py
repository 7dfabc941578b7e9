"""What a closed attention epoch pays: per weight (the legacy) or pro rata of an emission.

The payees of an epoch are its participants' wallets (a cumulative-v2 channel) or the
participants themselves (a ring-v0-legacy channel: one claim per user, `core.attention.
legacy`); each payee's weight is the sum of its participants' weights (hundredths,
`core.attention.weights`). Payees of weight 0 get nothing and no leaf.

* per-weight (the legacy aggregator's `amount = round(weight × BASE_REWARD_PER_WEIGHT ×
  viewerRatio × 10^decimals)`, reference §11): with W a payee's weight in hundredths and R
  the reward per weight unit in base units (`AOP_ATTENTION_REWARD_PER_WEIGHT`, the legacy's
  80 × 10^9: 80 CCM of 9 decimals),

      amount = floor((W × R + 50) / 100)

  i.e. W × R / 100 rounded half up, as JavaScript's `Math.round` rounds a positive number.
  With R a multiple of 100 (the legacy's is) the division is exact and the amount is the
  legacy's to the unit whenever its float product was exact to within 0.5 (below 2^53 base
  units, 9 × 10^6 CCM per user and epoch). viewerRatio is 1: the legacy's streamer share
  (`CLS_STREAMER_RATIO`, default 0) is not modelled. The epoch's emission is then the sum of
  the amounts.
* pro-rata: the channel's fixed emission E per attention epoch (`AOP_ATTENTION_EMISSIONS`)
  is split over the payees' weights with `core.policy.split_emission`, the stake-time rule:
  floor shares, the remainder one unit each to the largest remainders, ties by payee bytes
  (wallet bytes; a ring-v0-legacy payee is its user_hash). The split sums to E exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from aop.core.attention.weights import LEGACY_WEIGHTS, WEIGHT_UNIT, weight_table
from aop.core.errors import CoreError
from aop.core.policy import split_emission
from aop.core.validation import U64_MAX

__all__ = [
    "ATTENTION_MODES",
    "LEGACY_REWARD_PER_WEIGHT",
    "AttentionMode",
    "AttentionPolicy",
    "InvalidPolicyError",
    "per_weight_amount",
]

AttentionMode = Literal["per-weight", "pro-rata"]
ATTENTION_MODES: tuple[AttentionMode, ...] = ("per-weight", "pro-rata")

#: the legacy's BASE_REWARD_PER_WEIGHT (80) in base units of a 9-decimal mint.
LEGACY_REWARD_PER_WEIGHT = 80 * 10**9


class InvalidPolicyError(CoreError, ValueError):
    """Raised when an attention policy's mode, reward or emission is out of range."""


def per_weight_amount(weight: int, reward_per_weight: int) -> int:
    """`weight` hundredths × `reward_per_weight` / 100, rounded half up (module docstring)."""
    return (weight * reward_per_weight + WEIGHT_UNIT // 2) // WEIGHT_UNIT


@dataclass(frozen=True)
class AttentionPolicy:
    """How one channel's attention epochs pay (module docstring).

    Raises:
        InvalidPolicyError: an unknown mode, or a reward or emission that is not a u64.
        InvalidWeightsError: a bad weight table.
    """

    mode: AttentionMode = "per-weight"
    #: kind -> hundredths of a weight unit per unit of the signal's value.
    weights: Mapping[str, int] = field(default_factory=lambda: LEGACY_WEIGHTS)
    #: per-weight: base units per weight unit (100 hundredths).
    reward_per_weight: int = LEGACY_REWARD_PER_WEIGHT
    #: pro-rata: base units per channel and attention epoch.
    emission: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ATTENTION_MODES:
            raise InvalidPolicyError(
                f"attention mode must be one of {', '.join(ATTENTION_MODES)} (got {self.mode!r})"
            )
        for name in ("reward_per_weight", "emission"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= U64_MAX:
                raise InvalidPolicyError(
                    f"{name} must be an integer in 0..{U64_MAX} (got {value!r})"
                )
        object.__setattr__(self, "weights", weight_table(self.weights))

    def weight(self, kind: str, value: int) -> int:
        """The weight in hundredths of one signal of `kind` with `value`."""
        return self.weights[kind] * value

    def allocate(self, weights: Mapping[bytes, int]) -> tuple[dict[bytes, int], int]:
        """The amount of each payee (module docstring) and the epoch's emission.

        Args:
            weights: payee (wallet, or user_hash) -> weight in hundredths, each >= 0.
        Returns:
            (payee -> amount, for payees whose amount is > 0; the emission: the sum of the
            amounts per weight, E pro rata; 0 when nobody has weight).
        """
        if not any(weights.values()):
            return {}, 0
        if self.mode == "pro-rata":
            shares = split_emission(self.emission, weights)
            return {p: a for p, a in shares.items() if a}, self.emission if shares else 0
        rate = self.reward_per_weight
        amounts = {p: per_weight_amount(w, rate) for p, w in weights.items() if w}
        amounts = {p: a for p, a in amounts.items() if a}
        return amounts, sum(amounts.values())
