"""Job leases on real SQLite and PostgreSQL: two (or four) runners never run one job at the
same time, a dead holder's job is taken over after the TTL, a clean stop hands it over at once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.cluster.leader import JobLeases
from tollway.settings import normalise_database_url
from tollway.store.db import make_engine

JOB = "reconcile"
TTL = 0.6


@dataclass
class Runner:
    """One node's job loop: every 10 ms, if it holds the lease, a 30 ms round."""

    leases: JobLeases
    rounds: list[tuple[str, float, float]]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        await self.leases.tick([JOB])
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self.leases.run([JOB])), loop.create_task(self._job())]

    async def _job(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            if self.leases.held(JOB):
                began = time.monotonic()
                await asyncio.sleep(0.03)
                self.rounds.append((self.leases.holder, began, time.monotonic()))

    async def kill(self) -> None:
        """Like SIGKILL: stop renewing and running, release nothing."""
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def stop(self) -> None:
        await self.kill()
        await self.leases.release_all()


def assert_no_overlap(rounds: list[tuple[str, float, float]]) -> None:
    ordered = sorted(rounds, key=lambda r: r[1])
    for a, b in itertools.pairwise(ordered):
        assert b[1] >= a[2], f"{a[0]} and {b[0]} ran {JOB} at the same time: {a} {b}"


def first_round_of(rounds: list[tuple[str, float, float]], holder: str) -> float:
    return min(r[1] for r in rounds if r[0] == holder)


async def _engines(db_url: str, n: int) -> list[AsyncEngine]:
    return [make_engine(normalise_database_url(db_url)) for _ in range(n)]


async def test_a_dead_holder_is_taken_over_after_the_ttl_never_overlapping(
    engine: AsyncEngine, db_url: str
) -> None:
    engines = await _engines(db_url, 2)  # each node its own pool, like separate processes
    rounds: list[tuple[str, float, float]] = []
    a = Runner(JobLeases(engines[0], "node-a", TTL), rounds)
    b = Runner(JobLeases(engines[1], "node-b", TTL), rounds)
    try:
        await a.start()
        await b.start()
        await asyncio.sleep(1.5)  # several TTLs: a keeps the job, b never runs it
        assert {r[0] for r in rounds} == {"node-a"}
        killed = time.monotonic()
        await a.kill()
        await asyncio.sleep(TTL + TTL / 3 + 0.6)
        took_over = first_round_of(rounds, "node-b")
        assert took_over >= killed + TTL * 0.5, "b took the job before a's lease could have expired"
        assert took_over <= killed + TTL + TTL / 3 + 0.4, "b did not take over after the TTL"
        assert_no_overlap(rounds)
        await b.stop()
    finally:
        for e in engines:
            await e.dispose()


async def test_four_runners_with_crashes_never_run_the_job_at_once(engine: AsyncEngine, db_url: str) -> None:
    engines = await _engines(db_url, 4)
    rounds: list[tuple[str, float, float]] = []
    runners = [Runner(JobLeases(e, f"node-{i}", 0.3), rounds) for i, e in enumerate(engines)]
    try:
        await asyncio.gather(*(r.start() for r in runners))
        alive = list(runners)
        for _ in range(2):  # kill whoever holds the job, twice
            await asyncio.sleep(0.8)
            holder = next((r for r in alive if r.leases.held(JOB)), None)
            assert holder is not None, "nobody holds the job"
            await holder.kill()
            alive.remove(holder)
        await asyncio.sleep(0.8)
        assert len({r[0] for r in rounds}) >= 3  # the job moved on after each crash
        assert_no_overlap(rounds)
        for r in alive:
            await r.stop()
    finally:
        for e in engines:
            await e.dispose()


async def test_a_clean_stop_hands_the_job_over_without_waiting(engine: AsyncEngine) -> None:
    a = JobLeases(engine, "node-a", 30.0)
    b = JobLeases(engine, "node-b", 30.0)
    assert await a.acquire(JOB)
    assert not await b.acquire(JOB)
    assert await a.acquire(JOB), "the holder renews its own lease"
    await a.release_all()
    assert not a.held(JOB)
    assert await b.acquire(JOB)
    assert not await a.acquire(JOB)
