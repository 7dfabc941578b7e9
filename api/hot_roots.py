"""Hot roots held whole in memory, so a proof against them costs no tree or leaf query.

Why: on the proof endpoint of a 1M-wallet root, slicing six tree levels and probing the
leaf in SQL cost Postgres ~100 us and the API's database client a large share of its CPU
per request. Once a channel's latest root has answered `promote_after` claims from SQL, its
leaves (sorted by wallet) and every tree level are loaded in the background; from then on a
claim against it finds the wallet in its 16-bit-prefix bucket and cuts the proof from
memory (~10 us together, measured). What can change after a root is written (the channel's
latest root, the wallet's claimed total, the settlement status) is held per channel and
re-read at most every AOP_API_FACTS_MAX_AGE_MS (`api.hot_facts`), or, with 0, read for every
claim by a much smaller batched query (`queries.CLAIM_FACTS_BATCH_SQL`): the hot root answers
only while it is still the channel's latest root.

A cumulative-v2 root also holds each wallet's ClaimStateV2 address, derived at load
(`api.claim_states`), so an answer derives none.

Memory: one record of 48 bytes per leaf (wallet, leaf_index, amount), every level (~64 bytes
per leaf) and 32 bytes per leaf of claim-state addresses: ~140 MB for a 1M-wallet root. The
roots held are bounded by `max_bytes` (AOP_API_HOT_ROOTS_BYTES), least recently used out; a
root larger than the whole budget is never loaded, and 0 turns hot roots off. Cold roots are
served from Postgres.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from aop.api import queries
from aop.api.claim_states import ClaimStateDeriver, ClaimStateKeys
from aop.api.db import Database
from aop.api.errors import DatabaseUnavailableError
from aop.api.metrics import HOT_ROOTS_BYTES
from aop.core.merkle import cut_proof

__all__ = ["HotRoot", "HotRoots"]

log = logging.getLogger(__name__)

#: wallet (32) + leaf_index (8, big-endian) + amount - 2^63 (8, big-endian signed): as
#: `queries.HOT_ROOT_LEAVES_SQL` packs a leaf (Postgres has no unsigned 64-bit type).
RECORD = 48
_WALLET = 32
_AMOUNT_OFFSET = 1 << 63
_NODE = 32
#: the load's own limits: sorting a million leaves takes longer than an API statement may.
_LOAD_STATEMENT_TIMEOUT = "120s"
_LOAD_WORK_MEM = "128MB"
#: the bucket table: one 4-byte start per 16-bit wallet prefix, and the count.
_BUCKETS_SIZE = 4 * ((1 << 16) + 1)


class _SortedWallets(Sequence[bytes]):
    """The wallets of a record blob as a sequence, for `bisect` (no copy of the blob)."""

    def __init__(self, records: bytes) -> None:
        self._records = records
        self._count = len(records) // RECORD

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        start = i * RECORD
        return self._records[start : start + _WALLET]


def _bucket_starts(records: bytes) -> array[int]:
    """The first record of each 16-bit wallet prefix, and then the record count (65,537
    entries): a lookup searches one bucket (~n / 65,536 records), not the whole root."""
    wallets = _SortedWallets(records)
    starts = array("I", (bisect_left(wallets, prefix.to_bytes(2)) for prefix in range(1 << 16)))
    starts.append(len(wallets))
    return starts


def _estimated_size(*, leaf_count: int, claim_states: bool) -> int:
    """What `HotRoot.size` will be, at most: records, levels (< 2 nodes per leaf), claim-state
    addresses, buckets."""
    per_leaf = RECORD + 2 * _NODE + (_NODE if claim_states else 0)
    return leaf_count * per_leaf + _BUCKETS_SIZE


@dataclass(frozen=True, eq=False)
class HotRoot:
    """One root in memory: leaf records sorted by wallet, their buckets, every level, and
    the wallets' claim-state addresses in record order (b"": not derived)."""

    channel_config: str
    root_id: int
    root_seq: int
    epoch: int
    root: bytes
    tree_depth: int
    records: bytes
    levels: tuple[bytes, ...]
    buckets: array[int]
    claim_states: bytes = b""

    @classmethod
    def build(
        cls,
        channel_config: str,
        root_id: int,
        meta: tuple[int, int, bytes, int, int],
        records: bytes,
        levels: dict[int, bytes],
    ) -> HotRoot:
        """Check what was read and index it (~0.5 s for 1M leaves: run it off the loop).

        Args:
            meta: root_seq, epoch, root, tree_depth, leaf_count.
        Raises:
            ValueError: the records or levels are not those of the root.
        """
        root_seq, epoch, root, depth, leaf_count = meta
        if len(records) != leaf_count * RECORD:
            raise ValueError(f"{len(records)} bytes of leaf records for {leaf_count} leaves")
        if sorted(levels) != list(range(depth + 1)) or levels[depth] != root:
            raise ValueError(f"the stored levels of root_id {root_id} do not end in its root")
        return cls(
            channel_config, root_id, root_seq, epoch, root, depth, records,
            tuple(levels[level] for level in range(depth + 1)), _bucket_starts(records),
        )  # fmt: skip

    @property
    def size(self) -> int:
        """The bytes it holds (records, levels, buckets and claim-state addresses)."""
        return (
            len(self.records)
            + len(self.claim_states)
            + sum(len(nodes) for nodes in self.levels)
            + len(self.buckets) * self.buckets.itemsize
        )

    def with_claim_states(self, claim_states: bytes) -> HotRoot:
        """This root with the claim-state addresses of its records (32 bytes each, in order).

        Raises:
            ValueError: not one address per record.
        """
        if len(claim_states) != len(self.records) // RECORD * _NODE:
            raise ValueError(f"{len(claim_states)} bytes of claim-state addresses")
        return replace(self, claim_states=claim_states)

    def find(self, wallet: bytes) -> tuple[int, int, bytes | None] | None:
        """(leaf_index, amount, claim-state address or None if not derived) of the 32-byte
        `wallet`, or None if the root has no leaf for it."""
        prefix = wallet[0] << 8 | wallet[1]
        first, end = self.buckets[prefix] * RECORD, self.buckets[prefix + 1] * RECORD
        at = self.records.find(wallet, first, end)
        while at != -1 and (at - first) % RECORD:  # a match across two records: not a wallet
            at = self.records.find(wallet, at + 1, end)
        if at == -1:
            return None
        start = at + _WALLET
        leaf_index = int.from_bytes(self.records[start : start + 8])
        amount = int.from_bytes(self.records[start + 8 : start + 16], signed=True)
        state_at = at // RECORD * _NODE
        claim_state = self.claim_states[state_at : state_at + _NODE] or None
        return leaf_index, amount + _AMOUNT_OFFSET, claim_state

    def proof(self, leaf_index: int) -> tuple[bytes, list[bytes]]:
        """The leaf and its siblings from the leaf up, cut from the levels held
        (`core.merkle.cut_proof`)."""
        depth = self.tree_depth
        leaf, proof = cut_proof(self.levels[: max(depth, 1)], leaf_index)
        return leaf, proof[:depth]


class HotRoots:
    """The channels' hot latest roots (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        max_bytes: int,
        promote_after: int,
        deriver: ClaimStateDeriver | None = None,
    ) -> None:
        self._db = db
        self._max_bytes = max_bytes
        self._promote_after = promote_after
        self._deriver = deriver or ClaimStateDeriver()
        self._roots: OrderedDict[str, HotRoot] = OrderedDict()
        #: per channel: (root_id, claims answered from SQL) of its latest root.
        self._counts: dict[str, tuple[int, int]] = {}
        #: root_ids not to load again (too big for the budget, or not a consistent tree).
        self._skipped: set[int] = set()
        self._loading: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._roots)

    @property
    def held_bytes(self) -> int:
        return sum(root.size for root in self._roots.values())

    def get(self, channel_config: str) -> HotRoot | None:
        """The channel's hot root (marking it recently used), or None."""
        root = self._roots.get(channel_config)
        if root is not None:
            self._roots.move_to_end(channel_config)
        return root

    def discard(self, channel_config: str, root_id: int) -> None:
        """Forget the channel's hot root `root_id` (a newer root is the channel's latest)."""
        root = self._roots.get(channel_config)
        if root is not None and root.root_id == root_id:
            del self._roots[channel_config]
            HOT_ROOTS_BYTES.set(self.held_bytes)

    def close(self) -> None:
        """Stop the claim-state helper process, if one was started."""
        self._deriver.close()

    def note_claim(
        self, channel_config: str, root_id: int, claim_state_keys: ClaimStateKeys | None
    ) -> None:
        """Count a claim answered from SQL against the channel's latest root `root_id`; the
        `promote_after`-th starts loading it (one load at a time), with its wallets'
        claim-state addresses if `claim_state_keys` (the channel's seeds) are given."""
        held = self._roots.get(channel_config)
        if self._max_bytes <= 0 or root_id in self._skipped or (held and held.root_id == root_id):
            return
        seen_id, count = self._counts.get(channel_config, (root_id, 0))
        count = count + 1 if seen_id == root_id else 1
        self._counts[channel_config] = (root_id, count)
        if count >= self._promote_after and (self._loading is None or self._loading.done()):
            self._loading = asyncio.get_running_loop().create_task(
                self._load(channel_config, root_id, claim_state_keys)
            )

    async def _load(
        self, channel_config: str, root_id: int, claim_state_keys: ClaimStateKeys | None
    ) -> None:
        try:
            root = await self._fetch(channel_config, root_id, claim_state_keys)
        except DatabaseUnavailableError as exc:  # counted again from zero, then retried
            log.warning("hot root %d not loaded: %s", root_id, exc)
            self._counts.pop(channel_config, None)
            return
        except ValueError as exc:
            log.error("hot root %d not loaded: %s", root_id, exc)
            self._skipped.add(root_id)
            return
        if root is None:
            self._skipped.add(root_id)
            return
        self._roots.pop(channel_config, None)
        self._roots[channel_config] = root
        total = self.held_bytes
        while total > self._max_bytes:
            _, evicted = self._roots.popitem(last=False)
            total -= evicted.size
        self._counts.pop(channel_config, None)
        HOT_ROOTS_BYTES.set(total)
        log.info("hot root %d of %s loaded (%d bytes)", root_id, channel_config, root.size)

    async def _fetch(
        self, channel_config: str, root_id: int, claim_state_keys: ClaimStateKeys | None
    ) -> HotRoot | None:
        """The root read whole (with its claim-state addresses, if keys are given), or None if
        it would not fit the budget or its proofs were pruned.

        Raises:
            DatabaseUnavailableError: the database failed.
            ValueError: what was read is not a consistent tree.
        """
        async with self._db.connection() as conn, conn.transaction():
            # one snapshot for the three reads: a root pruned meanwhile (`projections.retention`)
            # is read whole or has no meta row (None: skipped), never half
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            await conn.execute(f"SET LOCAL statement_timeout = '{_LOAD_STATEMENT_TIMEOUT}'")
            await conn.execute(f"SET LOCAL work_mem = '{_LOAD_WORK_MEM}'")
            cursor = conn.cursor(binary=True)
            await cursor.execute(queries.HOT_ROOT_META_SQL, {"root_id": root_id})
            row = await cursor.fetchone()
            if row is None:
                return None
            meta = (int(row[0]), int(row[1]), bytes(row[2]), int(row[3]), int(row[4]))
            wanted = _estimated_size(leaf_count=meta[4], claim_states=bool(claim_state_keys))
            if wanted > self._max_bytes:
                return None
            await cursor.execute(queries.HOT_ROOT_LEAVES_SQL, {"root_id": root_id})
            (records,) = await cursor.fetchone() or (None,)
            await cursor.execute(queries.ROOT_ALL_LEVELS_SQL, {"root_id": root_id})
            levels = {int(level): bytes(nodes) for level, nodes in await cursor.fetchall()}
        root = await asyncio.to_thread(
            HotRoot.build, channel_config, root_id, meta, bytes(records or b""), levels
        )
        if claim_state_keys is None:
            return root
        try:
            addresses = await self._deriver.derive(claim_state_keys, root.records, stride=RECORD)
        except BrokenProcessPool as exc:  # held anyway: its answers derive their own addresses
            log.warning("claim states of hot root %d not derived: %s", root_id, exc)
            return root
        return root.with_claim_states(addresses)
