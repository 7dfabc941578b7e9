"""core.borsh: encode/decode round trips and typed errors on bad bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.core.borsh import Reader, Writer
from aop.core.errors import BorshDecodeError, BorshEncodeError
from tests.unit.core.strategies import i64s, pubkeys, u8s, u16s, u32s, u64s


@given(
    u8s,
    u16s,
    u32s,
    u64s,
    i64s,
    st.booleans(),
    pubkeys,
    st.text(max_size=80),
    st.lists(pubkeys, max_size=5),
    st.none() | u64s,
)
def test_writer_then_reader_round_trips_every_type(
    a: int,
    b: int,
    c: int,
    d: int,
    e: int,
    flag: bool,
    key: bytes,
    text: str,
    items: list[bytes],
    maybe: int | None,
) -> None:
    w = Writer().u8(a).u16(b).u32(c).u64(d).i64(e).boolean(flag).pubkey(key).string(text)
    data = w.vec_bytes32(items).option(maybe, w.u64).to_bytes()
    r = Reader(data)
    decoded = (
        r.u8(), r.u16(), r.u32(), r.u64(), r.i64(), r.boolean(), r.pubkey(), r.string(),
        r.vec_bytes32(), r.option(r.u64),
    )  # fmt: skip
    r.finish()
    assert decoded == (a, b, c, d, e, flag, key, text, items, maybe)


def test_writer_encodes_string_as_u32_length_then_utf8() -> None:
    assert Writer().string("hé").to_bytes() == b"\x03\x00\x00\x00h\xc3\xa9"


def test_writer_encodes_ints_little_endian() -> None:
    data = Writer().u16(0x0102).u64(1).i64(-2).to_bytes()
    assert data == b"\x02\x01" + b"\x01" + b"\x00" * 7 + b"\xfe" + b"\xff" * 7


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda w: w.u8(256), r"u8 must be an int in 0\.\.255 \(got 256\)"),
        (lambda w: w.u64(-1), r"u64 must be an int in 0\.\.18446744073709551615 \(got -1\)"),
        (lambda w: w.i64(2**63), r"i64 must be an int in -9223372036854775808\.\."),
        (lambda w: w.u32(True), r"u32 must be an int .* \(got True\)"),
        (lambda w: w.boolean(1), r"bool must be True or False \(got 1\)"),
        (lambda w: w.pubkey(b"\x00" * 31), r"\[u8; 32\] must be 32 bytes \(got 31 bytes\)"),
        (lambda w: w.string(b"x"), r"String must be a str \(got b'x'\)"),
    ],
)
def test_writer_rejects_value_outside_its_type(write: object, message: str) -> None:
    with pytest.raises(BorshEncodeError, match=message):
        write(Writer())  # type: ignore[operator]


def test_reader_short_data_raises_with_offsets() -> None:
    with pytest.raises(BorshDecodeError, match=r"u64 needs 8 bytes at offset 0, but only 3 remain"):
        Reader(b"\x00\x00\x00").u64()


def test_reader_trailing_bytes_fail_finish() -> None:
    r = Reader(b"\x01\x02")
    r.u8()
    with pytest.raises(BorshDecodeError, match=r"expected 1 bytes, got 2 \(1 trailing\)"):
        r.finish()


def test_reader_bool_other_than_0_or_1_raises() -> None:
    with pytest.raises(BorshDecodeError, match=r"bool at offset 0 must be 0 or 1 \(got 2\)"):
        Reader(b"\x02").boolean()


def test_reader_option_tag_other_than_0_or_1_raises() -> None:
    r = Reader(b"\x05")
    with pytest.raises(BorshDecodeError, match=r"Option tag at offset 0 must be 0 or 1 \(got 5\)"):
        r.option(r.u8)


def test_reader_string_not_utf8_raises() -> None:
    with pytest.raises(BorshDecodeError, match=r"String at offset 4 is not UTF-8"):
        Reader(b"\x01\x00\x00\x00\xff").string()


def test_reader_vec_longer_than_data_raises() -> None:
    with pytest.raises(BorshDecodeError, match=r"Vec of 2 x \[u8; 32\] needs 64 bytes"):
        Reader(b"\x02\x00\x00\x00" + b"\x00" * 40).vec_bytes32()


def test_borsh_decode_error_is_a_value_error() -> None:
    assert issubclass(BorshDecodeError, ValueError)
