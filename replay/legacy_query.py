"""The rules of the legacy's answer: the query that asks it, and the root it gives.

One query per (channel, epoch), parameterised, never formatted: the default is the rebuild
plan's daily check, `SELECT root FROM roots WHERE epoch = %(epoch)s AND channel = %(channel)s`;
a custom `--legacy-query` must use exactly those two named parameters (psycopg's
`%(name)s`), and no other placeholder. `epoch` is the attention epoch's unix start (the
legacy's epoch id), `channel` the channel's name as configured in AOP_CHANNELS.

The query answers no row (no root), or one row of one column: the root as `bytea` (32
bytes), or text of 64 hex digits, with or without a `0x` prefix. NULL counts as no root.
Anything else is an error naming the channel and the epoch.
"""

from __future__ import annotations

import re
from typing import Any, Final

from aop.replay.errors import LegacyParityError

__all__ = ["DEFAULT_LEGACY_QUERY", "QUERY_PARAMETERS", "check_legacy_query", "decode_legacy_root"]

DEFAULT_LEGACY_QUERY: Final = (
    "SELECT root FROM roots WHERE epoch = %(epoch)s AND channel = %(channel)s"
)
#: the named parameters a legacy query must use, and the only ones it may.
QUERY_PARAMETERS: Final = ("epoch", "channel")

_NAMED = re.compile(r"%\((?P<name>[^)]*)\)[sbt]")
_POSITIONAL = re.compile(r"%[sbt]")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def check_legacy_query(query: str) -> str:
    """Return `query` if it uses %(epoch)s and %(channel)s and no other placeholder.

    Raises:
        LegacyParityError: a parameter is missing, or another one (named or positional) is
            used; the message names the two expected.
    """
    text = query.replace("%%", "")
    names = {m.group("name") for m in _NAMED.finditer(text)}
    missing = [f"%({n})s" for n in QUERY_PARAMETERS if f"%({n})s" not in text]
    others = sorted(names - set(QUERY_PARAMETERS))
    positional = _POSITIONAL.findall(_NAMED.sub("", text))
    if missing or others or positional:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown parameter %({n})s" for n in others]
        problems += [f"positional {p}" for p in sorted(set(positional))]
        raise LegacyParityError(
            "--legacy-query must use the named parameters %(epoch)s and %(channel)s and no "
            f"other placeholder (got {'; '.join(problems)} in {query!r})"
        )
    return query


def decode_legacy_root(value: Any, channel: str, epoch: int) -> bytes | None:
    """The 32-byte root of a legacy answer: bytea, 64 hex digits or 0x + 64 hex digits; None
    for NULL.

    Raises:
        LegacyParityError: any other value (type and length named, with the channel and
            epoch).
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) == 32:
            return raw
        got = f"bytea of {len(raw)} bytes"
    elif isinstance(value, str):
        digits = value.strip()
        digits = digits[2:] if digits[:2] in ("0x", "0X") else digits
        if _HEX.fullmatch(digits):
            return bytes.fromhex(digits)
        got = f"text {value[:80]!r}"
    else:
        got = f"a {type(value).__name__}"
    raise LegacyParityError(
        f"the legacy root of channel {channel!r} epoch {epoch} must be 32 bytes of bytea, 64 "
        f"hex digits or 0x and 64 hex digits (got {got}); operator action: fix --legacy-query "
        "so that it selects the root column"
    )
