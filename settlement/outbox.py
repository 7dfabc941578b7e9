"""Settlement's side of PostgreSQL: the outbox, its attempts, and the leader lock.

Every method is one short transaction; an asyncio lock serialises them on the one
connection, so channel tasks may call them concurrently.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from aop.core.root_account import OurRoot
from aop.projections.db import libpq_options, libpq_url
from aop.runtime.settings import Settings

__all__ = [
    "FINAL_OUTCOMES",
    "STATUS_AFTER",
    "STOPPED",
    "ChannelStanding",
    "Intent",
    "OutboxEntry",
    "SettlementStore",
]

#: attempt outcomes that end a root's settlement (or a dry run) and go to aop.settlement.
FINAL_OUTCOMES = ("published", "already_on_chain", "dry_run", "failed", "sequence_mismatch")
#: outbox statuses that stop a channel until an operator releases it.
STOPPED = ("failed", "sequence_mismatch")
#: the outbox status each attempt outcome leaves (None: unchanged).
STATUS_AFTER = {
    "intent": "sent",
    "published": "published",
    "already_on_chain": "published",
    "dry_run": "dry_run",
    "expired": "pending",
    "rpc_error": None,
    "failed": "failed",
    "sequence_mismatch": "sequence_mismatch",
}


@dataclass(frozen=True)
class OutboxEntry:
    """One root to settle, with what the publish instruction needs."""

    channel_config: str
    root_seq: int
    channel: str
    format: str
    epoch: int
    status: str
    signature: str | None
    attempts: int
    root: bytes
    dataset_hash: bytes
    program_id: str
    mint: str

    @property
    def our_root(self) -> OurRoot:
        """The root the channel's root account is judged against (`settlement.onchain`)."""
        return OurRoot(self.format, self.root_seq, self.epoch, self.root, self.dataset_hash)


@dataclass(frozen=True)
class Intent:
    """A signed transaction recorded before it was sent."""

    attempt_id: int
    signature: str
    last_valid_block_height: int
    transaction: bytes


@dataclass(frozen=True)
class ChannelStanding:
    """Where a root account's settlement stands (`aop settle --status`).

    `next_*`: the oldest entry not yet published (the next root to go); `stopped_*`: the
    oldest failed / sequence_mismatch entry, whose channel nothing is sent for until released.
    """

    channel_config: str
    channel: str
    format: str
    in_target: bool
    published: int
    last_published_seq: int | None
    open: int
    next_seq: int | None
    next_status: str | None
    stopped_seq: int | None
    stopped_status: str | None
    stopped_detail: str | None
    stopped_since: dt.datetime | None

    @property
    def state(self) -> str:
        """stopped, outside_target (never sent: not an AOP_SETTLEMENT_TARGET format),
        waiting (roots to go) or done."""
        if not self.in_target:
            return "outside_target"
        if self.stopped_seq is not None:
            return "stopped"
        return "waiting" if self.open else "done"


_STANDINGS = """
WITH agg AS (
  SELECT channel_config, max(channel) AS channel, max(format) AS format,
         count(*) FILTER (WHERE status = 'published') AS published,
         max(root_seq) FILTER (WHERE status = 'published') AS last_published_seq,
         count(*) FILTER (WHERE status <> 'published') AS open
    FROM settlement_outbox GROUP BY channel_config),
nxt AS (
  SELECT DISTINCT ON (channel_config) channel_config, root_seq, status
    FROM settlement_outbox WHERE status <> 'published' ORDER BY channel_config, root_seq),
stp AS (
  SELECT DISTINCT ON (channel_config) channel_config, root_seq, status, detail, updated_at
    FROM settlement_outbox WHERE status = ANY(%(stopped)s) ORDER BY channel_config, root_seq)
SELECT a.channel_config, a.channel, a.format, a.format = ANY(%(formats)s) AS in_target,
       a.published, a.last_published_seq, a.open, n.root_seq AS next_seq,
       n.status AS next_status, s.root_seq AS stopped_seq, s.status AS stopped_status,
       s.detail AS stopped_detail, s.updated_at AS stopped_since
  FROM agg a LEFT JOIN nxt n USING (channel_config) LEFT JOIN stp s USING (channel_config)
 ORDER BY a.format LIKE 'global-%%' DESC, a.channel, a.channel_config
"""


def target_formats(target: str) -> tuple[str, ...]:
    """The claim formats `AOP_SETTLEMENT_TARGET` publishes: the per-channel ones for
    "channel", else the global format it names."""
    return ("cumulative-v2", "ring-v0") if target == "channel" else (target,)


_OPEN_ENTRIES = """
SELECT o.channel_config, o.root_seq, o.channel, o.format, o.epoch, o.status, o.signature,
       o.attempts, r.root, r.dataset_hash, r.program_id, r.mint
  FROM settlement_outbox o
  JOIN roots r ON r.channel_config = o.channel_config AND r.root_seq = o.root_seq
 WHERE o.channel_config = %s AND o.status <> 'published'
 ORDER BY o.root_seq
"""


class SettlementStore:
    """See the module docstring. Build with `SettlementStore.open(settings)`."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        lock_conn: psycopg.AsyncConnection[Any],
        *,
        url: str,
        options: str,
        key: str,
        formats: tuple[str, ...] = ("cumulative-v2", "ring-v0"),
    ) -> None:
        self._conn = conn
        #: the claim formats this settlement publishes (`AOP_SETTLEMENT_TARGET`); outbox
        #: entries of other formats are projected and served but never sent.
        self.formats = list(formats)
        self._lock_conn = lock_conn
        self._url = url
        self._options = options
        self._lock_key = key
        self._mutex = asyncio.Lock()
        self._leading = False

    @classmethod
    async def open(cls, settings: Settings) -> SettlementStore:
        url, options = libpq_url(settings), libpq_options(settings)
        conn = await cls._connect(url, options)
        lock_conn = await cls._connect(url, options)
        return cls(
            conn,
            lock_conn,
            url=url,
            options=options,
            key=f"aop.settle:{settings.database_schema}",
            formats=target_formats(settings.settlement_target),
        )

    @staticmethod
    async def _connect(url: str, options: str) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(url, options=options, autocommit=True)

    async def close(self) -> None:
        await self._conn.close()
        await self._lock_conn.close()

    async def reconnect(self) -> None:
        """Replace broken connections (after a database restart); the lock is re-taken by
        the next `try_lead`."""
        async with self._mutex:
            for name in ("_conn", "_lock_conn"):
                old = getattr(self, name)
                if old.broken or old.closed:
                    await old.close()
                    setattr(self, name, await self._connect(self._url, self._options))
                    if name == "_lock_conn":
                        self._leading = False

    async def try_lead(self) -> bool:
        """Hold the settler's advisory lock (one active settler per schema); True if held.

        Asked every pass: once held, a round trip on the lock's session proves it is still
        alive (a dead session raises, `reconnect` follows, and the lock must be won again).
        """
        if self._leading:
            await self._lock_conn.execute("SELECT 1")
            return True
        cursor = await self._lock_conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (self._lock_key,)
        )
        row = await cursor.fetchone()
        self._leading = bool(row and row[0])
        return self._leading

    async def channels(self) -> list[str]:
        """Root accounts (channels, or the global root) of the settlement target's formats
        with an outbox entry not yet published."""
        async with self._mutex:
            cursor = await self._conn.execute(
                "SELECT DISTINCT channel_config FROM settlement_outbox WHERE status <> 'published' "
                "AND format = ANY(%s) ORDER BY channel_config",
                (self.formats,),
            )
            return [row[0] for row in await cursor.fetchall()]

    async def open_entries(self, channel_config: str) -> list[OutboxEntry]:
        """The channel's entries not yet published, in root_seq order."""
        async with self._mutex:
            cursor = self._conn.cursor(row_factory=dict_row)
            await cursor.execute(_OPEN_ENTRIES, (channel_config,))
            rows = await cursor.fetchall()
        return [
            OutboxEntry(
                **{
                    **row,
                    "root": bytes(row["root"]),
                    "dataset_hash": bytes(row["dataset_hash"]),
                }
            )
            for row in rows
        ]

    async def intents(self, channel_config: str, root_seq: int) -> list[Intent]:
        """Every transaction recorded for the root, oldest first."""
        async with self._mutex:
            cursor = await self._conn.execute(
                "SELECT attempt_id, signature, last_valid_block_height, transaction_b64 "
                "FROM settlement_attempts WHERE channel_config = %s AND root_seq = %s AND "
                "outcome = 'intent' ORDER BY attempt_id",
                (channel_config, root_seq),
            )
            rows = await cursor.fetchall()
        return [Intent(int(a), str(s), int(h), base64.b64decode(t)) for a, s, h, t in rows]

    async def record(
        self,
        entry: OutboxEntry,
        outcome: str,
        *,
        signature: str | None = None,
        slot: int | None = None,
        error: str | None = None,
        blockhash: str | None = None,
        last_valid_block_height: int | None = None,
        message_b64: str | None = None,
        transaction_b64: str | None = None,
    ) -> int:
        """Append an attempt and move the outbox entry's status, in one transaction."""
        status = STATUS_AFTER[outcome]
        final = outcome in FINAL_OUTCOMES
        async with self._mutex, self._conn.transaction():
            cursor = await self._conn.execute(
                "INSERT INTO settlement_attempts (channel_config, root_seq, outcome, signature, "
                "slot, error, blockhash, last_valid_block_height, message_b64, transaction_b64, "
                "emitted) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING attempt_id",
                (
                    entry.channel_config,
                    entry.root_seq,
                    outcome,
                    signature,
                    slot,
                    error,
                    blockhash,
                    last_valid_block_height,
                    message_b64,
                    transaction_b64,
                    not final,
                ),
            )
            row = await cursor.fetchone()
            if status is not None:
                keep_signature = outcome in ("intent", "published")
                await self._conn.execute(
                    "UPDATE settlement_outbox SET status = %s, "
                    "signature = CASE WHEN %s THEN %s ELSE signature END, "
                    "slot = COALESCE(%s, slot), attempts = attempts + %s, detail = %s, "
                    "updated_at = now() WHERE channel_config = %s AND root_seq = %s",
                    (
                        status,
                        keep_signature,
                        signature,
                        slot,
                        1 if outcome == "intent" else 0,
                        error,
                        entry.channel_config,
                        entry.root_seq,
                    ),
                )
        return int(row[0]) if row else 0

    async def results_to_emit(self) -> list[dict[str, Any]]:
        """Final attempts whose SettlementResult is not on aop.settlement yet, oldest first."""
        async with self._mutex:
            cursor = self._conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "SELECT a.attempt_id, a.outcome, a.signature, a.slot, a.error, o.channel, "
                "o.channel_config, o.root_seq, o.attempts, r.root FROM settlement_attempts a "
                "JOIN settlement_outbox o ON o.channel_config = a.channel_config AND "
                "o.root_seq = a.root_seq JOIN roots r ON r.channel_config = a.channel_config "
                "AND r.root_seq = a.root_seq WHERE NOT a.emitted ORDER BY a.attempt_id"
            )
            return list(await cursor.fetchall())

    async def mark_emitted(self, attempt_ids: list[int]) -> None:
        if attempt_ids:
            async with self._mutex:
                await self._conn.execute(
                    "UPDATE settlement_attempts SET emitted = true WHERE attempt_id = ANY(%s)",
                    (attempt_ids,),
                )

    async def lag(self) -> int:
        """Outbox entries of the settlement target not yet on-chain."""
        async with self._mutex:
            cursor = await self._conn.execute(
                "SELECT count(*) FROM settlement_outbox WHERE status <> 'published' "
                "AND format = ANY(%s)",
                (self.formats,),
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def standings(self) -> list[ChannelStanding]:
        """Every root account of the outbox (global first): see `ChannelStanding`."""
        async with self._mutex:
            cursor = self._conn.cursor(row_factory=dict_row)
            await cursor.execute(_STANDINGS, {"stopped": list(STOPPED), "formats": self.formats})
            rows = await cursor.fetchall()
        return [ChannelStanding(**row) for row in rows]

    async def release(self, channel: str) -> int:
        """Operator action: put a stopped channel's failed / sequence_mismatch entries back to
        pending (matched by channel name, case-insensitive, or root account address; "global"
        names the global root)."""
        async with self._mutex:
            cursor = await self._conn.execute(
                "UPDATE settlement_outbox SET status = 'pending', detail = NULL, updated_at = "
                "now() WHERE (channel_config = %s OR (channel <> '' AND lower(channel) = "
                "lower(%s)) OR (%s = 'global' AND format LIKE 'global-%%')) AND status IN "
                "('failed', 'sequence_mismatch')",
                (channel, channel, channel.lower()),
            )
            return int(cursor.rowcount)
