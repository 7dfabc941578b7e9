"""Deterministic keypairs of the simulated chain: every role's key follows from the seed."""

from __future__ import annotations

import hashlib
from functools import cache

from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey

__all__ = ["Keys", "public_key", "seeded_hash"]


def public_key(keypair: Keypair) -> Pubkey:
    """`keypair.pubkey()` without its cost: that call re-derives the key (about 23 µs, as
    much as a third of a signature), while the keypair's 64 bytes end with it."""
    return Pubkey(bytes(keypair)[32:])


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
    def wallet_key(self, index: int) -> Pubkey:
        """The public key of workload wallet number `index`."""
        return public_key(self.wallet(index))

    @cache  # noqa: B019
    def creator(self, channel: str) -> Keypair:
        """The creator wallet of a simulated channel."""
        return self._keypair("creator", channel.lower())

    def blockhash(self, slot: int) -> Hash:
        return Hash(seeded_hash(self.seed, "blockhash", slot))
