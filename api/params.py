"""Parsing of path and query parameters; each failure is a 400 with a code naming the parameter.

Pure functions: they take the raw strings Starlette hands over and return typed values or
raise `BadRequestError` with "<what> must be <expected> (got <actual>)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from solders.pubkey import Pubkey

from aop.api.errors import BadRequestError
from aop.core.channel import MAX_CHANNEL_NAME_LEN

__all__ = [
    "I64_MAX",
    "MAX_LIMIT",
    "U64_MAX",
    "ChannelRef",
    "parse_channel",
    "parse_hex32",
    "parse_limit",
    "parse_pubkey",
    "parse_seq",
    "parse_u64",
    "parse_wallet",
]

#: the largest page any list endpoint returns.
MAX_LIMIT = 1000
U64_MAX = 2**64 - 1
#: root_seq / epoch are stored as Postgres bigint.
I64_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,20}")
_HEX32 = re.compile(r"[0-9a-fA-F]{64}")
_SHOWN = 80


def _shown(value: str) -> str:
    """`value` for an error message, cut to a bounded length."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def parse_pubkey(value: str, *, code: str, what: str) -> Pubkey:
    """A base58 public key (32 bytes).

    Raises:
        BadRequestError: with `code`, when `value` is not base58 of exactly 32 bytes.
    """
    if 32 <= len(value) <= 44 and value.isascii():
        try:
            return Pubkey.from_string(value)
        except ValueError:
            pass
    raise BadRequestError(
        code, f"{what} must be a base58 public key of 32 bytes (got {_shown(value)})"
    )


def parse_wallet(value: str) -> bytes:
    """A wallet path parameter: the 32 raw bytes of a base58 public key (else 400 bad_wallet)."""
    return bytes(parse_pubkey(value, code="bad_wallet", what="wallet"))


@dataclass(frozen=True)
class ChannelRef:
    """A channel path parameter: a name (matched case-insensitively) or a config PDA."""

    raw: str
    #: ASCII-lower-cased name, the key names are looked up by.
    name_key: str
    #: the value as a config PDA, when it is one syntactically (a name may look like one too).
    config: str | None


def parse_channel(value: str) -> ChannelRef:
    """A channel name (1-64 ASCII characters) or its config PDA (base58).

    Raises:
        BadRequestError: bad_channel, for an empty, too long or non-ASCII value.
    """
    if not 1 <= len(value) <= MAX_CHANNEL_NAME_LEN or not value.isascii():
        raise BadRequestError(
            "bad_channel",
            f"channel must be a name of 1-{MAX_CHANNEL_NAME_LEN} ASCII characters or a "
            f"base58 config PDA (got {_shown(value)}, {len(value)} characters)",
        )
    config = None
    if 32 <= len(value) <= 44:
        try:
            config = str(Pubkey.from_string(value))
        except ValueError:
            config = None
    return ChannelRef(raw=value, name_key=value.lower(), config=config)


def parse_u64(value: str, *, code: str, what: str, low: int = 0, high: int = U64_MAX) -> int:
    """A decimal integer in low..high (ASCII digits only, no sign).

    Raises:
        BadRequestError: with `code`.
    """
    if _DIGITS.fullmatch(value):
        number = int(value)
        if low <= number <= high:
            return number
    raise BadRequestError(code, f"{what} must be an integer in {low}..{high} (got {_shown(value)})")


def parse_seq(value: str, *, code: str = "bad_root_seq", what: str = "root_seq") -> int:
    """A root_seq (0..2^63-1: the database keeps it as bigint)."""
    return parse_u64(value, code=code, what=what, high=I64_MAX)


def parse_limit(query: Mapping[str, str], *, default: int) -> int:
    """The `limit` query parameter: 1..1000, `default` when absent."""
    raw = query.get("limit")
    if raw is None:
        return default
    return parse_u64(raw, code="bad_limit", what="limit", low=1, high=MAX_LIMIT)


def parse_hex32(value: object, *, code: str, what: str) -> bytes:
    """A 32-byte value written as 64 hex digits (either case, no 0x).

    Raises:
        BadRequestError: with `code`.
    """
    if isinstance(value, str) and _HEX32.fullmatch(value):
        return bytes.fromhex(value)
    shown = _shown(value) if isinstance(value, str) else type(value).__name__
    raise BadRequestError(code, f"{what} must be 64 hex digits (32 bytes) (got {shown})")
