"""Global roots (one per mint, global-v4 / global-v5) share the root tables.

A global root is stored like a channel's: its root account (the GlobalRootConfig PDA) keys
`channels`, `roots`, `leaves`, `tree_levels`, `claimed_totals` and the settlement outbox.
`channels.scope` tells the two apart ('global' rows have no channel name or subject id), and
`leaves.attention_bonus` holds global-v5's second part (NULL for one-part formats; the
leaf's `amount` stays its total, base_yield = amount - attention_bonus).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "channels", sa.Column("scope", sa.Text(), nullable=False, server_default="channel")
    )
    op.create_check_constraint("scope", "channels", "scope IN ('channel', 'global')")
    op.add_column("leaves", sa.Column("attention_bonus", sa.Numeric(20, 0), nullable=True))


def downgrade() -> None:
    op.drop_column("leaves", "attention_bonus")
    op.drop_constraint("ck_channels_scope", "channels", type_="check")
    op.drop_column("channels", "scope")
