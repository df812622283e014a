"""Limits (rpm, tpm, concurrency) as BIGINT: a group's tokens per minute can pass 2^31

On PostgreSQL an INTEGER column refused a tpm of 10,000,000,000 with an internal error. SQLite
stores any 64-bit integer in an INTEGER column already, so there it changes nothing (a batch
rebuild of tables other tables reference is not worth a declared type).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = {
    "accounts": ("rpm", "tpm", "concurrency"),
    "groups": ("rpm", "tpm", "concurrency", "total_concurrency"),
    "api_keys": ("rpm", "tpm", "concurrency"),
}


def _retype(old: type[sa.types.TypeEngine[int]], new: type[sa.types.TypeEngine[int]]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, existing_type=old(), type_=new(), existing_nullable=True)


def upgrade() -> None:
    _retype(sa.Integer, sa.BigInteger)


def downgrade() -> None:
    _retype(sa.BigInteger, sa.Integer)
