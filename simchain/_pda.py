"""A cached `find_program_address`: the workload and program rules derive the same PDAs often."""

from __future__ import annotations

from functools import lru_cache

from solders.pubkey import Pubkey

__all__ = ["find_pda"]


@lru_cache(maxsize=65_536)
def _find(program_id: Pubkey, seeds: tuple[bytes, ...]) -> tuple[Pubkey, int]:
    return Pubkey.find_program_address(list(seeds), program_id)


def find_pda(seeds: list[bytes] | tuple[bytes, ...], program_id: Pubkey) -> tuple[Pubkey, int]:
    """(address, bump) of the PDA of `seeds` under `program_id`."""
    return _find(program_id, tuple(bytes(s) for s in seeds))
