"""Attention roots share the root tables (scope 'attention').

A channel's attention roots (AttentionRoot records of aop.epoch.roots) are keyed by its
attention root key in `channels` (scope 'attention'), `roots`, `leaves` and `tree_levels`;
they get no settlement outbox row. `roots.closed_at_ms` holds the attention watermark that
closed one (NULL for the others). The (root_id, wallet) index of `leaves` is no longer
unique: a ring-v0-legacy root has a leaf per user, and two users may share a wallet. Building
the new index reads every leaf: on a large table, run the upgrade in a quiet hour.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_channels_scope"), "channels", type_="check")
    op.create_check_constraint("scope", "channels", "scope IN ('channel', 'global', 'attention')")
    op.add_column("roots", sa.Column("closed_at_ms", sa.BigInteger(), nullable=True))
    op.create_index("ix_leaves_root_id_wallet", "leaves", ["root_id", "wallet"])
    op.drop_index("uq_leaves_root_id_wallet", table_name="leaves")


def downgrade() -> None:
    op.create_index("uq_leaves_root_id_wallet", "leaves", ["root_id", "wallet"], unique=True)
    op.drop_index("ix_leaves_root_id_wallet", table_name="leaves")
    op.drop_column("roots", "closed_at_ms")
    op.drop_constraint(op.f("ck_channels_scope"), "channels", type_="check")
    op.create_check_constraint("scope", "channels", "scope IN ('channel', 'global')")
