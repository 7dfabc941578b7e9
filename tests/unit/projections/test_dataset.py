"""verify_root: the tree rebuilt from the chunk entries must match the EpochRoot exactly."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.core.keccak import keccak256
from aop.core.merkle import verify_proof
from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.projections.dataset import decode_entries, verify_root
from aop.projections.errors import RootRejectedError
from tests.support.sample_roots import SampleRoot, build_sample_root

MINT = Pubkey.from_string("Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM")


def wallet(i: int) -> bytes:
    return hashlib.sha256(b"w%d" % i).digest()


def sample(n: int = 5, format_name: str = "cumulative-v2", chunk_entries: int = 2) -> SampleRoot:
    return build_sample_root(
        channel="Unit_Channel",
        root_seq=3,
        epoch=7,
        amounts={wallet(i): 10 * (i + 1) for i in range(n)},
        program_id=DEFAULT_PROGRAM_ID,
        mint=MINT,
        format_name=format_name,
        chunk_entries=chunk_entries,
    )


def chunks(root: SampleRoot) -> list[bytes]:
    return [c["entries"] for c in root.chunks]


def rejected(record: dict[str, Any], entries: list[bytes]) -> RootRejectedError:
    with pytest.raises(RootRejectedError) as caught:
        verify_root(record, entries)
    return caught.value


@pytest.mark.parametrize("format_name", ["cumulative-v2", "ring-v0"])
def test_sample_root_verifies_and_keeps_tree_order(format_name: str) -> None:
    root = sample(format_name=format_name)
    verified = verify_root(root.root, chunks(root))
    assert verified.levels == root.tree.levels
    assert list(verified.entries) == list(zip(root.tree.wallets, root.tree.amounts, strict=True))
    assert verified.channel_config == root.root["channel_config"]
    assert verified.subject_id == keccak256(b"channel:unit_channel")


def test_changed_amount_is_a_total_mismatch() -> None:
    root = sample()
    entries = chunks(root)
    changed = bytearray(entries[0])
    changed[32] += 1
    error = rejected(root.root, [bytes(changed), *entries[1:]])
    assert (error.reason, error.detail) == (
        "total_mismatch",
        "total: the EpochRoot says 150 but the leaves give 151",
    )


def test_amounts_swapped_between_wallets_is_a_root_mismatch() -> None:
    """The sum is unchanged, so only the rebuilt root shows the tampering."""
    root = sample()
    data = bytearray(b"".join(chunks(root)))
    data[32:40], data[72:80] = data[72:80], data[32:40]
    error = rejected(root.root, [bytes(data)])
    assert error.reason == "root_mismatch"
    assert error.detail.startswith(f"root: the EpochRoot says {root.tree.root.hex()} but")


def test_entries_out_of_canonical_order_are_refused() -> None:
    root = sample()
    data = b"".join(chunks(root))
    swapped = data[40:80] + data[0:40] + data[80:]
    error = rejected(root.root, [swapped])
    assert error.reason == "bad_leaf_order"


def test_wrong_dataset_hash_and_leaf_count_are_refused() -> None:
    root = sample()
    assert rejected({**root.root, "dataset_hash": bytes(32)}, chunks(root)).reason == (
        "dataset_hash_mismatch"
    )
    error = rejected({**root.root, "leaf_count": 6}, chunks(root))
    assert (error.reason, error.detail) == (
        "leaf_count_mismatch",
        "leaf_count: the EpochRoot says 6 but the leaves give 5",
    )


def test_record_for_another_channel_config_is_refused() -> None:
    root = sample()
    other = str(Pubkey(bytes(32)))
    error = rejected({**root.root, "channel_config": other}, chunks(root))
    assert error.reason == "config_mismatch"


def test_malformed_chunk_unknown_format_and_bad_decimals_are_refused() -> None:
    root = sample()
    assert rejected(root.root, [chunks(root)[0][:-1]]).reason == "malformed_chunk"
    assert rejected({**root.root, "format": "v9"}, chunks(root)).reason == "unknown_format"
    assert rejected({**root.root, "total": "1e3"}, chunks(root)).reason == "total_mismatch"
    assert rejected({**root.root, "emission": "x"}, chunks(root)).reason == "bad_emission"
    assert rejected({**root.root, "channel": ""}, chunks(root)).reason == "bad_scope"


def test_ring_entry_with_a_wrong_index_is_refused() -> None:
    root = sample(format_name="ring-v0", chunk_entries=10)
    data = bytearray(chunks(root)[0])
    data[32:36] = (9).to_bytes(4, "little")
    assert rejected(root.root, [bytes(data)]).reason in ("bad_leaf_order", "root_mismatch")


def test_decode_entries_reads_both_layouts() -> None:
    w = wallet(1)
    assert decode_entries("cumulative-v2", [w + (5).to_bytes(8, "little")]) == [(w, 5)]
    ring = w + (0).to_bytes(4, "little") + (7).to_bytes(8, "little")
    assert decode_entries("ring-v0", [ring]) == [(w, 7)]


@settings(max_examples=25, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=2**64 - 1), min_size=1, max_size=40),
    chunk_entries=st.integers(min_value=1, max_value=7),
)
def test_any_sample_root_verifies_and_every_proof_checks(
    amounts: list[int], chunk_entries: int
) -> None:
    root = build_sample_root(
        channel="prop",
        root_seq=1,
        epoch=1,
        amounts={wallet(i): a for i, a in enumerate(amounts)},
        program_id=DEFAULT_PROGRAM_ID,
        mint=MINT,
        chunk_entries=chunk_entries,
    )
    verified = verify_root(root.root, chunks(root))
    assert verified.levels == root.tree.levels
    for index in range(root.tree.leaf_count):
        assert verify_proof(root.tree.leaf(index), root.tree.proof(index), root.tree.root)
