"""Well-known program ids. The attention-oracle id is only a default: it is a setting."""

from __future__ import annotations

from solders.pubkey import Pubkey

__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "DEFAULT_PROGRAM_ID",
    "SYSTEM_PROGRAM_ID",
    "TOKEN_2022_PROGRAM_ID",
]

#: `declare_id!` of the attention-oracle program on every version (pass yours explicitly).
DEFAULT_PROGRAM_ID = Pubkey.from_string("GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
