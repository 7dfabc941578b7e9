"""The bulk binary COPY payload of leaves: PGCOPY framing and exact numeric digits."""

from __future__ import annotations

import struct

from aop.projections._copy import leaves_copy_payload

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
#: field count, root_id, leaf_index, wallet, amount (numeric): the row up to the bonus field.
_HEAD = ">hiqiqi32sihhhhhhhhh"


def test_payload_frames_rows_with_signature_and_trailer() -> None:
    payload = leaves_copy_payload(7, [(b"\x01" * 32, 5), (b"\x02" * 32, 2**64 - 1)])
    assert payload[: len(HEADER)] == HEADER
    assert payload[-2:] == b"\xff\xff"
    # 84 bytes up to the amount's digits, 4 for the NULL attention_bonus
    assert len(payload) == len(HEADER) + 2 * 88 + 2


def test_u64_max_is_five_base_10000_digits_and_the_bonus_is_null() -> None:
    payload = leaves_copy_payload(7, [(b"\x02" * 32, 2**64 - 1)])
    row = payload[len(HEADER) : -2]
    fields = struct.unpack(_HEAD + "i", row)
    assert fields[:8] == (5, 8, 7, 8, 0, 32, b"\x02" * 32, 18)
    # 18446744073709551615 = 1844 6744 0737 0955 1615 (base 10000), weight 4
    assert fields[8:17] == (5, 4, 0, 0, 1844, 6744, 737, 955, 1615)
    assert fields[17] == -1  # NULL


def test_a_two_part_row_carries_the_bonus_as_a_numeric() -> None:
    payload = leaves_copy_payload(9, [(b"\x03" * 32, 1_000_000_047)], [400_000_000])
    row = payload[len(HEADER) : -2]
    fields = struct.unpack(_HEAD + "ihhhhhhhhh", row)
    # 1000000047 = 0000 0000 0010 0000 0047; 400000000 = 0000 0000 0004 0000 0000
    assert fields[8:17] == (5, 4, 0, 0, 0, 0, 10, 0, 47)
    assert fields[17:] == (18, 5, 4, 0, 0, 0, 0, 4, 0, 0)


def test_empty_root_is_just_the_framing() -> None:
    assert leaves_copy_payload(1, []) == HEADER + b"\xff\xff"
