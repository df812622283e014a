"""Attempt counters in Redis, shared by every node: one sorted set per key (member = attempt,
score = Redis's own clock in ms), trimmed to the window on every touch and expiring with it,
so keys of old attempts vanish by themselves. While Redis does not answer, each node counts in
its own memory (a bounded per-node budget) rather than letting sign-ins through unthrottled
or refusing every sign-in."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

from tollway.cluster.redis_client import KeySpace
from tollway.cluster.shared_wallets import REDIS_DOWN
from tollway.services.throttle import MemoryAttempts

log = logging.getLogger("tollway.cluster")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
"""

# KEYS: attempt keys; ARGV: window ms. Returns the live count of each key.
COUNT = (
    _NOW
    + """
local out = {}
for i, k in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
  out[i] = redis.call('ZCARD', k)
end
return out
"""
)

# KEYS: attempt keys; ARGV: window ms, attempt id, most attempts kept per key.
ADD = (
    _NOW
    + """
local cap = tonumber(ARGV[3])
for _, k in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
  redis.call('ZADD', k, now, ARGV[2])
  local n = redis.call('ZCARD', k)
  if n > cap then redis.call('ZREMRANGEBYRANK', k, 0, n - cap - 1) end
  redis.call('PEXPIRE', k, window)
end
return 1
"""
)


class RedisAttempts:
    def __init__(self, client: aioredis.Redis, keys: KeySpace, *, cap: int = 1000) -> None:
        self.redis = client
        self.k = keys
        self.cap = cap
        self.local = MemoryAttempts()  # while Redis is away
        self._count = client.register_script(COUNT)
        self._add = client.register_script(ADD)
        self._down = False

    def _names(self, keys: Sequence[str]) -> list[str]:
        return [self.k("th", k) for k in keys]

    def _away(self, exc: Exception) -> None:
        if not self._down:
            log.warning("Redis unreachable (%s): sign-in throttles count per node until it answers", exc)
        self._down = True

    async def counts(self, keys: Sequence[str], window_s: float) -> list[int]:
        try:
            res = await self._count(keys=self._names(keys), args=[int(window_s * 1000)])
        except REDIS_DOWN as exc:
            self._away(exc)
            return await self.local.counts(keys, window_s)
        self._down = False
        local = await self.local.counts(keys, window_s)  # attempts counted while Redis was away
        return [int(n) + m for n, m in zip(res, local, strict=True)]

    async def add(self, keys: Sequence[str], window_s: float) -> None:
        try:
            await self._add(keys=self._names(keys), args=[int(window_s * 1000), uuid.uuid4().hex, self.cap])
        except REDIS_DOWN as exc:
            self._away(exc)
            await self.local.add(keys, window_s)

    async def clear(self, keys: Sequence[str]) -> None:
        await self.local.clear(keys)
        try:
            await self.redis.delete(*self._names(keys))
        except REDIS_DOWN as exc:
            self._away(exc)
