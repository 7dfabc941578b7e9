"""Bearer tokens per source, stored hashed (AOP_INGEST_TOKENS_FILE).

The file holds one line per token, `<source> sha256:<64 hex digits>`, blank lines and `#`
comments allowed; a source may hold several tokens (rotation: add the new one, move the
collector, delete the old line). It is read with the rule of every secret file
(`runtime.secrets.read_private_text`: a regular file, mode 600). A token is 32 random bytes,
base64url, behind the prefix `aopi_` (so secret scanners can find leaked ones):

* hashed with SHA-256, not a password hash: a token has 256 bits of entropy, so a fast hash
  is enough, and the ingest checks one per request;
* compared with `hmac.compare_digest` against every line, with no early exit, so the time a
  check takes does not depend on which line (if any) matches.

`mint_token` makes one and the line to add (`aop ingest token new`). Tokens are never logged;
`TokenTable`'s repr names the sources only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aop.runtime.errors import SettingsError
from aop.runtime.secrets import Secret, read_private_text

__all__ = [
    "SOURCE_PATTERN",
    "TOKEN_PREFIX",
    "MintedToken",
    "TokenFile",
    "TokenTable",
    "hash_token",
    "mint_token",
]

#: the variable that names the file (in messages).
VARIABLE = "AOP_INGEST_TOKENS_FILE"
TOKEN_PREFIX = "aopi_"
#: a source's name: lower-case letters, digits, '.', '_', '-'; 1-64 characters.
SOURCE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LINE = re.compile(r"(\S+)\s+sha256:([0-9a-f]{64})")


def hash_token(token: str) -> bytes:
    """The SHA-256 of a token's UTF-8 bytes (what the file stores, as hex)."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class MintedToken:
    """A new token (shown once) and the tokens-file line that admits it."""

    source: str
    token: Secret
    line: str


def mint_token(source: str) -> MintedToken:
    """A new random token for `source` and its `<source> sha256:<hex>` line.

    Raises:
        ValueError: `source` does not match `SOURCE_PATTERN`.
    """
    if not SOURCE_PATTERN.fullmatch(source):
        raise ValueError(
            "a source name must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter "
            f"or digit (got {source!r})"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return MintedToken(source, Secret(token), f"{source} sha256:{hash_token(token).hex()}")


class TokenTable:
    """The sources' token hashes; `source_of(token)` says whose a presented token is."""

    def __init__(self, entries: list[tuple[str, bytes]]) -> None:
        self._entries = tuple(entries)
        self.sources = tuple(sorted({source for source, _ in entries}))

    @classmethod
    def empty(cls) -> TokenTable:
        """No tokens: every request is refused (the file is unset)."""
        return cls([])

    @classmethod
    def from_file(cls, path: Path) -> TokenTable:
        """The tokens of the file at `path`.

        Raises:
            SettingsError: the file is refused by `read_private_text` (missing, not a
                regular file, readable by others), or a line is malformed (its number named,
                never its content past the source).
        """
        entries: list[tuple[str, bytes]] = []
        text = read_private_text(path, VARIABLE)
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            match = _LINE.fullmatch(line)
            if match is None or not SOURCE_PATTERN.fullmatch(match.group(1)):
                source = line.split()[0][:64]
                raise SettingsError(
                    f"{VARIABLE}: {path} line {number} (source {source!r}) must be "
                    "'<source> sha256:<64 lower-case hex digits>' with a source of a-z, 0-9, "
                    "'.', '_', '-'; operator action: fix or delete the line (`aop ingest token "
                    "new --source NAME` prints a good one)"
                )
            entries.append((match.group(1), bytes.fromhex(match.group(2))))
        return cls(entries)

    def source_of(self, token: str) -> str | None:
        """The source holding `token`, or None. Constant time in which entry matches."""
        digest = hash_token(token)
        found: str | None = None
        for source, stored in self._entries:
            if hmac.compare_digest(stored, digest):
                found = source
        return found

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TokenTable({len(self._entries)} tokens of sources {list(self.sources)})"


class TokenFile:
    """The tokens of AOP_INGEST_TOKENS_FILE, re-read when the file changes (rotation needs no
    restart). A changed file that is refused keeps the tokens in force and is reported."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._signature = self._stat()
        self.table = TokenTable.from_file(path) if path is not None else TokenTable.empty()

    def _stat(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None
        try:
            info = self._path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def reload_if_changed(self) -> Literal[True] | None:
        """Re-read the file if it changed since it was last read: True when the new tokens
        are in force, None when nothing changed.

        Raises:
            SettingsError: the changed file is refused; the old tokens stay in force.
        """
        signature = self._stat()
        if signature == self._signature or self._path is None:
            return None
        self._signature = signature
        self.table = TokenTable.from_file(self._path)
        return True
