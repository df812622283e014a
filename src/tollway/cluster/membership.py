"""A running server's place in the cluster: its node lease and the job leases it holds."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.cluster import nodes
from tollway.cluster.leader import ALL_JOBS, Gate, JobLeases
from tollway.settings import Settings


class Membership:
    """Join (register the node lease, take the free job leases), keep both renewed, leave."""

    def __init__(self, engine: AsyncEngine, settings: Settings, *, shared: bool) -> None:
        self.engine = engine
        self.settings = settings
        self.shared = shared
        self.node = nodes.NodeId.mine()
        self.jobs = JobLeases(engine, self.node.id, settings.job_lease_ttl_s)
        self.joined = False

    async def join(self) -> None:
        """Raise :class:`~tollway.cluster.nodes.NodeRefused` when this node may not run here."""
        await nodes.register(self.engine, self.node, self.shared, self.settings.node_lease_ttl_s)
        self.joined = True
        await self.jobs.tick(ALL_JOBS)

    def gate(self, job: str) -> Gate:
        return self.jobs.gate(job)

    def tasks(self) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        s = self.settings
        beat = nodes.run_heartbeat(
            self.engine, self.node, self.shared, s.node_heartbeat_interval_s, s.node_lease_ttl_s
        )
        return [
            loop.create_task(beat, name="node-heartbeat"),
            loop.create_task(self.jobs.run(ALL_JOBS), name="job-leases"),
        ]

    async def leave(self) -> None:
        if self.joined:
            await self.jobs.release_all()
            await nodes.unregister(self.engine, self.node)
            self.joined = False


async def preflight(settings: Settings) -> None:
    """The node-lease check ``tollway serve`` makes before it binds a port: raise
    :class:`~tollway.cluster.nodes.NodeRefused` when a server could not start here now."""
    from tollway.cluster.upkeep import shared_admission_wanted
    from tollway.store.db import make_engine, migrate

    engine = make_engine(settings.resolved_database_url(), pool_size=1)
    try:
        await migrate(engine)
        shared = shared_admission_wanted(settings, engine)
        await nodes.check(engine, nodes.NodeId.mine(), shared, settings.node_lease_ttl_s)
    finally:
        await engine.dispose()
