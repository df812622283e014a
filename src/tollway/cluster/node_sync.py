"""What a node keeps in step with the others, built once by the composition root: breaker
states over Redis (:mod:`.shared_health`), change notices over PostgreSQL LISTEN/NOTIFY
(:mod:`.change_feed`) and the sign-in throttles (:mod:`.shared_throttle`). Shared state is
used on PostgreSQL with ``TOLLWAY_REDIS_URL`` set, as for admission; LISTEN on PostgreSQL
alone. On SQLite (one node) everything stays in this process."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.catalog.model import Channel
from tollway.cluster.change_feed import ChangeFeed, listen_dsn
from tollway.cluster.redis_client import KeySpace, make_redis
from tollway.cluster.shared_health import SharedHealth
from tollway.cluster.shared_throttle import RedisAttempts
from tollway.routing.health import ChannelHealth, ChannelTransition
from tollway.services.throttle import Throttles
from tollway.settings import Settings


class NodeSync:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        health: ChannelHealth,
        channels: Callable[[], Sequence[Channel]],
        on_change: Callable[[str], None],
    ) -> None:
        self.node_id = uuid.uuid4().hex[:12]
        postgres = engine.dialect.name == "postgresql"
        self.redis: aioredis.Redis | None = None
        self._subscriber: aioredis.Redis | None = None
        self.health: SharedHealth | None = None
        self.throttles = Throttles.in_memory()
        if settings.redis_url and postgres:
            keys = KeySpace(settings.redis_prefix)
            self.redis = make_redis(settings)
            self._subscriber = aioredis.Redis.from_url(
                settings.redis_url, socket_connect_timeout=settings.redis_timeout_s
            )
            self.throttles = Throttles.on(RedisAttempts(self.redis, keys))
            self.health = SharedHealth(
                self.redis,
                self._subscriber,
                keys,
                health,
                channels,
                node_id=self.node_id,
                retry_s=settings.cluster_retry_s,
            )
        self.feed = (
            ChangeFeed(listen_dsn(engine), on_change, retry_s=settings.cluster_retry_s) if postgres else None
        )

    def announce(self, ct: ChannelTransition) -> Coroutine[Any, Any, None] | None:
        """The message telling the other nodes about a transition of ours, to be spawned."""
        return None if self.health is None else self.health.announce(ct)

    def start(self) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        tasks = []
        if self.feed is not None:
            tasks.append(loop.create_task(self.feed.run(), name="change-feed"))
        if self.health is not None:
            tasks.append(loop.create_task(self.health.run(), name="shared-health"))
        return tasks

    async def close(self) -> None:
        for client in (self.redis, self._subscriber):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
