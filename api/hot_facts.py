"""What can change under a hot root, held in memory and re-read at most every `max_age_s`.

Why: a claim against a hot root (`api.hot_roots`) needs, besides the root, three facts that
change after the root was written: the channel's latest root (a hot root answers only while
it is the latest), the wallet's claimed total and the latest root's settlement status. Read
per request (a batched query) they were most of the API's remaining cost per proof
(bench/api.py, BENCHMARKS.md). Here they are read per channel, at most once every
`max_age_s` (AOP_API_FACTS_MAX_AGE_MS, 250 ms): a request that finds them older waits for
the re-read (one at a time per channel, shared by every request waiting). So an answer is
never older than that; claim answers already carry Cache-Control max-age
AOP_API_MUTABLE_MAX_AGE_S (5 s), which clients and caches may serve for longer.

A re-read is two statements: the channel's latest root and its settlement status, and the
claimed totals changed at or after the highest slot seen (all of them the first time; index
`ix_claimed_totals_channel_config_slot`). That catches every change because the projector
writes a channel's claims in log order, one transaction after the other, and a total only
grows with a later claim (so a later slot); the boundary slot is read again, in case its
claims came in two transactions. Memory: one entry per wallet that has claimed in the
channel, only for channels with a hot root.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aop.api import queries
from aop.api.db import Database

__all__ = ["ChannelFacts", "HotFacts"]


@dataclass(slots=True)
class ChannelFacts:
    """One channel's facts as of `read_at` (time.monotonic())."""

    latest_root_id: int
    latest_root_seq: int
    latest_epoch: int
    status: str | None
    #: wallet -> claimed total (as Postgres gives it), for the wallets that claimed.
    claimed: dict[bytes, Any] = field(default_factory=dict)
    #: the highest slot among `claimed`: the next re-read starts there.
    since_slot: int = 0
    read_at: float = 0.0


class HotFacts:
    """The facts of the channels with a hot root (see the module docstring)."""

    def __init__(self, db: Database, *, max_age_s: float) -> None:
        self._db = db
        self._max_age_s = max_age_s
        self._facts: dict[str, ChannelFacts] = {}
        self._reads: dict[str, asyncio.Task[ChannelFacts | None]] = {}
        #: statements run by re-reads (tests and benchmarks).
        self.reads = 0

    async def get(self, channel_config: str) -> ChannelFacts | None:
        """The channel's facts, at most `max_age_s` old; None if it has no root.

        Raises:
            DatabaseUnavailableError: the database failed.
        """
        facts = self._facts.get(channel_config)
        if facts is not None and time.monotonic() - facts.read_at <= self._max_age_s:
            return facts
        task = self._reads.get(channel_config)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(channel_config, facts))
            self._reads[channel_config] = task
            task.add_done_callback(lambda _: self._reads.pop(channel_config, None))
        return await asyncio.shield(task)

    async def _read(self, channel_config: str, known: ChannelFacts | None) -> ChannelFacts | None:
        started = time.monotonic()
        since = known.since_slot if known is not None else 0
        async with self._db.connection() as conn:
            cursor = conn.cursor(binary=True)
            await cursor.execute(queries.HOT_FACTS_CHANNEL_SQL, {"config": channel_config})
            row = await cursor.fetchone()
            if row is None:
                self._facts.pop(channel_config, None)
                return None
            await cursor.execute(
                queries.HOT_FACTS_CLAIMED_SQL, {"config": channel_config, "since": since}
            )
            changed = await cursor.fetchall()
        self.reads += 2
        root_id, root_seq, epoch, status = row
        # a claimed total belongs to (channel, wallet), whatever the latest root: keep them
        claimed = known.claimed if known is not None else {}
        facts = ChannelFacts(int(root_id), int(root_seq), int(epoch), status, claimed)
        for wallet, claimed_total, slot in changed:
            claimed[bytes(wallet)] = claimed_total
            since = max(since, int(slot))
        facts.since_slot = since
        facts.read_at = started
        self._facts[channel_config] = facts
        return facts
