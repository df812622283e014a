"""The shared-admission follower's query reads the partial index of control-plane transfers,
not the whole ledger (which holds every settlement ever made)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.cluster.shared_wallets import control_transfers_since

INDEX = "ix_ledger_transfers_control_created"


async def test_the_follower_query_uses_the_control_transfers_index(engine: AsyncEngine) -> None:
    query = control_transfers_since(datetime.now(UTC) - timedelta(seconds=120))
    async with engine.connect() as conn:
        compiled = query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})  # type: ignore[arg-type]
        if conn.dialect.name == "postgresql":
            # an empty table favours a scan: forbid it, so only a usable index can replace it
            await conn.exec_driver_sql("SET enable_seqscan = off")
            plan = "\n".join(r[0] for r in (await conn.exec_driver_sql(f"EXPLAIN {compiled}")).all())
        else:
            rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
            plan = "\n".join(str(r[-1]) for r in rows)
    assert INDEX in plan, plan
