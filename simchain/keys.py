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
        self._wallets: dict[int, Keypair] = {}
        self._wallet_keys: dict[int, Pubkey] = {}

    def _keypair(self, *parts: object) -> Keypair:
        return Keypair.from_seed(seeded_hash(self.seed, "key", *parts))

    def wallet(self, index: int) -> Keypair:
        """Workload wallet number `index` (0-based); cached until `forget_wallet(index)`."""
        keypair = self._wallets.get(index)
        if keypair is None:
            keypair = self._wallets[index] = self._keypair("wallet", index)
        return keypair

    def wallet_key(self, index: int) -> Pubkey:
        """The public key of workload wallet number `index` (cached with the keypair)."""
        key = self._wallet_keys.get(index)
        if key is None:
            key = self._wallet_keys[index] = public_key(self.wallet(index))
        return key

    def forget_wallet(self, index: int) -> None:
        """Drop wallet `index` from the caches (it left; they hold only wallets in use)."""
        self._wallets.pop(index, None)
        self._wallet_keys.pop(index, None)

    @cache  # noqa: B019
    def creator(self, channel: str) -> Keypair:
        """The creator wallet of a simulated channel."""
        return self._keypair("creator", channel.lower())

    def blockhash(self, slot: int) -> Hash:
        return Hash(seeded_hash(self.seed, "blockhash", slot))
