"""The ClaimStateV2 addresses of a hot root's wallets, derived before the root is held.

Why: a claim answer names the wallet's ClaimStateV2 PDA, and deriving it per answer
(`find_program_address`: a SHA-256 and an ed25519 point decompression per bump tried,
~9 µs) was ~11 % of the API's CPU per proof on a 1,000,000-wallet root (bench/api.py,
py-spy). A hot root therefore carries every wallet's address, derived once when it is
loaded. solders holds the GIL while it derives, so a thread would stall the event loop for
the ~10 s a million wallets take: roots above `inline_max` leaves are derived in one helper
process (spawned on first use, so it inherits nothing of the server), and the claims keep
being answered from Postgres meanwhile; smaller roots take a thread (≤ ~40 ms).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from solders.pubkey import Pubkey

from aop.core.pda import claim_state_addresses

__all__ = ["ClaimStateDeriver", "ClaimStateKeys"]

#: (program id, channel config PDA): what a channel's ClaimStateV2 seeds need besides a wallet.
ClaimStateKeys = tuple[Pubkey, Pubkey]


class ClaimStateDeriver:
    """Derives the addresses of all the wallets of a root's leaf records."""

    def __init__(self, *, inline_max: int = 4096) -> None:
        self._inline_max = inline_max
        self._pool: ProcessPoolExecutor | None = None

    async def derive(self, keys: ClaimStateKeys, records: bytes, *, stride: int) -> bytes:
        """The addresses (32 bytes each, in record order) of the wallets that start every
        `stride` bytes of `records`.

        Raises:
            BrokenProcessPool: the helper process died (the next call starts another).
        """
        program_id, channel_config = keys
        work = partial(
            claim_state_addresses,
            program_id=program_id,
            channel_config=channel_config,
            wallets=records,
            stride=stride,
        )
        if len(records) // stride <= self._inline_max:
            return await asyncio.to_thread(work)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        except BrokenProcessPool:
            self._pool = None
            raise

    def close(self) -> None:
        """Stop the helper process, if one was started."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
