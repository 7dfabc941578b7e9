"""root_differences: what makes a redelivered root identical or a conflicting one."""

from __future__ import annotations

from decimal import Decimal

from aop.projections.writer import root_differences

RECORD = {
    "channel": "alpha",
    "channel_config": "cfg",
    "epoch": 4,
    "format": "cumulative-v2",
    "program_id": "prog",
    "mint": "mint",
    "root": b"\x01" * 32,
    "dataset_hash": b"\x02" * 32,
    "leaf_count": 3,
    "total": "18446744073709551616",
    "emission": "18446744073709551617",
    "closed_at_slot": 900,
    "input": [{"partition": 1, "first_offset": 0, "last_offset": 9}],
}
STORED = {
    "channel": "alpha",
    "epoch": 4,
    "format": "cumulative-v2",
    "program_id": "prog",
    "mint": "mint",
    "root": memoryview(b"\x01" * 32),
    "dataset_hash": b"\x02" * 32,
    "leaf_count": 3,
    "total": Decimal("18446744073709551616"),
    "emission": Decimal("18446744073709551617"),
    "closed_at_slot": 900,
    "closed_at_ms": None,
    "input_offsets": [{"partition": 1, "first_offset": 0, "last_offset": 9}],
}


def test_identical_root_has_no_differences() -> None:
    assert root_differences(STORED, RECORD) == []


def test_each_differing_field_is_named_with_both_values() -> None:
    record = {
        **RECORD,
        "root": b"\x03" * 32,
        "total": "5",
        "input": [{"partition": 1, "first_offset": 0, "last_offset": 10}],
    }
    assert root_differences(STORED, record) == [
        f"root stored {'01' * 32} vs new {'03' * 32}",
        "total stored 18446744073709551616 vs new 5",
        "input_offsets stored [{'partition': 1, 'first_offset': 0, 'last_offset': 9}] vs new "
        "[{'partition': 1, 'first_offset': 0, 'last_offset': 10}]",
    ]
