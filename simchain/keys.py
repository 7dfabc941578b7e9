"""Deterministic keypairs of the simulated chain: every role's key follows from the seed."""

from __future__ import annotations

import hashlib
from functools import cache

from solders.hash import Hash
from solders.keypair import Keypair

__all__ = ["Keys", "seeded_hash"]


def seeded_hash(seed: int, *parts: object) -> bytes:
    """32 bytes that depend only on the seed and `parts`."""
    text = ":".join(str(p) for p in ("simchain", seed, *parts))
    return hashlib.sha256(text.encode()).digest()


class Keys:
    """The chain's keypairs: faucet, protocol admin and publisher, wallets, channel creators."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.faucet = self._keypair("faucet")
        self.admin = self._keypair("admin")
        self.publisher = self._keypair("publisher")

    def _keypair(self, *parts: object) -> Keypair:
        return Keypair.from_seed(seeded_hash(self.seed, "key", *parts))

    @cache  # noqa: B019 - one Keys per chain, lives as long as the chain
    def wallet(self, index: int) -> Keypair:
        """Workload wallet number `index` (0-based)."""
        return self._keypair("wallet", index)

    @cache  # noqa: B019
    def creator(self, channel: str) -> Keypair:
        """The creator wallet of a simulated channel."""
        return self._keypair("creator", channel.lower())

    def blockhash(self, slot: int) -> Hash:
        return Hash(seeded_hash(self.seed, "blockhash", slot))
