"""Typed errors of `core/`: one root, `CoreError`, and one class per kind of bad input.

Pure code raises these; the I/O layers translate them (a 400 in the API, a DLQ record with the
reason in streams, exit code 2 in `aop`). Errors that refine a builtin also subclass it, so a
caller may catch `ValueError` without knowing this module.
"""

from __future__ import annotations

__all__ = [
    "AccountDecodeError",
    "BorshDecodeError",
    "BorshEncodeError",
    "ClaimIdTooLongError",
    "CoreError",
    "DuplicateClaimIdError",
    "DuplicateWalletError",
    "EventDecodeError",
    "InvalidAmountError",
    "InvalidChannelNameError",
    "InvalidClaimInputError",
    "InvalidIntegerError",
    "InvalidNodeError",
    "InvalidPubkeyError",
    "InvalidWalletError",
    "LeafIndexError",
    "MalformedLevelsError",
    "MissingClaimIdError",
    "NoChannelError",
    "ProgramLogError",
    "TooManyClaimsError",
    "TreeTooDeepError",
    "UnknownClaimFormatError",
    "WalletNotInTreeError",
]


class CoreError(Exception):
    """The root of every error raised by `core/`."""


class InvalidIntegerError(CoreError, ValueError):
    """Raised when an integer argument is not an int or is outside its on-chain type's range."""


class InvalidPubkeyError(CoreError, ValueError):
    """Raised when a public key argument is not 32 raw bytes."""


class InvalidChannelNameError(CoreError, ValueError):
    """Raised when a channel name is not 1-64 ASCII characters (the program's rule)."""


class BorshEncodeError(CoreError, ValueError):
    """Raised when a value cannot be Borsh-encoded (wrong type, out of range, wrong length)."""


class BorshDecodeError(CoreError, ValueError):
    """Raised when bytes are not a valid Borsh encoding (short, trailing, or invalid values)."""


class AccountDecodeError(CoreError, ValueError):
    """Raised when account data has the wrong discriminator or length for its layout."""


class EventDecodeError(CoreError, ValueError):
    """Raised when a known event's payload is short, long or otherwise garbled."""


class ProgramLogError(CoreError, ValueError):
    """Raised when a transaction log line of the program cannot be parsed (e.g. bad base64)."""


class InvalidNodeError(CoreError, ValueError):
    """Raised when a Merkle leaf or node is not exactly 32 bytes."""


class TreeTooDeepError(CoreError, ValueError):
    """Raised when a tree would need proofs longer than the program's 32-node limit."""


class MalformedLevelsError(CoreError, ValueError):
    """Raised when stored tree levels do not have the shape of a tree built by `core.merkle`."""


class LeafIndexError(CoreError, IndexError):
    """Raised when a leaf index is outside the tree."""


class UnknownClaimFormatError(CoreError, LookupError):
    """Raised when a claim format name is not registered."""


class NoChannelError(CoreError, ValueError):
    """Raised when a channel is asked of a global tree scope (one root per mint)."""


class WalletNotInTreeError(CoreError, LookupError):
    """Raised when a proof is asked for a wallet that has no leaf in the tree."""


class InvalidClaimInputError(CoreError, ValueError):
    """Raised when one entry of a tree's input is invalid; `position` is its 0-based place.

    The message starts with ``entry <position>:`` so that an operator can find it in the input.
    """

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"entry {position}: {reason}")
        self.position = position
        self.reason = reason


class InvalidWalletError(InvalidClaimInputError):
    """Raised when an input wallet is not 32 raw bytes."""


class InvalidAmountError(InvalidClaimInputError):
    """Raised when an input amount (or sort key) is not an int in its on-chain range."""


class DuplicateWalletError(InvalidClaimInputError):
    """Raised when a wallet appears twice in one tree's input; `first_position` is the first."""

    def __init__(self, position: int, reason: str, first_position: int) -> None:
        super().__init__(position, reason)
        self.first_position = first_position


class TooManyClaimsError(CoreError, ValueError):
    """Raised when a ring-v0 tree would hold more claims than the program's 1024-bit bitmap."""


class ClaimIdTooLongError(CoreError, ValueError):
    """Raised when a ring-v0 claim id is longer than the program's 64-byte limit."""


class DuplicateClaimIdError(InvalidClaimInputError):
    """Raised when a claim id appears twice in one tree with a claim id per leaf."""


class MissingClaimIdError(CoreError, ValueError):
    """Raised when a leaf of a format with one claim id per leaf is asked for without one."""
