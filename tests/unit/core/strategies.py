"""Shared Hypothesis strategies for `core/` tests."""

from __future__ import annotations

from hypothesis import strategies as st

from aop.core.claims import ClaimInput

U64_MAX = 2**64 - 1

pubkeys = st.binary(min_size=32, max_size=32)
u8s = st.integers(0, 2**8 - 1)
u16s = st.integers(0, 2**16 - 1)
u32s = st.integers(0, 2**32 - 1)
u64s = st.integers(0, U64_MAX)
i64s = st.integers(-(2**63), 2**63 - 1)
positive_amounts = st.integers(1, U64_MAX)
nodes = st.binary(min_size=32, max_size=32)

#: channel names the program accepts: 1-64 printable ASCII characters.
channel_names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
)

#: sizes that stress the odd-tail rule: around powers of two, plus small ones.
edge_sizes = st.sampled_from(
    sorted({0, 1, 2, 3} | {n for k in range(2, 13) for n in (2**k - 1, 2**k, 2**k + 1)} | {5000})
)


def leaf_lists(max_size: int = 300) -> st.SearchStrategy[list[bytes]]:
    return st.lists(nodes, max_size=max_size)


@st.composite
def cumulative_datasets(draw: st.DrawFn, max_size: int = 60) -> list[ClaimInput]:
    """Distinct wallets with non-zero totals, in random order."""
    wallets = draw(st.lists(pubkeys, unique=True, max_size=max_size))
    return [ClaimInput(w, draw(positive_amounts)) for w in wallets]


@st.composite
def ring_datasets(draw: st.DrawFn, max_size: int = 40) -> list[ClaimInput]:
    """Distinct wallets with non-zero amounts and small first_seen values (ties likely)."""
    wallets = draw(st.lists(pubkeys, unique=True, max_size=max_size))
    return [ClaimInput(w, draw(positive_amounts), draw(st.integers(0, 5))) for w in wallets]
