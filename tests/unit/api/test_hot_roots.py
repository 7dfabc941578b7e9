"""A root held in memory finds every wallet it has (and none it lacks) and cuts core's proofs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.api.claim_states import ClaimStateDeriver
from aop.api.hot_roots import RECORD, HotRoot
from aop.core.merkle import build_levels, proof_from_levels


def _records(wallets: list[bytes], amounts: list[int]) -> bytes:
    """What HOT_ROOT_LEAVES_SQL returns: (wallet, leaf_index, amount - 2^63) by wallet."""
    rows = sorted((wallet, index, amount) for index, (wallet, amount) in
                  enumerate(zip(wallets, amounts, strict=True)))  # fmt: skip
    return b"".join(
        w + i.to_bytes(8, "big") + (a - (1 << 63)).to_bytes(8, "big", signed=True)
        for w, i, a in rows
    )


def _hot_root(wallets: list[bytes], amounts: list[int]) -> tuple[HotRoot, tuple[bytes, ...]]:
    levels = build_levels([bytes(reversed(w)) for w in wallets])  # any 32-byte leaves
    depth = len(levels) - 1
    meta = (3, 7, levels[depth], depth, len(wallets))
    root = HotRoot.build("cfg", 1, meta, _records(wallets, amounts), dict(enumerate(levels)))
    return root, levels


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 300), seed=st.integers(0, 2**32))
def test_finds_every_wallet_and_cuts_cores_proof(count: int, seed: int) -> None:
    rng = random.Random(seed)
    wallets = list({rng.randbytes(32): None for _ in range(count)})
    amounts = [
        rng.choice([0, 1, 2**63 - 1, 2**63, 2**64 - 1, rng.randrange(2**64)]) for _ in wallets
    ]
    root, levels = _hot_root(wallets, amounts)
    for index, (wallet, amount) in enumerate(zip(wallets, amounts, strict=True)):
        assert root.find(wallet) == (index, amount, None)
        leaf, proof = root.proof(index)
        assert leaf == levels[0][32 * index : 32 * index + 32]
        assert proof == proof_from_levels(levels, index)
    for _ in range(20):
        assert root.find(rng.randbytes(32)) is None


def test_a_match_across_two_records_is_not_a_wallet() -> None:
    """A wallet's bytes may also appear straddling a record boundary, in the same bucket:
    only a match at a record's start counts."""
    first = bytes(10) + b"\x11" * 22  # record 0: first, leaf_index 0, amount
    second = first[8:] + (0).to_bytes(8, "big")  # = record 0's bytes 8..40, a straddle
    root, _ = _hot_root([first, second], [5, 6])
    assert root.records.find(second) == 8
    assert root.find(second) == (1, 6, None)
    assert root.find(first[8:] + (1).to_bytes(8, "big")) is None


def test_size_counts_records_levels_buckets_and_claim_states() -> None:
    root, levels = _hot_root([bytes([i]) * 32 for i in range(5)], [1] * 5)
    assert root.size == 5 * RECORD + sum(map(len, levels)) + 4 * (1 << 16 | 1)
    assert root.with_claim_states(bytes(5 * 32)).size == root.size + 5 * 32


def test_claim_states_are_found_with_their_wallets() -> None:
    """The addresses are in record order (by wallet), not leaf order."""
    wallets = [bytes([9 - i]) * 32 for i in range(6)]  # leaf order: descending wallets
    root, _ = _hot_root(wallets, [7] * 6)
    states = b"".join(bytes([0xA0 + w[0]]) * 32 for w in sorted(wallets))
    held = root.with_claim_states(states)
    for index, wallet in enumerate(wallets):
        assert held.find(wallet) == (index, 7, bytes([0xA0 + wallet[0]]) * 32)
    with pytest.raises(ValueError, match="claim-state addresses"):
        root.with_claim_states(states[:-1])


@pytest.mark.parametrize("inline_max", [0, 4096])  # 0: in the helper process
async def test_claim_states_derived_for_a_root_are_each_wallets_pda(inline_max: int) -> None:
    program_id, config = Pubkey(bytes([3]) * 32), Pubkey(bytes([4]) * 32)
    wallets = sorted(random.Random(5).randbytes(32) for _ in range(40))
    root, _ = _hot_root(wallets, [1] * 40)
    deriver = ClaimStateDeriver(inline_max=inline_max)
    try:
        blob = await deriver.derive((program_id, config), root.records, stride=RECORD)
    finally:
        deriver.close()
    expected = [
        bytes(Pubkey.find_program_address([b"claim_state_v2", bytes(config), w], program_id)[0])
        for w in wallets
    ]
    assert [blob[at : at + 32] for at in range(0, len(blob), 32)] == expected


def test_inconsistent_reads_are_refused() -> None:
    wallets = [bytes([i]) * 32 for i in range(4)]
    levels = build_levels(wallets)
    records = _records(wallets, [1] * 4)
    meta = (1, 1, levels[-1], len(levels) - 1, 4)
    with pytest.raises(ValueError, match="leaf records"):
        HotRoot.build("cfg", 1, meta, records[:-1], dict(enumerate(levels)))
    with pytest.raises(ValueError, match="do not end in its root"):
        HotRoot.build("cfg", 1, meta, records, dict(enumerate(levels[:-1])))
    with pytest.raises(ValueError, match="do not end in its root"):
        HotRoot.build("cfg", 1, (1, 1, b"\x00" * 32, *meta[3:]), records, dict(enumerate(levels)))
