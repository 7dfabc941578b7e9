"""What the API reads: channels, roots and claims, shaped as the JSON the routes return.

`Reader` holds the connection pool and the in-memory caches:

* channels by config PDA and by lower-cased name (immutable facts: name, subject id,
  format, program id, mint), so the hot path needs no lookup query;
* roots' immutable facts by (channel_config, root_seq) (dataset and proof-for-a-root
  answers; a cached root answers If-None-Match without the database);
* the upper tree levels of recently used roots by root_id (levels of at most
  AOP_API_CACHE_LEVEL_NODES nodes), so the claim query slices only the large lower levels in
  SQL;
* the channels' hot latest roots whole (`api.hot_roots`, AOP_API_HOT_ROOTS_BYTES): a claim
  against one reads only what may have changed (latest root, claimed total, settlement
  status) and cuts its proof from memory.

Every answer is a Struct of `api.shapes`, which says how values are written (amounts as
decimal strings, hashes as lower-case hex, keys base58).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast, get_args

from solders.pubkey import Pubkey

from aop.api import queries
from aop.api.batch import ClaimBatcher
from aop.api.cache import AsyncLRU
from aop.api.claim_states import ClaimStateKeys
from aop.api.db import Database
from aop.api.errors import DatabaseUnavailableError, GoneError, NotFoundError
from aop.api.hot_facts import HotFacts
from aop.api.hot_roots import HotRoot, HotRoots
from aop.api.params import ChannelRef
from aop.api.shapes import (
    ChannelDetail,
    ChannelList,
    ChannelSummary,
    Claim,
    Format,
    InputRange,
    RootClaim,
    RootDetail,
    RootList,
    RootSummary,
    Settlement,
    WalletClaims,
)
from aop.core import merkle
from aop.core.accounts import CHANNEL_RING_SLOTS
from aop.core.claims.ring_v0 import ring_claim_id
from aop.core.errors import CoreError, MalformedLevelsError
from aop.core.pda import claim_state_address, claim_state_global_address

__all__ = ["ROOT_RING", "ChannelInfo", "Reader", "RootMeta", "cut_proof", "is_stale"]

#: cumulative-v2 keeps the 4 newest roots on-chain (`roots[root_seq % 4]`).
ROOT_RING = 4
_NODE = 32


@dataclass(frozen=True, eq=False)
class ChannelInfo:
    """The immutable facts of a channel."""

    channel_config: str
    name: str
    subject_id: bytes
    format: str
    program_id: str
    mint: str

    @cached_property
    def claim_state_keys(self) -> ClaimStateKeys | None:
        """The seeds of its ClaimStateV2 PDAs besides the wallet (cumulative-v2 only; ring-v0
        has no such account)."""
        if self.format != "cumulative-v2":
            return None
        try:
            return Pubkey.from_string(self.program_id), Pubkey.from_string(self.channel_config)
        except ValueError:
            return None

    @property
    def is_global(self) -> bool:
        """A mint's global root account (global-v4/v5), not a channel."""
        return self.format in ("global-v4", "global-v5")

    def claim_state(self, wallet: bytes) -> str | None:
        """The wallet's ClaimStateV2 PDA (cumulative-v2), ClaimStateGlobal PDA (the global
        formats), or None (ring-v0 has no claim-state account)."""
        if self.is_global:
            return str(
                claim_state_global_address(
                    program_id=Pubkey.from_string(self.program_id),
                    mint=Pubkey.from_string(self.mint),
                    wallet=Pubkey(wallet),
                ).address
            )
        keys = self.claim_state_keys
        if keys is None:
            return None
        program_id, config = keys
        return str(
            claim_state_address(
                program_id=program_id, channel_config=config, wallet=Pubkey(wallet)
            ).address
        )

    def claim_id(self, epoch: int) -> str | None:
        """The ring-v0 claim id of `epoch` ('<channel>:<epoch>'); None for other formats."""
        if self.format != "ring-v0":
            return None
        try:
            return ring_claim_id(self.name, epoch)
        except CoreError:
            return None


@dataclass(frozen=True, eq=False)
class RootMeta:
    """The immutable facts of a stored root."""

    channel: ChannelInfo
    root_id: int
    root_seq: int
    epoch: int
    format: str
    root: bytes
    dataset_hash: bytes
    leaf_count: int
    tree_depth: int


def _iso(value: dt.datetime) -> str:
    """A NOT NULL timestamp column as ISO 8601."""
    return value.isoformat()


def _format(value: str) -> Format:
    """A stored claim format as the answers' closed choice (the writer stores only these)."""
    if value not in _FORMATS:
        raise DatabaseUnavailableError(f"the projections hold an unknown claim format {value!r}")
    return cast(Format, value)


_FORMATS = frozenset(get_args(Format))


def _root_summary(row: Sequence[Any]) -> RootSummary:
    root_seq, epoch, root, dataset_hash, leaf_count, total, status = row
    return RootSummary(
        root_seq=int(root_seq),
        epoch=int(epoch),
        root=bytes(root).hex(),
        dataset_hash=bytes(dataset_hash).hex(),
        leaf_count=int(leaf_count),
        total=str(int(total)),
        settlement_status=status,
    )


def is_stale(
    fmt: str, *, root_seq: int, epoch: int, latest_root_seq: int, latest_epoch: int
) -> bool:
    """Whether the program no longer holds the root: cumulative-v2 keeps the 4 newest
    root_seqs; ring-v0 keeps the 10 newest epochs (slot `epoch % 10`)."""
    if fmt == "ring-v0":
        return epoch <= latest_epoch - CHANNEL_RING_SLOTS
    return root_seq <= latest_root_seq - ROOT_RING


def cut_proof(
    leaf_index: int,
    tree_depth: int,
    sql_pairs: bytes,
    cached_levels: Mapping[int, bytes],
) -> tuple[bytes, list[bytes]]:
    """The leaf and its proof from the pairs SQL cut and the levels cached above them
    (`core.merkle.cut_proof` cuts).

    Args:
        leaf_index: the leaf's position.
        tree_depth: the proof length (0 for a one-leaf tree).
        sql_pairs: the pairs on the path of the lowest levels, level 0 first, 64 bytes each,
            as `CLAIMS_BATCH_SQL` cuts them (an odd level's last node doubled).
        cached_levels: whole levels (by level number) for the levels above those.
    Returns:
        (leaf, siblings from the leaf up).
    Raises:
        DatabaseUnavailableError: a level is missing or too short (the stored tree is not
            what the projections writer stores).
    """
    pair_size = 2 * _NODE
    in_sql = min(len(sql_pairs) // pair_size, max(tree_depth, 1))
    levels = [sql_pairs[at : at + pair_size] for at in range(0, in_sql * pair_size, pair_size)]
    for level in range(in_sql, max(tree_depth, 1)):
        nodes = cached_levels.get(level)
        if nodes is None:
            raise DatabaseUnavailableError(f"tree level {level} is missing")
        levels.append(nodes)
    try:
        leaf, proof = merkle.cut_proof(levels, leaf_index, pairs=in_sql)
    except MalformedLevelsError as exc:
        raise DatabaseUnavailableError(f"the stored tree is not whole: {exc}") from exc
    return leaf, proof[:tree_depth]


def _leaf_fields(
    info: ChannelInfo,
    wallet: bytes,
    fmt: str,
    *,
    root_seq: int,
    epoch: int,
    leaf_index: int,
    amount: int,
    claim_state: bytes | None = None,
) -> dict[str, Any]:
    """The fields every claim answer starts with (`shapes.ClaimLeaf`): whose leaf, in which
    root, for how much (`claim_state`: the wallet's address if already derived)."""
    return {
        "channel": info.name,
        "channel_config": info.channel_config,
        "format": fmt,
        "program_id": info.program_id,
        "mint": info.mint,
        "wallet": str(Pubkey(wallet)),
        "claim_state": info.claim_state(wallet)
        if claim_state is None
        else str(Pubkey(claim_state)),
        "root_seq": root_seq,
        "epoch": epoch,
        "leaf_index": leaf_index,
        "amount": str(amount),
        "cumulative_total": str(amount) if fmt != "ring-v0" else None,
    }


def _claim(
    info: ChannelInfo,
    wallet: bytes,
    *,
    root_seq: int,
    epoch: int,
    root: bytes,
    leaf_index: int,
    amount: int,
    leaf: bytes,
    proof: list[bytes],
    latest_root_seq: int,
    latest_epoch: int,
    claimed: Any,
    status: str | None,
    claim_state: bytes | None = None,
) -> Claim:
    """A claim as `Reader.claim` answers it (`claimed`: the stored claimed total or None;
    `claim_state`: the wallet's address if already derived)."""
    fmt = info.format
    cumulative = fmt != "ring-v0"
    claimed_total = int(claimed) if claimed is not None else 0
    leaf_fields = _leaf_fields(
        info, wallet, fmt, root_seq=root_seq, epoch=epoch, leaf_index=leaf_index, amount=amount,
        claim_state=claim_state,
    )  # fmt: skip
    return Claim(
        **leaf_fields,
        claimed_total=str(claimed_total) if cumulative else None,
        claimable=str(max(0, amount - claimed_total)) if cumulative else None,
        claim_id=info.claim_id(epoch),
        leaf=leaf.hex(),
        root=root.hex(),
        proof=[node.hex() for node in proof],
        latest_root_seq=latest_root_seq,
        stale=is_stale(
            fmt,
            root_seq=root_seq,
            epoch=epoch,
            latest_root_seq=latest_root_seq,
            latest_epoch=latest_epoch,
        ),
        settlement_status=status,
    )


class Reader:
    """Reads for the routes (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        cache_roots: int,
        cache_level_nodes: int,
        hot_roots_bytes: int = 0,
        hot_root_claims: int = 1,
        batch_size: int = 64,
        batch_inflight: int = 2,
        facts_max_age_s: float = 0.0,
    ) -> None:
        self._db = db
        self._channels: AsyncLRU[tuple[str, str], ChannelInfo] = AsyncLRU(4096)
        self._roots: AsyncLRU[tuple[str, int], RootMeta] = AsyncLRU(max(cache_roots, 1) * 8)
        self._levels: AsyncLRU[int, dict[int, bytes]] = AsyncLRU(cache_roots)
        #: levels of at most this many nodes come from the cache (0: none do).
        self._k = cache_level_nodes if cache_roots > 0 else 0
        self._batcher = ClaimBatcher(
            db,
            queries.CLAIMS_BATCH_SQL,
            {"k": self._k},
            max_batch=batch_size,
            max_inflight=batch_inflight,
        )
        self._facts = ClaimBatcher(
            db, queries.CLAIM_FACTS_BATCH_SQL, max_batch=batch_size, max_inflight=batch_inflight
        )
        self.hot_roots = HotRoots(db, max_bytes=hot_roots_bytes, promote_after=hot_root_claims)
        #: the facts of hot roots held per channel (None: read per claim, `self._facts`).
        self.hot_facts = HotFacts(db, max_age_s=facts_max_age_s) if facts_max_age_s > 0 else None
        #: global-v5 attention bonuses by (root account, root_seq, wallet): roots never change.
        self._bonuses: AsyncLRU[tuple[str, int, bytes], int] = AsyncLRU(100_000)

    @property
    def db(self) -> Database:
        return self._db

    # -- channels ----------------------------------------------------------------------------

    async def channel(self, ref: ChannelRef) -> ChannelInfo:
        """The channel `ref` names: its config PDA if one matches, else its name.

        Raises:
            NotFoundError: channel_not_found.
        """
        if "\x00" in ref.raw:  # Postgres text cannot hold NUL, so no stored name has one
            raise NotFoundError("channel_not_found", f"no channel is named {ref.raw!r}")
        key = ("cfg", ref.config) if ref.config is not None else ("name", ref.name_key)
        cached = self._channels.peek(key)
        if cached is not None:
            return cached
        row = await self._db.fetchone(
            queries.CHANNEL_LOOKUP_SQL, {"config": ref.config, "name_key": ref.name_key}
        )
        if row is None:
            raise NotFoundError(
                "channel_not_found", f"no channel is named or configured {ref.raw!r}"
            )
        config, name, subject, fmt, program_id, mint = row
        info = ChannelInfo(config, name, bytes(subject), fmt, program_id, mint)
        self._channels.put(("cfg", config), info)
        if name.lower() == ref.name_key:
            self._channels.put(("name", ref.name_key), info)
        return info

    async def channels(self, *, limit: int, after: str | None) -> ChannelList:
        """A page of channels in config-PDA order (`after`: the last config of the page before)."""
        rows = await self._db.fetchall(queries.CHANNELS_SQL, {"after": after, "limit": limit + 1})
        page = rows[:limit]
        return ChannelList(
            channels=[
                ChannelSummary(
                    name=name,
                    channel_config=config,
                    format=_format(fmt),
                    latest_root_seq=int(seq),
                    latest_epoch=int(epoch),
                )
                for config, name, fmt, seq, epoch in page
            ],
            next_after=page[-1][0] if len(rows) > limit else None,
        )

    async def channel_detail(self, info: ChannelInfo) -> ChannelDetail:
        """Name, subject id, config PDA, format, program, mint and the latest root."""
        row = await self._db.fetchone(queries.CHANNEL_DETAIL_SQL, {"config": info.channel_config})
        if row is None:
            raise NotFoundError("channel_not_found", f"channel {info.name!r} is gone")
        latest_root_seq, latest_epoch, updated_at, *root = row
        return ChannelDetail(
            name=info.name,
            channel_config=info.channel_config,
            subject_id=info.subject_id.hex(),
            format=_format(info.format),
            program_id=info.program_id,
            mint=info.mint,
            latest_root_seq=int(latest_root_seq),
            latest_epoch=int(latest_epoch),
            updated_at=_iso(updated_at),
            latest_root=_root_summary(root) if root[0] is not None else None,
        )

    # -- roots -------------------------------------------------------------------------------

    async def roots(self, info: ChannelInfo, *, limit: int, before: int | None) -> RootList:
        """A page of the channel's roots, newest first, with root_seq < `before`."""
        rows = await self._db.fetchall(
            queries.ROOTS_SQL,
            {"config": info.channel_config, "before": before, "limit": limit + 1},
        )
        page = rows[:limit]
        return RootList(
            channel=info.name,
            channel_config=info.channel_config,
            roots=[_root_summary(row) for row in page],
            next_before=int(page[-1][0]) if len(rows) > limit else None,
        )

    async def root_detail(self, info: ChannelInfo, root_seq: int) -> RootDetail:
        """One root: hashes, counts, epoch, input offsets, settlement state.

        Raises:
            NotFoundError: root_not_found.
        """
        row = await self._db.fetchone(
            queries.ROOT_DETAIL_SQL, {"config": info.channel_config, "root_seq": root_seq}
        )
        if row is None:
            raise NotFoundError(
                "root_not_found", f"channel {info.name!r} has no root_seq {root_seq}"
            )
        seq, epoch, root, dataset_hash, leaf_count, depth, total, emission = row[:8]
        closed_at_slot, input_offsets, created_at = row[8:11]
        status, signature, slot, attempts, updated_at = row[11:]
        settlement = None
        if status is not None:
            settlement = Settlement(
                status=status,
                signature=signature,
                slot=int(slot) if slot is not None else None,
                attempts=int(attempts),
                updated_at=_iso(updated_at),
            )
        return RootDetail(
            channel=info.name,
            channel_config=info.channel_config,
            format=_format(info.format),
            program_id=info.program_id,
            mint=info.mint,
            root_seq=int(seq),
            epoch=int(epoch),
            root=bytes(root).hex(),
            dataset_hash=bytes(dataset_hash).hex(),
            leaf_count=int(leaf_count),
            tree_depth=int(depth),
            total=str(int(total)),
            emission=str(int(emission)),
            closed_at_slot=int(closed_at_slot),
            input_offsets=[
                InputRange(
                    partition=int(r["partition"]),
                    first_offset=int(r["first_offset"]),
                    last_offset=int(r["last_offset"]),
                )
                for r in (input_offsets or [])
            ],
            created_at=_iso(created_at),
            settlement=settlement,
            dataset_url=f"/v1/roots/{info.channel_config}/{int(seq)}/dataset",
        )

    async def root_meta(self, info: ChannelInfo, root_seq: int) -> RootMeta:
        """The immutable facts of (channel, root_seq), cached.

        Raises:
            NotFoundError: root_not_found.
        """

        async def load() -> RootMeta:
            row = await self._db.fetchone(
                queries.ROOT_META_SQL, {"config": info.channel_config, "root_seq": root_seq}
            )
            if row is None:
                raise NotFoundError(
                    "root_not_found", f"channel {info.name!r} has no root_seq {root_seq}"
                )
            root_id, seq, epoch, fmt, root, dataset_hash, leaf_count, depth = row
            return RootMeta(
                info, int(root_id), int(seq), int(epoch), fmt, bytes(root), bytes(dataset_hash),
                int(leaf_count), int(depth),
            )  # fmt: skip

        return await self._roots.get((info.channel_config, root_seq), load)

    # -- claims ------------------------------------------------------------------------------

    async def check_proofs_kept(self, meta: RootMeta) -> None:
        """Read (never cached) whether the root still holds its proofs.

        Raises:
            GoneError: proofs_pruned, naming the root account, the root_seq and the newest
                root_seq to use instead.
        """
        row = await self._db.fetchone(queries.ROOT_PROOFS_SQL, {"root_id": meta.root_id})
        if row is None or not row[0]:
            return
        info = meta.channel
        account = (
            f"global root account {info.channel_config}"
            if info.is_global
            else f"channel {info.name!r} ({info.channel_config})"
        )
        newest = (
            "GET /v1/claims/{wallet}"
            if info.is_global
            else f"GET /v1/channels/{info.channel_config}/claims/{{wallet}}"
        )
        raise GoneError(
            "proofs_pruned",
            f"root_seq {meta.root_seq} of {account} no longer has its leaves and tree levels "
            "(only the newest roots of each account keep them, AOP_PROOF_ROOTS_KEPT); use the "
            f"newest root, root_seq {int(row[1])}: {newest}",
        )

    async def _upper_levels(self, root_id: int) -> dict[int, bytes]:
        async def load() -> dict[int, bytes]:
            rows = await self._db.fetchall(
                queries.ROOT_LEVELS_SQL, {"root_id": root_id, "k": self._k}
            )
            if not rows:  # the root level (1 node) is always small: its proofs were pruned
                raise DatabaseUnavailableError(
                    f"the tree levels of root_id {root_id} are gone (pruned meanwhile); retry"
                )
            return {int(level): bytes(nodes) for level, nodes in rows}

        return await self._levels.get(root_id, load)

    async def _claim_from_row(self, info: ChannelInfo, row: Sequence[Any], wallet: bytes) -> Claim:
        (latest_root_seq, latest_epoch, root_id, root_seq, epoch, root, depth, leaf_index,
         amount, pairs, claimed, status) = row  # fmt: skip
        depth = int(depth)
        sql_pairs = bytes(pairs) if pairs is not None else b""
        cached: Mapping[int, bytes] = {}
        if len(sql_pairs) < max(depth, 1) * 2 * _NODE:
            cached = await self._upper_levels(int(root_id))
        leaf, proof = cut_proof(int(leaf_index), depth, sql_pairs, cached)
        return _claim(
            info, wallet, root_seq=int(root_seq), epoch=int(epoch), root=bytes(root),
            leaf_index=int(leaf_index), amount=int(amount), leaf=leaf, proof=proof,
            latest_root_seq=int(latest_root_seq), latest_epoch=int(latest_epoch),
            claimed=claimed, status=status,
        )  # fmt: skip

    async def _hot_claim(self, info: ChannelInfo, hot: HotRoot, wallet: bytes) -> Claim | None:
        """The claim from the channel's hot root, or None if it does not hold the wallet or is
        no longer the channel's latest root."""
        found = hot.find(wallet)
        if found is None:
            return None
        if self.hot_facts is not None:
            channel = await self.hot_facts.get(info.channel_config)
            if channel is None:
                return None
            latest_root_id, latest_root_seq, latest_epoch = (
                channel.latest_root_id, channel.latest_root_seq, channel.latest_epoch
            )  # fmt: skip
            claimed, status = channel.claimed.get(wallet), channel.status
        else:
            row = await self._facts.lookup(info.channel_config, wallet)
            if row is None:
                return None
            latest_root_id, latest_root_seq, latest_epoch, claimed, status = row
        if latest_root_id != hot.root_id:
            self.hot_roots.discard(info.channel_config, hot.root_id)
            return None
        leaf_index, amount, claim_state = found
        leaf, proof = hot.proof(leaf_index)
        return _claim(
            info, wallet, root_seq=hot.root_seq, epoch=hot.epoch, root=hot.root,
            leaf_index=leaf_index, amount=amount, leaf=leaf, proof=proof,
            latest_root_seq=int(latest_root_seq), latest_epoch=int(latest_epoch),
            claimed=claimed, status=status, claim_state=claim_state,
        )  # fmt: skip

    async def claim(self, info: ChannelInfo, wallet: bytes) -> Claim:
        """The wallet's claim against the newest root of the channel that holds it.

        Raises:
            NotFoundError: wallet_not_found (no root of the channel has a leaf for it).
        """
        hot = self.hot_roots.get(info.channel_config)
        if hot is not None:
            claim = await self._hot_claim(info, hot, wallet)
            if claim is not None:
                return claim
        row = await self._batcher.lookup(info.channel_config, wallet)
        if row is None:
            raise NotFoundError(
                "wallet_not_found",
                f"wallet {Pubkey(wallet)} has no leaf in any root of channel {info.name!r}",
            )
        if row[0] == row[3]:  # the newest root holding the wallet is the channel's latest
            self.hot_roots.note_claim(info.channel_config, int(row[2]), info.claim_state_keys)
        return await self._claim_from_row(info, row, wallet)

    async def global_root(self, account: str) -> ChannelInfo:
        """The mint's global root account as `channel` finds it (by its address).

        Raises:
            NotFoundError: global_root_not_found (no global root projected yet).
        """
        try:
            info = await self.channel(ChannelRef(account, account.lower(), account))
        except NotFoundError:
            raise NotFoundError(
                "global_root_not_found", f"no global root of {account} is projected yet"
            ) from None
        if not info.is_global:
            raise NotFoundError("global_root_not_found", f"{account} is not a global root account")
        return info

    async def global_claim(self, info: ChannelInfo, wallet: bytes) -> tuple[Claim, int]:
        """The wallet's claim against the newest global root holding it, and its
        attention_bonus (0 for global-v4; the claim's amount is base_yield + bonus).

        Raises:
            NotFoundError: wallet_not_found.
        """
        claim = await self.claim(info, wallet)
        if info.format != "global-v5":
            return claim, 0

        async def load() -> int:
            row = await self._db.fetchone(
                queries.LEAF_BONUS_SQL,
                {"config": info.channel_config, "root_seq": claim.root_seq, "wallet": wallet},
            )
            if row is None:  # the claim's leaf was read a moment ago: its root was pruned since
                raise DatabaseUnavailableError(
                    f"the leaves of global root_seq {claim.root_seq} are gone (pruned "
                    "meanwhile); retry"
                )
            return int(row[0]) if row[0] is not None else 0

        bonus = await self._bonuses.get((info.channel_config, claim.root_seq, wallet), load)
        return claim, bonus

    async def wallet_claims(self, wallet: bytes, *, limit: int, after: str | None) -> WalletClaims:
        """The wallet's claims in every channel (a page in config-PDA order).

        Raises:
            NotFoundError: wallet_not_found, when the wallet has no leaf anywhere (first page).
        """
        rows = await self._db.fetchall(
            queries.WALLET_CLAIMS_SQL,
            {"wallet": wallet, "after": after, "limit": limit + 1, "k": self._k},
        )
        if not rows and after is None:
            raise NotFoundError(
                "wallet_not_found", f"wallet {Pubkey(wallet)} has no leaf in any channel"
            )
        page = rows[:limit]
        claims = []
        for row in page:
            config, name, subject, fmt, program_id, mint = row[:6]
            info = self._channels.peek(("cfg", config))
            if info is None:
                info = ChannelInfo(config, name, bytes(subject), fmt, program_id, mint)
                self._channels.put(("cfg", config), info)
            claims.append(await self._claim_from_row(info, row[6:], wallet))
        return WalletClaims(
            wallet=str(Pubkey(wallet)),
            claims=claims,
            next_after=page[-1][0] if len(rows) > limit else None,
        )

    async def claim_at(self, meta: RootMeta, wallet: bytes) -> RootClaim:
        """The wallet's leaf and proof in one given root (immutable: no claimed total).

        Uses `projections.queries` CLAIM_SQL and PROOF_SQL as they are. A root's proofs
        are only ever pruned, never restored, so a missing leaf or a short proof is checked
        against the root's flag after the fact (no extra query on the common path).

        Raises:
            NotFoundError: wallet_not_found.
            GoneError: proofs_pruned (`check_proofs_kept`).
        """
        info = meta.channel
        async with self._db.connection() as conn:
            cursor = conn.cursor(binary=True)
            await cursor.execute(
                queries.CLAIM_AT_SQL,
                {
                    "channel_config": info.channel_config,
                    "root_seq": meta.root_seq,
                    "wallet": wallet,
                },
            )
            row = await cursor.fetchone()
            if row is None:
                await self.check_proofs_kept(meta)
                raise NotFoundError(
                    "wallet_not_found",
                    f"wallet {Pubkey(wallet)} has no leaf in root_seq {meta.root_seq} of "
                    f"channel {info.name!r}",
                )
            (root_id, _channel, _config, root_seq, epoch, fmt, root, dataset_hash, depth,
             leaf_index, amount, leaf) = row  # fmt: skip
            await cursor.execute(
                queries.PROOF_AT_SQL,
                {"root_id": root_id, "leaf_index": leaf_index, "tree_depth": depth},
            )
            proof = [bytes(sibling) for _level, sibling in await cursor.fetchall()]
        if len(proof) != int(depth):
            await self.check_proofs_kept(meta)
            raise DatabaseUnavailableError(
                f"root_seq {meta.root_seq} of {info.channel_config}: {len(proof)} tree levels "
                f"read for a depth of {depth}"
            )
        leaf_fields = _leaf_fields(
            info,
            wallet,
            fmt,
            root_seq=int(root_seq),
            epoch=int(epoch),
            leaf_index=int(leaf_index),
            amount=int(amount),
        )
        return RootClaim(
            **leaf_fields,
            claim_id=info.claim_id(int(epoch)),
            leaf=bytes(leaf).hex(),
            root=bytes(root).hex(),
            dataset_hash=bytes(dataset_hash).hex(),
            proof=[node.hex() for node in proof],
        )

    async def ready(self) -> None:
        """Raise DatabaseUnavailableError unless the database answers with the API's tables."""
        await self._db.fetchone(queries.READY_SQL)
