"""A schema-valid EpochRoot with any one field replaced, or its leaf chunks damaged: `verify_root`
raises only `RootRejectedError` (the projector's DLQ reason), never another exception.

Avro guarantees the types (string, long, bytes), not the values: a channel of 5000 characters,
a negative root_seq, a base58 key that is not 32 bytes, a total of 5000 digits.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.projections.dataset import verify_root
from aop.projections.errors import RootRejectedError
from tests.support.sample_roots import build_sample_root
from tests.unit.projections.test_dataset import MINT, chunks, sample

I64 = st.integers(-(2**63), 2**63 - 1)
hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "-1", "1e3", " 7 ", "1_0", "9" * 5000, "x" * 5000, "a\x00b", "é"]),
)
#: replacement values by EpochRoot field, each of the field's Avro type.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "channel": hostile_text,
    "channel_config": hostile_text,
    "program_id": hostile_text,
    "mint": hostile_text,
    "format": hostile_text | st.sampled_from(["cumulative-v2", "ring-v0"]),
    "epoch": I64,
    "root_seq": I64,
    "root": st.binary(min_size=32, max_size=32),
    "dataset_hash": st.binary(min_size=32, max_size=32),
    "leaf_count": I64,
    "total": hostile_text,
    "emission": hostile_text,
}
ROOTS = {name: sample(n=5, format_name=name) for name in ("cumulative-v2", "ring-v0")}


def _verify_or_reject(record: dict[str, Any], entries: list[bytes]) -> str:
    """'verified' or the rejection reason; any other exception fails the test."""
    try:
        verify_root(record, entries)
    except RootRejectedError as exc:
        return exc.reason
    return "verified"


@given(
    st.sampled_from(sorted(ROOTS)),
    st.sampled_from(sorted(FIELD_VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), FIELD_VALUES[name])
    ),
)
def test_any_replaced_field_verifies_only_if_unchanged_else_is_rejected(
    format_name: str, replacement: tuple[str, Any]
) -> None:
    root = ROOTS[format_name]
    name, value = replacement
    outcome = _verify_or_reject({**root.root, name: value}, chunks(root))
    unchanged = value == root.root[name]
    unbound = name in _UNBOUND[format_name] and _well_formed(name, value, root.root[name])
    assert (outcome == "verified") == (unchanged or unbound)


#: fields no leaf commits to in a format (the channel name only up to ASCII case, as the
#: subject id lower-cases it): any well-formed value verifies.
_UNBOUND = {
    "cumulative-v2": {"emission", "epoch", "channel"},
    "ring-v0": {"emission", "root_seq"},
}


def _well_formed(name: str, value: Any, original: Any) -> bool:
    if name == "channel":
        return bool(value.lower() == original.lower())
    if name in ("epoch", "root_seq"):
        return bool(value >= 0)
    return bool(re.fullmatch(r"0|[1-9][0-9]{0,38}", value))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("emission", "-5", "bad_emission"),
        ("emission", " 7 ", "bad_emission"),
        ("emission", "1_0", "bad_emission"),
        ("emission", "1" + "0" * 39, "bad_emission"),  # 40 digits: numeric(39) overflows
        ("total", "0" + "150", "total_mismatch"),
        ("epoch", -1, "bad_scope"),
        ("root_seq", -1, "bad_scope"),
        ("channel", "x" * 5000, "bad_scope"),
        ("channel", "", "bad_scope"),
        ("mint", "not base58", "bad_scope"),
        ("channel_config", "a\x00b", "config_mismatch"),
    ],
)
def test_out_of_range_value_is_rejected_with_its_reason(
    field: str, value: Any, reason: str
) -> None:
    root = ROOTS["cumulative-v2"]
    assert _verify_or_reject({**root.root, field: value}, chunks(root)) == reason


def test_channel_with_a_nul_is_rejected_before_it_reaches_postgres() -> None:
    """Its own config PDA matches, so only this check keeps it from failing every INSERT."""
    root = build_sample_root(
        channel="a\x00b",
        root_seq=3,
        epoch=7,
        amounts={bytes([1]) * 32: 5},
        program_id=DEFAULT_PROGRAM_ID,
        mint=MINT,
        format_name="cumulative-v2",
        chunk_entries=2,
    )
    assert _verify_or_reject(root.root, chunks(root)) == "bad_scope"


@given(st.sampled_from(sorted(ROOTS)), st.lists(st.binary(max_size=200), max_size=4))
def test_random_chunk_entries_are_rejected(format_name: str, entries: list[bytes]) -> None:
    root = ROOTS[format_name]
    if entries == chunks(root):
        return
    assert _verify_or_reject(root.root, entries) in {
        "malformed_chunk",
        "leaf_count_mismatch",
        "total_mismatch",
        "invalid_entries",
        "bad_leaf_order",
        "root_mismatch",
        "dataset_hash_mismatch",
    }
