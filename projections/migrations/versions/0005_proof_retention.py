"""Proof retention: `roots.proofs_pruned` marks a root whose leaves and tree levels are gone.

The projector keeps the proofs of the newest AOP_PROOF_ROOTS_KEPT roots of each root account
(`projections.retention`); an older root keeps its `roots` row and gets `proofs_pruned`. A
boolean, not a timestamp: the state follows from the roots stored alone, so a rebuild that
writes the same roots ends with the same rows (a time would differ). NOT NULL with a constant
default adds the column without rewriting the table (PostgreSQL 11+). The partial index holds
only the roots not yet pruned (at most K + 1 per account), so finding those beyond the newest
K reads a handful of index entries, not the account's whole history.

Existing roots are all left with their proofs; the first root written after the upgrade prunes
its account's older ones (deleting every pruned root's rows in that one transaction: on a
large history, expect that first write to take longer).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "roots",
        sa.Column("proofs_pruned", sa.Boolean(), server_default="false", nullable=False),
    )
    op.create_index(
        "ix_roots_channel_config_root_seq_kept",
        "roots",
        ["channel_config", "root_seq"],
        postgresql_where=sa.text("NOT proofs_pruned"),
    )


def downgrade() -> None:
    op.drop_index("ix_roots_channel_config_root_seq_kept", table_name="roots")
    op.drop_column("roots", "proofs_pruned")
