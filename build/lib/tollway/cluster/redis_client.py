"""The one way Tollway opens a Redis connection pool, and names its keys."""

from __future__ import annotations

import redis.asyncio as aioredis

from tollway.settings import Settings


def make_redis(settings: Settings) -> aioredis.Redis:
    """A pooled asyncio client for ``TOLLWAY_REDIS_URL``; commands (and waits for a pooled
    connection) time out after ``redis_timeout_s`` so an unreachable Redis is noticed, never
    waited on."""
    if not settings.redis_url:
        raise ValueError("TOLLWAY_REDIS_URL is not set")
    timeout = settings.redis_timeout_s
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_pool_size,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        decode_responses=False,
    )
    return aioredis.Redis.from_pool(pool)


class KeySpace:
    """Key names under the deployment's prefix (``TOLLWAY_REDIS_PREFIX``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)
