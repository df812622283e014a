"""Change notices between processes on PostgreSQL: every configuration write and every
control-plane transfer sends ``NOTIFY tollway_changes`` in its own transaction (delivered at
commit, dropped on rollback), and every node LISTENs (:mod:`tollway.cluster.change_feed`) and
reloads at once instead of at its next poll. SQLite serves one node: nothing is sent there."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHANGES_CHANNEL = "tollway_changes"
CONFIG = "config"  # groups, channels, prices, keys, account status (config_version moved)
LEDGER = "ledger"  # a credit, top-up, voucher grant or refund was posted


async def notify_change(conn: AsyncConnection, what: str) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_notify(:channel, :what)"), {"channel": CHANGES_CHANNEL, "what": what}
        )
