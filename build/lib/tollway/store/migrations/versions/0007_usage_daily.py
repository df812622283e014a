"""Daily usage rollups (usage_daily, _models, _accounts, usage_rollup_days) and the console's revenue index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COUNTS = (
    "calls",
    "ok_calls",
    "failed_calls",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "official_cost_nano",
    "deduction_nano",
)


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("key_id", sa.String(36), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("day", "owner_id", "key_id", "model", name="pk_usage_daily"),
    )
    op.create_index("ix_usage_daily_owner_day", "usage_daily", ["owner_id", "day"])
    op.create_table(
        "usage_daily_models",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("day", "model", name="pk_usage_daily_models"),
    )
    op.create_table(
        "usage_daily_accounts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "owner_id", name="pk_usage_daily_accounts"),
    )
    op.create_table(
        "usage_rollup_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("day", name="pk_usage_rollup_days"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_credited_at", ["credited_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_credited_at")
    op.drop_table("usage_rollup_days")
    op.drop_table("usage_daily_accounts")
    op.drop_table("usage_daily_models")
    op.drop_index("ix_usage_daily_owner_day", "usage_daily")
    op.drop_table("usage_daily")
