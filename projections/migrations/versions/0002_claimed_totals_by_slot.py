"""claimed_totals by (channel_config, slot): the API re-reads a channel's claimed totals
changed since the last slot it saw (`api.hot_facts`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_claimed_totals_channel_config_slot", "claimed_totals", ["channel_config", "slot"]
    )


def downgrade() -> None:
    op.drop_index("ix_claimed_totals_channel_config_slot", table_name="claimed_totals")
