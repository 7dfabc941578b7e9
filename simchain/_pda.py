"""Cached address derivations: the workload and program rules derive the same PDAs and
associated token accounts many times per transaction."""

from __future__ import annotations

from functools import lru_cache

from solders.pubkey import Pubkey

from aop.core.pda import associated_token_address

__all__ = ["find_ata", "find_pda"]


@lru_cache(maxsize=65_536)
def _find(program_id: Pubkey, seeds: tuple[bytes, ...]) -> tuple[Pubkey, int]:
    return Pubkey.find_program_address(list(seeds), program_id)


def find_pda(seeds: list[bytes] | tuple[bytes, ...], program_id: Pubkey) -> tuple[Pubkey, int]:
    """(address, bump) of the PDA of `seeds` under `program_id`."""
    return _find(program_id, tuple(bytes(s) for s in seeds))


@lru_cache(maxsize=65_536)
def find_ata(owner: Pubkey, mint: Pubkey) -> Pubkey:
    """`owner`'s Token-2022 associated token account for `mint`."""
    return associated_token_address(owner=owner, mint=mint)
