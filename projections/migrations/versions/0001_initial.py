"""Projection tables: channels, roots, leaves, tree levels, claimed totals, settlement, offsets.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PUBKEY = sa.String(44)
_U64 = sa.Numeric(20, 0)
_U128 = sa.Numeric(39, 0)
_OUTBOX_STATUSES = ("pending", "sent", "published", "failed", "dry_run", "sequence_mismatch")
_OUTCOMES = (
    "intent",
    "published",
    "already_on_chain",
    "dry_run",
    "expired",
    "rpc_error",
    "failed",
    "sequence_mismatch",
)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "channels",
        sa.Column("channel_config", _PUBKEY, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.LargeBinary(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("program_id", _PUBKEY, nullable=False),
        sa.Column("mint", _PUBKEY, nullable=False),
        sa.Column("latest_root_seq", sa.BigInteger(), nullable=False),
        sa.Column("latest_epoch", sa.BigInteger(), nullable=False),
        _now("updated_at"),
        sa.CheckConstraint("octet_length(subject_id) = 32", name="ck_channels_subject_id_len"),
        sa.PrimaryKeyConstraint("channel_config", name="pk_channels"),
    )
    op.create_index("ix_channels_lower_name", "channels", [sa.text("lower(name)")])

    op.create_table(
        "roots",
        sa.Column("channel_config", _PUBKEY, nullable=False),
        sa.Column("root_seq", sa.BigInteger(), nullable=False),
        sa.Column("root_id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("program_id", _PUBKEY, nullable=False),
        sa.Column("mint", _PUBKEY, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("dataset_hash", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_count", sa.BigInteger(), nullable=False),
        sa.Column("tree_depth", sa.SmallInteger(), nullable=False),
        sa.Column("total", _U128, nullable=False),
        sa.Column("emission", _U128, nullable=False),
        sa.Column("closed_at_slot", sa.BigInteger(), nullable=False),
        sa.Column("input_offsets", postgresql.JSONB(), nullable=False),
        sa.Column("source_partition", sa.Integer(), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        _now("created_at"),
        sa.CheckConstraint("octet_length(root) = 32", name="ck_roots_root_len"),
        sa.CheckConstraint("octet_length(dataset_hash) = 32", name="ck_roots_dataset_hash_len"),
        sa.CheckConstraint(
            "root_seq >= 0 AND epoch >= 0 AND leaf_count >= 0", name="ck_roots_non_negative"
        ),
        sa.ForeignKeyConstraint(
            ["channel_config"],
            ["channels.channel_config"],
            name="fk_roots_channel_config_channels",
        ),
        sa.PrimaryKeyConstraint("channel_config", "root_seq", name="pk_roots"),
    )
    op.create_index("uq_roots_root_id", "roots", ["root_id"], unique=True)
    op.create_index("ix_roots_channel_config_epoch", "roots", ["channel_config", "epoch"])

    op.create_table(
        "leaves",
        sa.Column("root_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("wallet", sa.LargeBinary(), nullable=False),
        sa.Column("amount", _U64, nullable=False),
        sa.PrimaryKeyConstraint("root_id", "leaf_index", name="pk_leaves"),
    )
    op.create_index("uq_leaves_root_id_wallet", "leaves", ["root_id", "wallet"], unique=True)

    op.create_table(
        "tree_levels",
        sa.Column("root_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("node_count", sa.BigInteger(), nullable=False),
        sa.Column("nodes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("root_id", "level", name="pk_tree_levels"),
    )
    # Uncompressed out-of-line storage: substring() then reads only the chunks it needs.
    op.execute("ALTER TABLE tree_levels ALTER COLUMN nodes SET STORAGE EXTERNAL")

    op.create_table(
        "claimed_totals",
        sa.Column("channel_config", _PUBKEY, nullable=False),
        sa.Column("wallet", sa.LargeBinary(), nullable=False),
        sa.Column("claimed_total", _U64, nullable=False),
        sa.Column("root_seq", sa.BigInteger(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("channel_config", "wallet", name="pk_claimed_totals"),
    )
    op.create_index("ix_claimed_totals_wallet", "claimed_totals", ["wallet"])

    op.create_table(
        "settlement_outbox",
        sa.Column("channel_config", _PUBKEY, nullable=False),
        sa.Column("root_seq", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("slot", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(_in("status", _OUTBOX_STATUSES), name="ck_settlement_outbox_status"),
        sa.ForeignKeyConstraint(
            ["channel_config", "root_seq"],
            ["roots.channel_config", "roots.root_seq"],
            name="fk_settlement_outbox_channel_config_roots",
        ),
        sa.PrimaryKeyConstraint("channel_config", "root_seq", name="pk_settlement_outbox"),
    )
    op.create_index(
        "ix_settlement_outbox_status",
        "settlement_outbox",
        ["status", "channel_config", "root_seq"],
    )

    op.create_table(
        "settlement_attempts",
        sa.Column("attempt_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("channel_config", _PUBKEY, nullable=False),
        sa.Column("root_seq", sa.BigInteger(), nullable=False),
        _now("at"),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("slot", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("blockhash", sa.Text(), nullable=True),
        sa.Column("last_valid_block_height", sa.BigInteger(), nullable=True),
        sa.Column("message_b64", sa.Text(), nullable=True),
        sa.Column("transaction_b64", sa.Text(), nullable=True),
        sa.Column("emitted", sa.Boolean(), server_default="false", nullable=False),
        sa.CheckConstraint(_in("outcome", _OUTCOMES), name="ck_settlement_attempts_outcome"),
        sa.ForeignKeyConstraint(
            ["channel_config", "root_seq"],
            ["settlement_outbox.channel_config", "settlement_outbox.root_seq"],
            name="fk_settlement_attempts_channel_config_settlement_outbox",
        ),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_settlement_attempts"),
    )
    op.create_index(
        "ix_settlement_attempts_channel_config_root_seq",
        "settlement_attempts",
        ["channel_config", "root_seq"],
    )
    op.create_index(
        "ix_settlement_attempts_unemitted",
        "settlement_attempts",
        ["attempt_id"],
        postgresql_where=sa.text("NOT emitted"),
    )

    op.create_table(
        "consumer_offsets",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("consumer", "topic", "partition", name="pk_consumer_offsets"),
    )


def downgrade() -> None:
    for table in (
        "consumer_offsets",
        "settlement_attempts",
        "settlement_outbox",
        "claimed_totals",
        "tree_levels",
        "leaves",
        "roots",
        "channels",
    ):
        op.drop_table(table)
