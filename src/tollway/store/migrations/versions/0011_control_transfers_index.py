"""Partial indexes of the control-plane transfers (kind <> 'usage'), by created_at and by id

The shared-admission follower (cluster/shared_wallets.py) reads the recent ones on every node
every refresh, and each node's refresh (app.py) the ones since the last it saw; without these
the first scanned the whole ledger and the second read every other node's settlements. They
hold only credits, top-ups, vouchers and refunds, so they stay small.

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


INDEXES = {"ix_ledger_transfers_control_created": "created_at", "ix_ledger_transfers_control_id": "id"}


def upgrade() -> None:
    for name, column in INDEXES.items():
        op.create_index(
            name,
            "ledger_transfers",
            [column],
            postgresql_where=sa.text(PREDICATE),
            sqlite_where=sa.text(PREDICATE),
        )


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="ledger_transfers")
