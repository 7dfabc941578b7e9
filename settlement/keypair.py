"""The publisher keypair, read from a Solana CLI JSON file (a list of 64 integers).

The secret never appears in a message or a log line: errors name the variable, the path and
what is wrong, not the content.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from solders.keypair import Keypair

from aop.runtime.secrets import read_private_text
from aop.settlement.errors import PublisherKeypairError

__all__ = ["load_keypair", "load_publisher_keypair", "write_keypair"]

_VAR = "AOP_PUBLISHER_KEYPAIR"


def load_publisher_keypair(path: Path | None) -> Keypair:
    """Read the publisher's keypair file (AOP_PUBLISHER_KEYPAIR) at `path`.

    Raises:
        PublisherKeypairError: unset, or refused by `load_keypair`.
    """
    if path is None:
        raise PublisherKeypairError(
            f"{_VAR} is not set; operator action: point it at the publisher's keypair file "
            "(Solana CLI JSON, mode 600)"
        )
    return load_keypair(path, _VAR)


def load_keypair(path: Path, variable: str) -> Keypair:
    """Read a Solana CLI keypair file (a JSON list of 64 integers, mode 600) that the setting
    or option `variable` names.

    Raises:
        PublisherKeypairError: refused by `read_private_text` (missing, not a regular file,
            open to group or others, unreadable), not a JSON list of 64 integers 0-255, or
            not a valid ed25519 keypair. The message names `variable` and `path`, never the
            content.
    """
    text = read_private_text(path, variable, PublisherKeypairError)
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if (
        not isinstance(values, list)
        or len(values) != 64
        or not all(type(v) is int and 0 <= v <= 255 for v in values)
    ):
        raise PublisherKeypairError(
            f"{variable}: file {path} must hold a JSON list of 64 integers 0-255 "
            "(the Solana CLI keypair format)"
        )
    try:
        return Keypair.from_bytes(bytes(values))
    except ValueError:
        raise PublisherKeypairError(
            f"{variable}: file {path} does not hold a valid ed25519 keypair (the public half "
            "must match the secret half)"
        ) from None


def write_keypair(path: Path, keypair: Keypair) -> None:
    """Write `keypair` to a new file at `path` in the Solana CLI format, mode 600 from birth.

    The file is created with O_EXCL and mode 0o600 (the umask can only narrow it), so no other
    user can open it between its creation and a later chmod.

    Raises:
        FileExistsError: `path` exists (never overwrite a key).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(json.dumps(list(bytes(keypair))))
