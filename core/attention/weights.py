"""Integer weights of attention signals, in hundredths of a weight unit.

The legacy aggregator weighted a user's signals in one (channel, epoch) as

    weight = presence + 10·sub + 10·resub + 5·gift + 0.01·bits + 0.1·raid

in floating point (reference §11). Here a weight is an exact integer count of hundredths of
that unit, so the same table reads `presence 100, sub 1000, resub 1000, gift 500, bits 1,
raid 10` (`LEGACY_WEIGHTS`), and a user's weight is Σ over its signals of
`table[kind] × value` (a signal's `value` is its count, its bits or its seconds). The legacy
counted chat messages (`message`) without weight, and had no listening or viewing time:
`chat`, `listen_seconds` and `view_seconds` weigh 0 unless a deployment says otherwise
(`AOP_ATTENTION_WEIGHTS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aop.core.attention.signals import SIGNAL_KINDS
from aop.core.errors import CoreError

__all__ = ["LEGACY_WEIGHTS", "WEIGHT_UNIT", "InvalidWeightsError", "weight_table"]

#: hundredths per weight unit: a weight of 100 is the legacy's weight 1 (one presence).
WEIGHT_UNIT = 100

#: the legacy aggregator's table, in hundredths, for every kind.
LEGACY_WEIGHTS: Mapping[str, int] = MappingProxyType(
    {
        "presence": 100,
        "chat": 0,
        "sub": 1000,
        "resub": 1000,
        "gift": 500,
        "bits": 1,
        "raid": 10,
        "listen_seconds": 0,
        "view_seconds": 0,
    }
)


class InvalidWeightsError(CoreError, ValueError):
    """Raised when a weight table names an unknown kind or a weight that is not an int >= 0."""


def weight_table(overrides: Mapping[str, int] | None = None) -> Mapping[str, int]:
    """The legacy table with `overrides` (kind -> hundredths) applied, read-only.

    Raises:
        InvalidWeightsError: an unknown kind, or a weight that is not an integer >= 0.
    """
    table = dict(LEGACY_WEIGHTS)
    for kind, weight in (overrides or {}).items():
        if kind not in table:
            raise InvalidWeightsError(
                f"signal kind must be one of {', '.join(SIGNAL_KINDS)} (got {kind!r})"
            )
        if type(weight) is not int or weight < 0:
            raise InvalidWeightsError(
                f"weight of {kind!r} must be an integer >= 0 in hundredths (got {weight!r})"
            )
        table[kind] = weight
    return MappingProxyType(table)
