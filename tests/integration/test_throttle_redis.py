"""Sign-in throttles in real Redis: two nodes (two stores, two clients) share one budget per
email and per address, a success clears only the email, keys expire with their window, and a
Redis that does not answer leaves each node counting on its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from redis_support import REDIS_URL
from tollway.cluster.redis_client import KeySpace, make_redis
from tollway.cluster.shared_throttle import RedisAttempts
from tollway.services.throttle import Throttle
from tollway.settings import Settings


@pytest.fixture
async def clients(redis_prefix: str) -> AsyncIterator[list[aioredis.Redis]]:
    settings = Settings(redis_url=REDIS_URL, redis_prefix=redis_prefix, redis_timeout_s=1.0)
    made = [make_redis(settings), make_redis(settings)]
    yield made
    for c in made:
        await c.aclose()


def node(client: aioredis.Redis, prefix: str, window_s: float = 60.0) -> Throttle:
    return Throttle("login", RedisAttempts(client, KeySpace(prefix)), limit=3, ip_limit=5, window_s=window_s)


async def test_two_nodes_share_one_budget(clients: list[aioredis.Redis], redis_prefix: str) -> None:
    a, b = node(clients[0], redis_prefix), node(clients[1], redis_prefix)
    await a.fail("email:x@example.test", "ip:1")
    await b.fail("email:x@example.test", "ip:1")
    assert not await a.blocked("email:x@example.test", "ip:1")
    await a.fail("email:x@example.test", "ip:1")
    assert await b.blocked("email:x@example.test")  # 3 failures over two nodes
    await b.fail("email:y@example.test", "ip:1")
    await a.fail("email:z@example.test", "ip:1")
    assert await b.blocked("email:new@example.test", "ip:1")  # the address: 5 over two nodes
    # a success on node b clears the email everywhere, never the address
    await b.clear("email:x@example.test")
    assert not await a.blocked("email:x@example.test")
    assert await a.blocked("email:x@example.test", "ip:1")


async def test_keys_expire_with_their_window(clients: list[aioredis.Redis], redis_prefix: str) -> None:
    a = node(clients[0], redis_prefix, window_s=0.3)
    for i in range(50):
        await a.fail(f"email:{i}@random.test")
    assert len([k async for k in clients[0].scan_iter(match=f"{redis_prefix}th:*")]) == 50
    ttl = await clients[0].pttl(f"{redis_prefix}th:login:email:0@random.test")
    assert 0 < ttl <= 300
    await asyncio.sleep(0.5)
    assert [k async for k in clients[0].scan_iter(match=f"{redis_prefix}th:*")] == []
    assert not await a.blocked("email:0@random.test")


async def test_one_key_never_grows_past_its_cap(clients: list[aioredis.Redis], redis_prefix: str) -> None:
    store = RedisAttempts(clients[0], KeySpace(redis_prefix), cap=10)
    for _ in range(30):
        await store.add(["ip:flood"], 60.0)
    assert await clients[0].zcard(f"{redis_prefix}th:ip:flood") == 10


async def test_redis_away_counts_per_node(redis_prefix: str) -> None:
    dead = make_redis(Settings(redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.2))
    try:
        t = node(dead, redis_prefix)
        for _ in range(3):
            assert not await t.blocked("email:x@example.test")
            await t.fail("email:x@example.test")
        assert await t.blocked("email:x@example.test")
        await t.clear("email:x@example.test")
        assert not await t.blocked("email:x@example.test")
    finally:
        await dead.aclose()
