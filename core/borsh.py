"""A tiny Borsh codec: the subset the program's instructions, events and accounts use.

Borsh (https://borsh.io) is little-endian and has no padding or tags except where stated:
integers are fixed-width LE, `bool` is one byte 0 or 1 (methods `boolean`), a `Pubkey` or
`[u8; 32]` is 32 raw bytes, a `String` is a u32 LE byte length then UTF-8, a `Vec<T>` is a
u32 LE count then the items, and an `Option<T>` is a one-byte tag (0 = None, 1 = Some) then
the value.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Self, TypeVar

from aop.core.errors import BorshDecodeError, BorshEncodeError

__all__ = ["PUBKEY_LEN", "Reader", "Writer"]

PUBKEY_LEN = 32

T = TypeVar("T")

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_INT_TYPES: dict[str, tuple[struct.Struct, int, int]] = {
    "u8": (_U8, 0, 2**8 - 1),
    "u16": (_U16, 0, 2**16 - 1),
    "u32": (_U32, 0, 2**32 - 1),
    "u64": (_U64, 0, 2**64 - 1),
    "i64": (_I64, -(2**63), 2**63 - 1),
}


class Writer:
    """Appends Borsh values to a buffer; each method returns the writer so calls can chain.

    Raises:
        BorshEncodeError: a value of the wrong type, out of its type's range, or of the wrong
            length (the message names the Borsh type, the expected and the actual value).
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def to_bytes(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._buf)

    def _int(self, kind: str, value: int) -> Self:
        codec, low, high = _INT_TYPES[kind]
        if type(value) is not int or not low <= value <= high:
            raise BorshEncodeError(f"{kind} must be an int in {low}..{high} (got {value!r})")
        self._buf += codec.pack(value)
        return self

    def u8(self, value: int) -> Self:
        return self._int("u8", value)

    def u16(self, value: int) -> Self:
        return self._int("u16", value)

    def u32(self, value: int) -> Self:
        return self._int("u32", value)

    def u64(self, value: int) -> Self:
        return self._int("u64", value)

    def i64(self, value: int) -> Self:
        return self._int("i64", value)

    def boolean(self, value: bool) -> Self:
        if type(value) is not bool:
            raise BorshEncodeError(f"bool must be True or False (got {value!r})")
        self._buf.append(1 if value else 0)
        return self

    def fixed(self, value: bytes, length: int) -> Self:
        """Raw bytes of a fixed length (`[u8; N]`, padding), without a length prefix."""
        if not isinstance(value, bytes | bytearray) or len(value) != length:
            got = f"{len(value)} bytes" if isinstance(value, bytes | bytearray) else repr(value)
            raise BorshEncodeError(f"[u8; {length}] must be {length} bytes (got {got})")
        self._buf += value
        return self

    def pubkey(self, value: bytes) -> Self:
        """A `Pubkey` or `[u8; 32]`: 32 raw bytes."""
        return self.fixed(value, PUBKEY_LEN)

    def string(self, value: str) -> Self:
        if not isinstance(value, str):
            raise BorshEncodeError(f"String must be a str (got {value!r})")
        raw = value.encode("utf-8")
        self.u32(len(raw))
        self._buf += raw
        return self

    def vec_bytes32(self, items: Iterable[bytes]) -> Self:
        """A `Vec<[u8; 32]>`: u32 count, then each item's 32 bytes."""
        values = list(items)
        self.u32(len(values))
        for item in values:
            self.pubkey(item)
        return self

    def option(self, value: T | None, write: Callable[[T], object]) -> Self:
        """An `Option<T>`: tag 0 for None, else tag 1 then `write(value)`."""
        if value is None:
            self._buf.append(0)
        else:
            self._buf.append(1)
            write(value)
        return self


class Reader:
    """Reads Borsh values from `data` in order; call `finish()` to reject trailing bytes.

    Raises:
        BorshDecodeError: the data ends before a value, a bool or option tag is not 0/1, a
            string is not UTF-8, or bytes remain at `finish()`.
    """

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self._data = bytes(data)
        self._pos = offset

    def _take(self, size: int, what: str) -> int:
        start = self._pos
        if size > len(self._data) - start:
            raise BorshDecodeError(
                f"{what} needs {size} bytes at offset {start}, "
                f"but only {len(self._data) - start} remain"
            )
        self._pos = start + size
        return start

    def _int(self, kind: str) -> int:
        codec = _INT_TYPES[kind][0]
        value: int = codec.unpack_from(self._data, self._take(codec.size, kind))[0]
        return value

    def u8(self) -> int:
        return self._int("u8")

    def u16(self) -> int:
        return self._int("u16")

    def u32(self) -> int:
        return self._int("u32")

    def u64(self) -> int:
        return self._int("u64")

    def i64(self) -> int:
        return self._int("i64")

    def boolean(self) -> bool:
        start = self._pos
        value = self.u8()
        if value > 1:
            raise BorshDecodeError(f"bool at offset {start} must be 0 or 1 (got {value})")
        return value == 1

    def fixed(self, length: int) -> bytes:
        """`length` raw bytes (`[u8; N]`, padding)."""
        start = self._take(length, f"[u8; {length}]")
        return self._data[start : start + length]

    def pubkey(self) -> bytes:
        """A `Pubkey` or `[u8; 32]` as 32 raw bytes."""
        return self.fixed(PUBKEY_LEN)

    def string(self) -> str:
        length = self.u32()
        start = self._take(length, "String body")
        try:
            return self._data[start : start + length].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BorshDecodeError(f"String at offset {start} is not UTF-8: {exc.reason}") from exc

    def vec_bytes32(self) -> list[bytes]:
        """A `Vec<[u8; 32]>`."""
        count = self.u32()
        start = self._take(count * PUBKEY_LEN, f"Vec of {count} x [u8; 32]")
        return [self._data[i : i + PUBKEY_LEN] for i in range(start, self._pos, PUBKEY_LEN)]

    def option(self, read: Callable[[], T]) -> T | None:
        """An `Option<T>`: None for tag 0, else `read()` after tag 1."""
        start = self._pos
        tag = self.u8()
        if tag > 1:
            raise BorshDecodeError(f"Option tag at offset {start} must be 0 or 1 (got {tag})")
        return read() if tag == 1 else None

    def finish(self) -> None:
        """Check that every byte was read."""
        if self._pos != len(self._data):
            raise BorshDecodeError(
                f"expected {self._pos} bytes, got {len(self._data)} "
                f"({len(self._data) - self._pos} trailing)"
            )
