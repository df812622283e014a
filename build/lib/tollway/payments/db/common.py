"""Helpers shared by the payment repositories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.store.tables import ledger_accounts


def utcnow() -> datetime:
    return datetime.now(UTC)


async def insert_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any], keys: list[str]) -> bool:
    """Insert unless a row with the same unique ``keys`` exists; True when this call inserted."""
    insert = pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)
    result = await conn.execute(insert.values(**values).on_conflict_do_nothing(index_elements=keys))
    return bool(result.rowcount == 1)


async def lock_ledger_account(conn: AsyncConnection, code: str) -> None:
    """Serialise writers on one customer's money until the caller's transaction ends.

    An update that changes nothing: a row lock on PostgreSQL, and on SQLite the database write
    lock taken *before* the reads that follow (so they cannot go stale before the writes).
    """
    await conn.execute(
        update(ledger_accounts)
        .where(ledger_accounts.c.code == code)
        .values(balance_nano=ledger_accounts.c.balance_nano)
    )
