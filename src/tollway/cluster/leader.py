"""One runner per background job across nodes: a lease per job name in ``job_leases``.

A node takes a job's lease when it is free or expired, and renews it every third of
``job_lease_ttl_s`` while it lives; the job's loop runs a round only while :meth:`JobLeases.held`
says so. A node that dies stops renewing: after the TTL another node takes the job over. A
clean stop releases the leases at once. Acquire and renew are one conditional UPDATE (or an
INSERT for a job nobody ran yet), so this works the same on SQLite and PostgreSQL
(docs/scaling.md, "Background jobs").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.store.tables import job_leases

log = logging.getLogger("tollway.cluster")

Gate = Callable[[], bool]

# The background jobs that run on one node at a time.
PAYMENTS = "payments"  # FX refresh + reconciliation
USAGE = "usage"  # daily rollups + retention
OUTBOX = "outbox"  # the mail sender
HOLD_SWEEP = "hold-sweep"  # expiring holds left active in the database by dead processes
REDIS_SWEEP = "redis-sweep"  # releasing expired holds in Redis
PROBES = "probes"  # channel probes
ALL_JOBS = (PAYMENTS, USAGE, OUTBOX, HOLD_SWEEP, REDIS_SWEEP, PROBES)

# A holder stops believing it holds a lease this share of the TTL after the renewal began, so
# it has stopped starting rounds before any other node can see the lease expired.
SAFETY = 0.8


def always() -> bool:
    return True


class JobLeases:
    """The job leases of one node (``holder``, its node id)."""

    def __init__(self, engine: AsyncEngine, holder: str, ttl_s: float) -> None:
        self.engine = engine
        self.holder = holder
        self.ttl_s = ttl_s
        self._until: dict[str, float] = {}  # name -> monotonic time this node may run it until

    def held(self, name: str) -> bool:
        return time.monotonic() < self._until.get(name, 0.0)

    def gate(self, name: str) -> Gate:
        return lambda: self.held(name)

    async def acquire(self, name: str) -> bool:
        """Take or renew ``name``'s lease; ``True`` while this node holds it."""
        began = time.monotonic()
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.ttl_s)
        jl = job_leases.c
        got = False
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(job_leases)
                .where(and_(jl.name == name, or_(jl.holder == self.holder, jl.expires_at <= now)))
                .values(holder=self.holder, expires_at=expires)
            )
            got = done.rowcount == 1
        if not got:
            try:
                async with self.engine.begin() as conn:
                    row = {"name": name, "holder": self.holder, "expires_at": expires}
                    await conn.execute(insert(job_leases).values(**row))
                got = True
            except IntegrityError:  # another node holds it
                got = False
        was = self.held(name)
        if got:
            self._until[name] = began + self.ttl_s * SAFETY
            if not was:
                log.info("this node now runs the %s job", name)
        else:
            self._until.pop(name, None)
            if was:
                log.warning("the %s job's lease was taken by another node", name)
        return got

    async def tick(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                await self.acquire(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job lease %s: could not renew; will retry", name, exc_info=True)

    async def run(self, names: Iterable[str]) -> None:
        """Forever: take or renew every lease in ``names`` every third of the TTL (call
        :meth:`tick` once first to hold them from the start)."""
        names = tuple(names)
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            await self.tick(names)

    async def release_all(self) -> None:
        """Give every lease of this node back (clean stop): another node takes over at once."""
        self._until.clear()
        try:
            async with self.engine.begin() as conn:
                await conn.execute(delete(job_leases).where(job_leases.c.holder == self.holder))
        except Exception:
            log.warning("could not release the job leases; they expire after their TTL", exc_info=True)
