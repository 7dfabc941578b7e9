"""Pluggable claim formats: one per on-chain claim model the pipeline can serve.

`get_claim_format(name)` returns the format object; see `core.claims.base` for the interface
every caller codes against.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aop.core.claims.base import (
    ClaimEntry,
    ClaimFormat,
    ClaimInput,
    ClaimTree,
    DatasetLayout,
    TreeScope,
)
from aop.core.claims.cumulative_v2 import CumulativeV2
from aop.core.claims.global_roots import GlobalFormat, GlobalV4, GlobalV5
from aop.core.claims.ring_v0 import RingV0
from aop.core.claims.ring_v0_legacy import RingV0Legacy
from aop.core.errors import UnknownClaimFormatError

__all__ = [
    "CLAIM_FORMATS",
    "DEFAULT_CLAIM_FORMAT",
    "RECORD_SIZES",
    "ClaimEntry",
    "ClaimFormat",
    "ClaimInput",
    "ClaimTree",
    "DatasetLayout",
    "GlobalFormat",
    "TreeScope",
    "get_claim_format",
    "get_global_format",
]

DEFAULT_CLAIM_FORMAT = "cumulative-v2"

#: every registered format by name.
CLAIM_FORMATS: Mapping[str, ClaimFormat] = MappingProxyType(
    {fmt.name: fmt for fmt in (CumulativeV2(), RingV0(), RingV0Legacy(), GlobalV4(), GlobalV5())}
)

#: bytes per dataset record (a LeafChunk entry on the log) of each format.
RECORD_SIZES: Mapping[str, int] = MappingProxyType(
    {name: fmt.layout.record_size for name, fmt in CLAIM_FORMATS.items()}
)


def get_claim_format(name: str = DEFAULT_CLAIM_FORMAT) -> ClaimFormat:
    """The claim format called `name` ("cumulative-v2", "ring-v0", "global-v4", "global-v5").

    Raises:
        UnknownClaimFormatError: no format has that name; the message lists the known ones.
    """
    try:
        return CLAIM_FORMATS[name]
    except KeyError:
        known = ", ".join(sorted(CLAIM_FORMATS))
        raise UnknownClaimFormatError(
            f"claim format must be one of {known} (got {name!r})"
        ) from None


def get_global_format(name: str) -> GlobalFormat:
    """The global claim format called `name` ("global-v4" or "global-v5").

    Raises:
        UnknownClaimFormatError: no global format has that name.
    """
    fmt = CLAIM_FORMATS.get(name)
    if not isinstance(fmt, GlobalFormat):
        known = ", ".join(sorted(n for n, f in CLAIM_FORMATS.items() if f.is_global))
        raise UnknownClaimFormatError(f"global claim format must be one of {known} (got {name!r})")
    return fmt
