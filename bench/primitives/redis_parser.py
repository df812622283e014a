"""redis-py's reply parser on Tollway's admission path: hiredis (C) against the pure-Python one.

The same admit + spend pair as bench/primitives/admission.py (the real ``SharedWallets``, two
EVALSHA), 64 at a time on one hot wallet, each parser in turn, ``--runs`` times interleaved.
Reports pairs/s and the client process's CPU per pair (``time.process_time``), which is what a
node pays; Redis's side is the same for both.

    .venv/bin/python bench/primitives/redis_parser.py [--calls 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

from tollway.cluster import lua
from tollway.cluster.redis_client import KeySpace
from tollway.cluster.shared_wallets import SharedWallets
from tollway.store.db import make_engine

REDIS = "redis://127.0.0.1:6379/0"
PARSERS: dict[str, Any] = {"hiredis": _AsyncHiredisParser, "python": _AsyncRESP2Parser}


async def run(parser: Any, calls: int, concurrency: int) -> tuple[float, float]:
    pool = aioredis.BlockingConnectionPool.from_url(REDIS, max_connections=64, parser_class=parser)
    client = aioredis.Redis.from_pool(pool)
    keys = KeySpace(f"bench:{uuid.uuid4().hex[:8]}:")
    engine = make_engine("sqlite+aiosqlite:///:memory:")  # never used: the wallet is preloaded
    shared = SharedWallets(
        client, keys, engine, hold_timeout_s=900, wallet_ttl_s=600, lookback_s=60, recovery_s=1
    )
    await shared.start()
    await client.register_script(lua.INIT)(
        keys=[keys("epoch"), keys("w", "o"), keys("k", "-")],
        args=[shared.epoch, 10**9, 10**6, 1, 10**15, "", 0],
    )
    it = iter(range(calls))

    async def worker() -> None:
        for i in it:
            trace = f"t{i}"
            size = await shared.admit(
                trace_id=trace, owner_id="o", key_id="k1", worst=10**6, expected=10**6,
                cap_nano=None, limits=(), tokens=10,
            )  # fmt: skip
            assert isinstance(size, int)
            assert await shared.spend(trace, 600_000, force=False, tokens_actual=None) is not None

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    async for k in client.scan_iter(match=keys.prefix + "*", count=1000):
        await client.delete(k)
    await shared.close()
    await engine.dispose()
    return calls / wall, cpu * 1e6 / calls


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    results: dict[str, list[tuple[float, float]]] = {n: [] for n in PARSERS}
    for rep in range(a.runs):
        order = list(PARSERS) if rep % 2 == 0 else list(reversed(PARSERS))
        for name in order:
            results[name].append(await run(PARSERS[name], a.calls, a.concurrency))
    print("| parser | pairs/s (median) | client CPU µs per pair (median) | runs (pairs/s) |")
    print("|---|---:|---:|---|")
    for name, rows in results.items():
        rps = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        print(f"| {name} | {rps:,.0f} | {cpu:,.0f} | {', '.join(f'{r[0]:,.0f}' for r in rows)} |")


if __name__ == "__main__":
    asyncio.run(main())
