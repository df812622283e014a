"""Admission primitives side by side: Tollway's Redis scripts vs PostgreSQL row reservations.

Both do the same work per call: reserve a hold against a balance atomically (refuse when the
balance minus open holds cannot cover it), then end the call (release the hold, spend the cost).
Redis: the real ``SharedWallets.admit``/``spend`` (two EVALSHA). PostgreSQL: a wallet row with
``held``, ``UPDATE ... WHERE cash - held >= amount RETURNING`` plus a hold row, then a second
transaction that deletes the hold and spends (asyncpg, pool of 16, with synchronous_commit on and
off). Workloads: one hot account (every call contends for one row/key) and 1,000 accounts.

    .venv/bin/python bench/primitives/admission.py [--calls 20000] [--concurrency 64] [--runs 3]

Prints a Markdown table of medians and Redis's own per-script cost (INFO commandstats), from
which the capacity of one Redis is projected (docs/scaling.md, bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from tollway.cluster import lua
from tollway.cluster.redis_client import KeySpace
from tollway.cluster.shared_wallets import SharedWallets
from tollway.store.db import make_engine

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
BALANCE = 10**15  # never short: measure the primitive, not refusals
HOLD, COST = 1_000_000, 600_000

PG_SCHEMA = """
CREATE TABLE wallet (owner text PRIMARY KEY, cash bigint NOT NULL, held bigint NOT NULL DEFAULT 0);
CREATE TABLE hold (trace text PRIMARY KEY, owner text NOT NULL, amount bigint NOT NULL,
                   expires_at timestamptz NOT NULL);
"""
PG_ADMIT = """
WITH w AS (UPDATE wallet SET held = held + $2 WHERE owner = $1 AND cash - held >= $2 RETURNING owner)
INSERT INTO hold (trace, owner, amount, expires_at) SELECT $3, owner, $2, now() + interval '15 min' FROM w
RETURNING amount
"""
PG_SPEND = """
WITH h AS (DELETE FROM hold WHERE trace = $1 RETURNING owner, amount)
UPDATE wallet SET held = wallet.held - h.amount, cash = wallet.cash - $2 FROM h WHERE wallet.owner = h.owner
RETURNING wallet.cash
"""

Call = Callable[[str, str], Awaitable[None]]


async def drive(call: Call, owners: list[str], calls: int, concurrency: int) -> tuple[float, float, float]:
    """Run ``calls`` admit+spend pairs, ``concurrency`` at a time: (pairs/s, p50 ms, p99 ms)."""
    latencies: list[float] = []
    it = iter(range(calls))

    async def worker() -> None:
        for i in it:
            t0 = time.perf_counter()
            await call(owners[i % len(owners)], f"t{i}-{uuid.uuid4().hex[:8]}")
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return calls / elapsed, q[49] * 1000, q[98] * 1000


async def redis_target(owners: list[str]) -> tuple[Call, Callable[[], Awaitable[None]]]:
    client = aioredis.Redis.from_url(REDIS, max_connections=64)
    keys = KeySpace(f"bench:{uuid.uuid4().hex[:8]}:")
    engine = make_engine("sqlite+aiosqlite:///:memory:")  # never used: every wallet is preloaded
    shared = SharedWallets(
        client, keys, engine, hold_timeout_s=900, wallet_ttl_s=600, lookback_s=60, recovery_s=1
    )
    await shared.start()
    init = client.register_script(lua.INIT)
    for i, owner in enumerate(owners):
        await init(
            keys=[keys("epoch"), keys("w", owner), keys("k", "-")],
            args=[shared.epoch, 10**9, 10**6, i + 1, BALANCE, "", 0],
        )

    async def call(owner: str, trace: str) -> None:
        size = await shared.admit(
            trace_id=trace,
            owner_id=owner,
            key_id="k1",
            worst=HOLD,
            expected=HOLD,
            cap_nano=None,
            limits=(),
            tokens=10,
        )
        assert isinstance(size, int)
        assert await shared.spend(trace, COST, force=False, tokens_actual=None) is not None

    async def close() -> None:
        async for k in client.scan_iter(match=keys.prefix + "*", count=1000):
            await client.delete(k)
        await shared.close()
        await engine.dispose()

    return call, close


async def pg_target(owners: list[str], sync_commit: bool) -> tuple[Call, Callable[[], Awaitable[None]]]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    settings = {} if sync_commit else {"synchronous_commit": "off"}
    pool = await asyncpg.create_pool(dsn, min_size=16, max_size=16, server_settings=settings)
    await pool.execute(PG_SCHEMA)
    await pool.executemany("INSERT INTO wallet (owner, cash) VALUES ($1, $2)", [(o, BALANCE) for o in owners])

    async def call(owner: str, trace: str) -> None:
        async with pool.acquire() as conn:
            assert await conn.fetchval(PG_ADMIT, owner, HOLD, trace) == HOLD
        async with pool.acquire() as conn:
            assert await conn.fetchval(PG_SPEND, trace, COST) is not None

    async def close() -> None:
        await pool.close()
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return call, close


async def script_costs() -> dict[str, float]:
    """Redis's own microseconds per EVALSHA / per script (since the last CONFIG RESETSTAT)."""
    client = aioredis.Redis.from_url(REDIS)
    stats: dict[str, Any] = await client.info("commandstats")
    await client.aclose()
    return {
        k: float(v["usec_per_call"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_ping")
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args()
    workloads = {"1 hot account": ["hot"], "1,000 accounts": [f"a{i}" for i in range(1000)]}
    makers: dict[str, Callable[[list[str]], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]]] = {
        "Redis scripts (Tollway)": redis_target,
        "PostgreSQL rows, synchronous_commit on": lambda o: pg_target(o, True),
        "PostgreSQL rows, synchronous_commit off": lambda o: pg_target(o, False),
    }
    r = aioredis.Redis.from_url(REDIS)
    await r.config_resetstat()
    await r.aclose()
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for run in range(opts.runs):
        for wl, owners in workloads.items():
            for target, make in makers.items():  # interleaved: drift hits every target alike
                call, close = await make(owners)
                try:
                    await drive(call, owners, min(2000, opts.calls), opts.concurrency)  # warm-up
                    rows.setdefault((wl, target), []).append(
                        await drive(call, owners, opts.calls, opts.concurrency)
                    )
                finally:
                    await close()
                print(f"run {run + 1}: {wl} / {target}: {rows[(wl, target)][-1][0]:,.0f} calls/s", flush=True)
    print()
    print(
        f"{opts.calls} admit+spend pairs per run, {opts.concurrency} at a time, one Python process; medians of {opts.runs} runs\n"
    )
    print("| workload | primitive | calls/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|")
    for (wl, target), res in rows.items():
        med = [statistics.median(x[i] for x in res) for i in range(3)]
        print(f"| {wl} | {target} | {med[0]:,.0f} | {med[1]:.2f} | {med[2]:.2f} |")
    costs = await script_costs()
    print(f"\nRedis commandstats: {costs}")


if __name__ == "__main__":
    asyncio.run(main())
