"""The projection tables (SQLAlchemy 2, typed), as `aop db upgrade` creates them.

Every table lives in ONE schema, `settings.database_schema`: the models carry no schema name;
connections set `search_path` to it (see `projections.db.engine_for`). Alembic migrations in
`projections/migrations/` create exactly these tables; a unit test compares the two.

Invariants (what readers may rely on):

* a root is written whole or not at all: its `roots` row, every `leaves` row, every
  `tree_levels` row, its `settlement_outbox` row and the consumer offsets that produced it
  are committed in one transaction, so a reader that sees the `roots` row sees all of it;
* rows of a root never change after that (roots are immutable); only `channels`,
  `settlement_outbox`, `settlement_attempts`, `claimed_totals` and `consumer_offsets` update,
  except proof retention: once a root is no longer among the newest AOP_PROOF_ROOTS_KEPT of
  its account, its `leaves` and `tree_levels` rows are deleted and `roots.proofs_pruned` set,
  in the transaction that wrote the newer root (`projections.retention`); never the reverse;
* `leaves` and `tree_levels` reference `roots.root_id` (a surrogate key; joins stay narrow
  and the 1M-row COPY stays fast). There are deliberately no foreign keys on these two big
  tables (a per-row RI trigger would double the write time); the single writer keeps them
  consistent.

How to cut a proof in SQL (no whole level is read; `nodes` is stored uncompressed so
`substring` fetches only the TOAST chunk it needs)::

    SELECT t.level,
           substring(t.nodes
                     FROM CAST(32 * least((CAST(:leaf_index AS bigint) >> t.level) # 1,
                                          t.node_count - 1) + 1 AS integer)
                     FOR 32) AS sibling
      FROM tree_levels t
     WHERE t.root_id = :root_id AND t.level < :tree_depth
     ORDER BY t.level

(`projections.queries.proof` runs it.) The leaf hash itself is
`substring(nodes FROM CAST(32 * leaf_index + 1 AS integer) FOR 32)` of level 0.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "OUTBOX_STATUSES",
    "SETTLEMENT_OUTCOMES",
    "Base",
    "Channel",
    "ClaimedTotal",
    "ConsumerOffset",
    "Leaf",
    "Root",
    "SettlementAttempt",
    "SettlementOutbox",
    "TreeLevel",
]

#: base58 public keys are at most 44 characters.
PUBKEY = String(44)
#: u64 amounts; sums of them (root totals, emissions) get numeric(39).
U64_NUMERIC = Numeric(20, 0)
U128_NUMERIC = Numeric(39, 0)

#: settlement_outbox.status values. `pending` and `dry_run` are still to publish (a dry run
#: is re-examined once AOP_AUTO_PUBLISH=true); `sent` has a signed transaction on record
#: whose fate is being confirmed; `published` is on-chain (by us or already there);
#: `failed` and `sequence_mismatch` stop the channel until an operator releases it.
OUTBOX_STATUSES = ("pending", "sent", "published", "failed", "dry_run", "sequence_mismatch")
#: settlement_attempts.outcome values (one row per step of the protocol).
SETTLEMENT_OUTCOMES = (
    "intent",  # signed, recorded, about to be sent (signature known)
    "published",  # confirmed at the configured commitment
    "already_on_chain",  # the account already held our root; nothing sent
    "dry_run",  # AOP_AUTO_PUBLISH=false: the message we would have sent
    "expired",  # blockhash expired and the signature did not land
    "rpc_error",  # transient RPC failure or timeout (retried with backoff)
    "failed",  # the transaction landed with an error, or a permanent refusal
    "sequence_mismatch",  # the chain's sequence is not ours; the channel stops
)

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class Channel(Base):
    """One channel this deployment has a root for (upserted with each root)."""

    __tablename__ = "channels"

    #: base58 ChannelConfigV2 PDA (cumulative-v2) or ChannelState PDA (ring-v0).
    channel_config: Mapped[str] = mapped_column(PUBKEY, primary_key=True)
    #: the name as the fold emitted it (the subject id lower-cases ASCII; look up by lower(name)).
    name: Mapped[str] = mapped_column(Text, nullable=False)
    #: keccak(b"channel:" + lower(name)), 32 bytes.
    subject_id: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    format: Mapped[str] = mapped_column(Text, nullable=False)
    program_id: Mapped[str] = mapped_column(PUBKEY, nullable=False)
    mint: Mapped[str] = mapped_column(PUBKEY, nullable=False)
    #: the newest projected root of the channel (max root_seq in `roots`).
    latest_root_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    latest_epoch: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[dt.datetime] = _now()
    #: 'channel', 'global' for a mint's GlobalRootConfig (global-v4/v5 roots: the name is
    #: empty and the subject id 32 zero bytes), or 'attention' for a channel's attention roots
    #: (keyed by its attention root key; the read API's channel routes do not serve them).
    scope: Mapped[str] = mapped_column(Text, nullable=False, server_default="channel")

    __table_args__ = (
        CheckConstraint("octet_length(subject_id) = 32", name="subject_id_len"),
        CheckConstraint("scope IN ('channel', 'global', 'attention')", name="scope"),
        Index("ix_channels_lower_name", func.lower(text("name"))),
    )


class Root(Base):
    """One EpochRoot, verified (root, dataset_hash, leaf_count, total recomputed) before insert."""

    __tablename__ = "roots"

    channel_config: Mapped[str] = mapped_column(PUBKEY, primary_key=True)
    root_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    #: surrogate key that `leaves` and `tree_levels` reference.
    root_id: Mapped[int] = mapped_column(BigInteger, Identity(), nullable=False)
    channel: Mapped[str] = mapped_column(Text, nullable=False)
    epoch: Mapped[int] = mapped_column(BigInteger, nullable=False)
    format: Mapped[str] = mapped_column(Text, nullable=False)
    program_id: Mapped[str] = mapped_column(PUBKEY, nullable=False)
    mint: Mapped[str] = mapped_column(PUBKEY, nullable=False)
    root: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    dataset_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    leaf_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: number of proof nodes of every leaf = number of tree_levels rows - 1 (0 for one leaf).
    tree_depth: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    total: Mapped[Decimal] = mapped_column(U128_NUMERIC, nullable=False)
    emission: Mapped[Decimal] = mapped_column(U128_NUMERIC, nullable=False)
    closed_at_slot: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: attention roots: the attention watermark (unix ms) that closed the epoch (their
    #: `epoch` is the attention epoch's unix start, `closed_at_slot` 0); NULL for the others.
    closed_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: the aop.chain.events ranges the root was folded from (attention roots: the
    #: aop.attention.signals ranges):
    #: [{"partition": p, "first_offset": a, "last_offset": b}, ...] as in the EpochRoot.
    input_offsets: Mapped[list[dict[str, int]]] = mapped_column(JSONB, nullable=False)
    #: where the EpochRoot record sits on aop.epoch.roots (first delivery that was written).
    source_partition: Mapped[int] = mapped_column(Integer, nullable=False)
    source_offset: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[dt.datetime] = _now()
    #: its `leaves` and `tree_levels` rows are deleted: it is older than the newest
    #: AOP_PROOF_ROOTS_KEPT roots of its account (`projections.retention`).
    proofs_pruned: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")

    __table_args__ = (
        CheckConstraint("octet_length(root) = 32", name="root_len"),
        CheckConstraint("octet_length(dataset_hash) = 32", name="dataset_hash_len"),
        CheckConstraint("root_seq >= 0 AND epoch >= 0 AND leaf_count >= 0", name="non_negative"),
        ForeignKeyConstraint(["channel_config"], ["channels.channel_config"]),
        Index("uq_roots_root_id", "root_id", unique=True),
        Index("ix_roots_channel_config_epoch", "channel_config", "epoch"),
        # the roots still holding proofs (at most K + 1 per account): what retention reads
        Index(
            "ix_roots_channel_config_root_seq_kept",
            "channel_config",
            "root_seq",
            postgresql_where=text("NOT proofs_pruned"),
        ),
    )


class Leaf(Base):
    """One leaf of a root's tree: (wallet, amount) at `leaf_index`.

    Indexed by (root_id, leaf_index) (the dataset, in tree order) and (root_id, wallet) (a
    wallet's leaf; not unique: a ring-v0-legacy attention root has a leaf per user, and two
    users may share a wallet). There is no index on `wallet` alone: a random-order index over
    every root doubled the 1M-leaf write time (2.2 s -> 4-6.6 s measured); "a wallet across
    channels" goes through `channels.latest_root_seq` -> `roots` -> (root_id, wallet), one
    probe per channel.

    `amount` is what the format's leaf commits to: the wallet's cumulative_total for
    cumulative-v2 and the global formats (global-v5: base_yield + attention_bonus), the epoch
    amount for ring-v0. The leaf hash is not stored: it is
    `substring(nodes FROM 32 * leaf_index + 1 FOR 32)` of `tree_levels` level 0.
    """

    __tablename__ = "leaves"

    root_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    wallet: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    amount: Mapped[Decimal] = mapped_column(U64_NUMERIC, nullable=False)
    #: global-v5's attention_bonus (its base_yield is amount - attention_bonus); NULL for the
    #: one-part formats.
    attention_bonus: Mapped[Decimal | None] = mapped_column(U64_NUMERIC)

    __table_args__ = (Index("ix_leaves_root_id_wallet", "root_id", "wallet"),)


class TreeLevel(Base):
    """One level of a root's tree: every node of the level, concatenated (32 bytes each).

    Level 0 holds the leaves, level `tree_depth` the root. `nodes` uses STORAGE EXTERNAL
    (uncompressed TOAST), so `substring` reads one chunk, not the level.
    """

    __tablename__ = "tree_levels"

    root_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    node_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    nodes: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ClaimedTotal(Base):
    """A wallet's claimed_total in a channel, from CumulativeRewardsClaimed events.

    The projector reads them from aop.chain.events and keeps max(cumulative_total), so a
    redelivered or reordered event changes nothing.
    """

    __tablename__ = "claimed_totals"

    channel_config: Mapped[str] = mapped_column(PUBKEY, primary_key=True)
    wallet: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    claimed_total: Mapped[Decimal] = mapped_column(U64_NUMERIC, nullable=False)
    #: root_seq of the claim that set claimed_total.
    root_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    slot: Mapped[int] = mapped_column(BigInteger, nullable=False)
    signature: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[dt.datetime] = _now()

    __table_args__ = (
        Index("ix_claimed_totals_wallet", "wallet"),
        # a channel's totals changed since a slot (the API's hot facts, `api.hot_facts`)
        Index("ix_claimed_totals_channel_config_slot", "channel_config", "slot"),
    )


class SettlementOutbox(Base):
    """One row per root to publish, written with the root; settlement moves its status."""

    __tablename__ = "settlement_outbox"

    channel_config: Mapped[str] = mapped_column(PUBKEY, primary_key=True)
    root_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    channel: Mapped[str] = mapped_column(Text, nullable=False)
    format: Mapped[str] = mapped_column(Text, nullable=False)
    #: ring-v0 publishes by epoch; kept here so settlement needs no join.
    epoch: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="pending")
    #: the signature that landed (published), or the one in flight (sent).
    signature: Mapped[str | None] = mapped_column(Text)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()

    __table_args__ = (
        ForeignKeyConstraint(
            ["channel_config", "root_seq"], ["roots.channel_config", "roots.root_seq"]
        ),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in OUTBOX_STATUSES) + ")", name="status"
        ),
        Index("ix_settlement_outbox_status", "status", "channel_config", "root_seq"),
    )


class SettlementAttempt(Base):
    """Every step settlement took for a root, in order (the audit trail)."""

    __tablename__ = "settlement_attempts"

    attempt_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    channel_config: Mapped[str] = mapped_column(PUBKEY, nullable=False)
    root_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    at: Mapped[dt.datetime] = _now()
    outcome: Mapped[str] = mapped_column(Text, nullable=False)
    signature: Mapped[str | None] = mapped_column(Text)
    slot: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    blockhash: Mapped[str | None] = mapped_column(Text)
    last_valid_block_height: Mapped[int | None] = mapped_column(BigInteger)
    #: base64 of the serialized message (what was, or would have been, signed).
    message_b64: Mapped[str | None] = mapped_column(Text)
    #: base64 of the signed transaction (intent rows), so a restart can re-send the SAME
    #: transaction (same signature, cannot land twice) instead of signing a new one.
    transaction_b64: Mapped[str | None] = mapped_column(Text)
    #: whether the SettlementResult of this (final) step is on aop.settlement.
    emitted: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")

    __table_args__ = (
        ForeignKeyConstraint(
            ["channel_config", "root_seq"],
            ["settlement_outbox.channel_config", "settlement_outbox.root_seq"],
        ),
        CheckConstraint(
            "outcome IN (" + ", ".join(f"'{s}'" for s in SETTLEMENT_OUTCOMES) + ")",
            name="outcome",
        ),
        Index("ix_settlement_attempts_channel_config_root_seq", "channel_config", "root_seq"),
        Index(
            "ix_settlement_attempts_unemitted",
            "attempt_id",
            postgresql_where=text("NOT emitted"),
        ),
    )


class ConsumerOffset(Base):
    """The next offset a consumer reads per (topic, partition); the source of truth for it.

    Written in the same transaction as the rows the consumed records produced; Kafka group
    commits are advisory only.
    """

    __tablename__ = "consumer_offsets"

    consumer: Mapped[str] = mapped_column(Text, primary_key=True)
    topic: Mapped[str] = mapped_column(Text, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[dt.datetime] = _now()
