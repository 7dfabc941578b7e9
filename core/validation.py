"""Small input checks shared by `core/` modules, with messages that name what was wrong."""

from __future__ import annotations

from solders.pubkey import Pubkey

from aop.core.errors import InvalidIntegerError, InvalidPubkeyError

__all__ = ["U64_MAX", "check_pubkey_bytes", "check_uint", "describe_wallet"]

U64_MAX = 2**64 - 1


def check_uint(name: str, value: int, bits: int = 64) -> int:
    """Return `value` if it is an int (not a bool) in 0..2^bits-1.

    Raises:
        InvalidIntegerError: naming `name`, the range and the value.
    """
    if type(value) is not int or not 0 <= value < 1 << bits:
        raise InvalidIntegerError(
            f"{name} must be an integer in 0..{(1 << bits) - 1} (got {value!r})"
        )
    return value


def describe_wallet(wallet: object) -> str:
    """A wallet for a message: base58 if it is 32 bytes, else its repr."""
    if isinstance(wallet, bytes) and len(wallet) == 32:
        return str(Pubkey(wallet))
    return repr(wallet)


def check_pubkey_bytes(name: str, value: bytes) -> bytes:
    """Return `value` if it is 32 raw bytes (a public key as the leaves hash it).

    Raises:
        InvalidPubkeyError: naming `name` and what it got.
    """
    if type(value) is not bytes or len(value) != 32:
        raise InvalidPubkeyError(f"{name} must be 32 raw bytes (got {describe_wallet(value)})")
    return value
