"""A partial index on the recent control-plane transfers (kind <> 'usage') by created_at

The shared-admission follower (cluster/shared_wallets.py) reads them on every node every
refresh; without an index that was a scan of the whole ledger, every settlement included.
The index holds only credits, top-ups, vouchers and refunds, so it stays small.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 01:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PREDICATE = "kind <> 'usage'"  # tables.CONTROL_TRANSFERS, frozen here as migrations are


def upgrade() -> None:
    op.create_index(
        "ix_ledger_transfers_control_created",
        "ledger_transfers",
        ["created_at"],
        postgresql_where=sa.text(PREDICATE),
        sqlite_where=sa.text(PREDICATE),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_transfers_control_created", table_name="ledger_transfers")
