"""Keccak-256 with the ORIGINAL Keccak padding, as the program's `sha3::Keccak256` computes it.

This is not FIPS SHA3-256 (`hashlib.sha3_256`), which pads differently and gives other digests.
"""

from __future__ import annotations

from sha3 import keccak_256

__all__ = ["keccak256"]


def keccak256(*parts: bytes) -> bytes:
    """The 32-byte Keccak-256 digest of the concatenation of `parts` (like `keccak_hashv`)."""
    return bytes(keccak_256(b"".join(parts)).digest())
