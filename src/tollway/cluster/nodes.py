"""Node leases: every running server registers a row in ``nodes`` and heartbeats it.

Safe by default: without the shared backend (Redis on PostgreSQL) holds and limits live in one
process, so a node refuses to start next to another live node unless both run with it. A lease
whose heartbeat is older than ``node_lease_ttl_s`` belongs to a dead node and blocks nothing; so
does the lease of a process on this host that no longer exists (a restart after SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.errors import TollwayError
from tollway.store.tables import job_leases, nodes

log = logging.getLogger("tollway.cluster")

SHARED_HINT = (
    "Several nodes (or --workers) need the shared backend: set TOLLWAY_DATABASE_URL to PostgreSQL "
    "and TOLLWAY_REDIS_URL on every node (docs/scaling.md)."
)


class NodeRefused(TollwayError):
    """Another live node shares the database and one of the two runs without the shared backend."""

    code = "node_refused"


@dataclass(frozen=True)
class NodeId:
    host: str
    pid: int
    id: str

    @classmethod
    def mine(cls) -> NodeId:
        host, pid = socket.gethostname(), os.getpid()
        return cls(host, pid, f"{host}:{pid}:{secrets.token_hex(4)}")


@dataclass(frozen=True)
class Lease:
    id: str
    host: str
    pid: int
    heartbeat_at: datetime
    shared: bool


def _gone(me: NodeId, other: Lease) -> bool:
    """A lease of a process on this host that does not exist any more (or is this very process
    again: one pid cannot be two live processes) is stale whatever its heartbeat says."""
    if other.host != me.host:
        return False
    if other.pid == me.pid:
        return True
    try:
        os.kill(other.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def refusal(me: NodeId, shared: bool, other: Lease, now: datetime) -> str | None:
    """Why this node may not run next to ``other`` (a fresh lease), or ``None`` if it may."""
    if shared and other.shared:
        return None
    age = max(0.0, (now - other.heartbeat_at).total_seconds())
    who = f"node {other.host} pid {other.pid} (last heartbeat {age:.0f}s ago)"
    why = "this node" if not shared else "that node"
    return (
        f"refusing to start: {who} is running on this database and {why} runs without the "
        f"shared backend. {SHARED_HINT} Otherwise stop the other node first."
    )


async def _fresh_others(conn: AsyncConnection, me: NodeId, now: datetime, ttl_s: float) -> list[Lease]:
    rows = (await conn.execute(select(nodes).where(nodes.c.id != me.id))).all()
    leases = [Lease(r.id, r.host, r.pid, r.heartbeat_at, bool(r.shared)) for r in rows]
    horizon = now - timedelta(seconds=ttl_s)
    return [x for x in leases if x.heartbeat_at > horizon and not _gone(me, x)]


async def check(engine: AsyncEngine, me: NodeId, shared: bool, ttl_s: float) -> None:
    """Raise :class:`NodeRefused` if this node could not register now (nothing is written)."""
    now = datetime.now(UTC)
    async with engine.connect() as conn:
        for other in await _fresh_others(conn, me, now, ttl_s):
            message = refusal(me, shared, other, now)
            if message:
                raise NodeRefused(message)


async def register(engine: AsyncEngine, me: NodeId, shared: bool, ttl_s: float) -> None:
    """Write this node's lease, or raise :class:`NodeRefused` naming the node in the way.

    One transaction inserts the lease, then looks at the others: on SQLite writers take turns,
    on PostgreSQL a table lock makes concurrent starts take turns, so of two nodes starting at
    once the second sees the first."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("LOCK TABLE nodes IN SHARE ROW EXCLUSIVE MODE"))
        await conn.execute(
            insert(nodes).values(
                id=me.id, host=me.host, pid=me.pid, started_at=now, heartbeat_at=now, shared=shared
            )
        )
        others = await _fresh_others(conn, me, now, ttl_s)
        for other in others:
            message = refusal(me, shared, other, now)
            if message:
                raise NodeRefused(message)  # rolls the insert back
        fresh = {x.id for x in others}
        stale = select(nodes.c.id).where(nodes.c.id != me.id)
        old = [r.id for r in (await conn.execute(stale)).all() if r.id not in fresh]
        if old:  # leases of dead nodes: tidy up; their background jobs are free at once
            await conn.execute(delete(nodes).where(nodes.c.id.in_(old)))
            await conn.execute(delete(job_leases).where(job_leases.c.holder.in_(old)))


async def heartbeat(engine: AsyncEngine, me: NodeId, shared: bool, ttl_s: float) -> None:
    """Renew this node's lease (write it again if someone tidied it away: this node's heartbeat
    lapsed for longer than the TTL, and a node that started meanwhile is named in the log)."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        done = await conn.execute(update(nodes).where(nodes.c.id == me.id).values(heartbeat_at=now))
        if done.rowcount:
            return
        await conn.execute(
            insert(nodes).values(
                id=me.id, host=me.host, pid=me.pid, started_at=now, heartbeat_at=now, shared=shared
            )
        )
        for other in await _fresh_others(conn, me, now, ttl_s):
            message = refusal(me, shared, other, now)
            if message:
                log.error("this node's lease had lapsed and another node started: %s", message)


async def run_heartbeat(
    engine: AsyncEngine, me: NodeId, shared: bool, interval_s: float, ttl_s: float
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await heartbeat(engine, me, shared, ttl_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("node lease heartbeat failed; will retry", exc_info=True)


async def unregister(engine: AsyncEngine, me: NodeId) -> None:
    """Delete this node's lease (clean stop): the next node need not wait for its TTL."""
    with contextlib.suppress(Exception):
        async with engine.begin() as conn:
            await conn.execute(delete(nodes).where(nodes.c.id == me.id))
