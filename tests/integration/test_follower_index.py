"""The two reads of recent control-plane transfers every node makes at every refresh (the
shared-admission follower, the wallet reload) go through their small partial indexes, not the
whole ledger (which holds every settlement ever made)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.store.ledger_repo import control_transfers_after, control_transfers_since

QUERIES = {
    "ix_ledger_transfers_control_created": lambda: control_transfers_since(
        datetime.now(UTC) - timedelta(seconds=120)
    ),
    "ix_ledger_transfers_control_id": lambda: control_transfers_after(12345),
}


@pytest.mark.parametrize("index", sorted(QUERIES))
async def test_the_control_transfer_reads_use_their_partial_index(engine: AsyncEngine, index: str) -> None:
    query: Select[Any] = QUERIES[index]()
    async with engine.connect() as conn:
        compiled = query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})  # type: ignore[arg-type]
        if conn.dialect.name == "postgresql":
            # an empty table favours a scan: forbid it, so only a usable index can replace it
            await conn.exec_driver_sql("SET enable_seqscan = off")
            plan = "\n".join(r[0] for r in (await conn.exec_driver_sql(f"EXPLAIN {compiled}")).all())
        else:
            rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
            plan = "\n".join(str(r[-1]) for r in rows)
    assert index in plan, plan
