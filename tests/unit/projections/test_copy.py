"""The bulk binary COPY payload of leaves: PGCOPY framing and exact numeric digits."""

from __future__ import annotations

import struct

from aop.projections._copy import leaves_copy_payload

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


def test_payload_frames_rows_with_signature_and_trailer() -> None:
    payload = leaves_copy_payload(7, [(b"\x01" * 32, 5), (b"\x02" * 32, 2**64 - 1)])
    assert payload[: len(HEADER)] == HEADER
    assert payload[-2:] == b"\xff\xff"
    assert len(payload) == len(HEADER) + 2 * 84 + 2


def test_u64_max_is_five_base_10000_digits() -> None:
    payload = leaves_copy_payload(7, [(b"\x02" * 32, 2**64 - 1)])
    row = payload[len(HEADER) : -2]
    fields = struct.unpack(">hiqiqi32sihhhhhhhhh", row)
    assert fields[:8] == (4, 8, 7, 8, 0, 32, b"\x02" * 32, 18)
    # 18446744073709551615 = 1844 6744 0737 0955 1615 (base 10000), weight 4
    assert fields[8:] == (5, 4, 0, 0, 1844, 6744, 737, 955, 1615)


def test_empty_root_is_just_the_framing() -> None:
    assert leaves_copy_payload(1, []) == HEADER + b"\xff\xff"
