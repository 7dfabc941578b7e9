"""Secrets read from files, and a holder that never prints its value.

A secret setting (e.g. `AOP_KAFKA_SASL_PASSWORD_FILE`) names a file, never the secret itself:
the file must be a regular file no one but its owner can read (mode 600, as the publisher
keypair), and its content travels as a `Secret`, whose `repr()` and `str()` are masked. Errors
name the variable, the path and what is wrong, never the content.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from aop.runtime.errors import SettingsError

__all__ = ["MASK", "Secret", "read_private_text", "read_secret_file"]

MASK: Final = "***"


class Secret:
    """A secret string: `reveal()` gives it to the one client that needs it; `repr()`, `str()`
    and f-strings give `***`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def read_private_text(
    path: Path, variable: str, error: Callable[[str], Exception] = SettingsError
) -> str:
    """The whole text of the private file `path` (set by `variable`): the one rule for every
    secret file (SASL passwords, TLS keys' passwords, the publisher keypair).

    1. It exists and is a regular file.
    2. No one but its owner may read or write it (mode & 0o077 == 0).
    3. It reads as UTF-8.

    Raises:
        `error` (SettingsError unless told): the message names `variable` and `path` and says
        what to do, never the content.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{variable}: file {path} does not exist") from None
    except OSError as exc:
        raise error(f"{variable}: file {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{variable}: {path} must be a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise error(
            f"{variable}: file {path} must not be accessible to group or others "
            f"(mode {mode:#o}); operator action: chmod 600 {path}"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise error(f"{variable}: file {path} cannot be read ({reason})") from None


def read_secret_file(path: Path | None, variable: str) -> Secret:
    """The first line of the file `path` (set by `variable`), without its line ending.

    Raises:
        SettingsError: unset, empty, or refused by `read_private_text`. The message names
            `variable` and `path`, and says what to do.
    """
    if path is None:
        raise SettingsError(
            f"{variable} is not set; operator action: point it at a file (mode 600)"
        )
    text = read_private_text(path, variable)
    value = text.splitlines()[0] if text else ""
    if not value:
        raise SettingsError(f"{variable}: file {path} is empty (the secret is its first line)")
    return Secret(value)
