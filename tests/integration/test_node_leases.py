"""Node leases on real SQLite and PostgreSQL: a node without the shared backend is refused next
to a live node (naming it), shared nodes run together, stale and dead leases block nothing (and
free their job leases), a clean stop frees the database at once, and a real server start is
refused the same way."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.app import TollwayApp
from tollway.cluster import nodes
from tollway.cluster.leader import JobLeases
from tollway.cluster.nodes import NodeId, NodeRefused
from tollway.settings import Settings
from tollway.store.tables import nodes as nodes_table

TTL = 5.0


def other(host: str = "db-peer-host", pid: int = 4242) -> NodeId:
    return NodeId(host, pid, f"{host}:{pid}:abcd")


async def test_a_node_without_the_shared_backend_is_refused_next_to_a_live_one(engine: AsyncEngine) -> None:
    first = other()
    await nodes.register(engine, first, False, TTL)
    me = NodeId.mine()
    with pytest.raises(NodeRefused) as refused:
        await nodes.register(engine, me, False, TTL)
    msg = refused.value.message
    assert "db-peer-host" in msg and "pid 4242" in msg and "heartbeat 0s ago" in msg
    assert "TOLLWAY_REDIS_URL" in msg and "PostgreSQL" in msg
    with pytest.raises(NodeRefused):  # the read-only check says the same
        await nodes.check(engine, me, False, TTL)
    async with engine.connect() as conn:  # the refused node left no lease behind
        ids = {r.id for r in (await conn.execute(select(nodes_table.c.id))).all()}
    assert ids == {first.id}


async def test_shared_nodes_run_together_but_not_with_an_unshared_one(engine: AsyncEngine) -> None:
    await nodes.register(engine, other("a"), True, TTL)
    await nodes.register(engine, other("b"), True, TTL)  # both shared: fine
    with pytest.raises(NodeRefused, match="this node runs without the shared backend"):
        await nodes.register(engine, other("c"), False, TTL)
    async with engine.begin() as conn:
        await conn.execute(update(nodes_table).values(shared=False).where(nodes_table.c.host == "b"))
    with pytest.raises(NodeRefused, match="that node runs without the shared backend"):
        await nodes.register(engine, other("d"), True, TTL)


async def test_stale_and_dead_leases_block_nothing(engine: AsyncEngine) -> None:
    old = other("crashed-host")
    await nodes.register(engine, old, False, TTL)
    long_ago = datetime.now(UTC) - timedelta(seconds=TTL + 1)
    async with engine.begin() as conn:
        await conn.execute(update(nodes_table).values(heartbeat_at=long_ago))
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    me = NodeId.mine()
    dead_here = NodeId(me.host, dead.pid, f"{me.host}:{dead.pid}:dead")
    await nodes.register(engine, dead_here, False, TTL)  # the stale lease does not block
    assert await JobLeases(engine, dead_here.id, 60.0).acquire("usage")
    await nodes.register(engine, me, False, TTL)  # a fresh lease of a dead pid on this host neither
    assert await JobLeases(engine, me.id, 60.0).acquire("usage"), "the dead node's jobs are free at once"
    async with engine.connect() as conn:
        ids = {r.id for r in (await conn.execute(select(nodes_table.c.id))).all()}
    assert ids == {me.id}, "the stale and dead leases are tidied away"
    await nodes.unregister(engine, me)
    await nodes.register(engine, other(), False, TTL)  # a clean stop frees the database at once


async def test_the_heartbeat_keeps_a_lease_fresh_and_its_end_lets_others_in(engine: AsyncEngine) -> None:
    holder = other()
    await nodes.register(engine, holder, False, 0.6)
    beat = asyncio.get_running_loop().create_task(nodes.run_heartbeat(engine, holder, False, 0.1, 0.6))
    try:
        await asyncio.sleep(1.0)
        with pytest.raises(NodeRefused):
            await nodes.check(engine, NodeId.mine(), False, 0.6)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    await asyncio.sleep(0.8)  # like a SIGKILL: no more heartbeats, the TTL passes
    await nodes.register(engine, NodeId.mine(), False, 0.6)


async def test_a_server_start_is_refused_and_a_clean_stop_removes_its_lease(
    engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url, secret_key="test-secret", probe_interval_s=0)
    await nodes.register(engine, other(), False, TTL)
    blocked = TollwayApp(settings)
    with pytest.raises(NodeRefused, match="db-peer-host"):
        await blocked.start()
    await blocked.engine.dispose()
    await nodes.unregister(engine, other())
    app = TollwayApp(settings)
    await app.start()
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(nodes_table))).all()
        assert [(r.host, r.pid, r.shared) for r in rows] == [(NodeId.mine().host, os.getpid(), False)]
    finally:
        await app.stop()
    async with engine.connect() as conn:
        assert (await conn.execute(select(nodes_table))).all() == []


async def test_a_node_whose_lease_lapsed_says_who_started_meanwhile(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    paused = other("paused-host")
    await nodes.register(engine, paused, False, TTL)
    async with engine.begin() as conn:  # its database was away for longer than the TTL
        long_ago = datetime.now(UTC) - timedelta(seconds=TTL + 1)
        await conn.execute(update(nodes_table).values(heartbeat_at=long_ago))
    await nodes.register(engine, other("newcomer"), False, TTL)  # tidies the lapsed lease away
    with caplog.at_level("ERROR", logger="tollway.cluster"):
        await nodes.heartbeat(engine, paused, False, TTL)
    assert "lease had lapsed" in caplog.text and "newcomer" in caplog.text
    async with engine.connect() as conn:  # and it holds a lease again (the operator must act)
        hosts = {r.host for r in (await conn.execute(select(nodes_table))).all()}
    assert hosts == {"paused-host", "newcomer"}
