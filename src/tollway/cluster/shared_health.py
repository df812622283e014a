"""Breaker states shared by every node (issue 9): a credential disabled or a breaker opened on
one node is out on all at once, and closed on all when a probe brings it back.

Each transition a node decides (closed, open, disabled; half-open is one node's own probe and
stays local) is written to one Redis hash (``<prefix>health``, field ``<channel id>:<credential
index>``; a closed credential's field is deleted) and published on ``<prefix>health:events``.
Every other node applies it with :meth:`ChannelHealth.adopt`, which announces nothing, so
nodes never echo each other; a node ignores its own messages, and one starting late (or
re-subscribing after Redis was away) reads the hash. A state naming another key than the
one configured now at that index (the operator rotated it) is ignored, unless it closes the
breaker (the node that sent it may simply have loaded the new key first). Back-off deadlines
travel as wall-clock times and become each node's own monotonic deadline on arrival.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from tollway.catalog.model import Channel
from tollway.cluster.redis_client import KeySpace
from tollway.routing.breaker import BreakerState
from tollway.routing.health import ChannelHealth, ChannelTransition

log = logging.getLogger("tollway.cluster")


def fingerprint(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class SharedHealth:
    def __init__(
        self,
        client: aioredis.Redis,
        subscriber: aioredis.Redis,
        keys: KeySpace,
        health: ChannelHealth,
        channels: Callable[[], Sequence[Channel]],
        *,
        node_id: str,
        retry_s: float = 1.0,
        ttl_s: float = 86_400.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.subscriber = subscriber  # its own connection: a subscribed one does nothing else
        self.hash = keys("health")
        self.events = keys("health", "events")
        self.health = health
        self.channels = channels
        self.node_id = node_id
        self.retry_s = retry_s
        self.ttl_s = ttl_s
        self.wall = wall
        self.subscribed = asyncio.Event()  # set while subscribed (tests wait for it)

    # ------------------------------------------------------------------ this node's decisions

    def announce(self, ct: ChannelTransition) -> Coroutine[Any, Any, None] | None:
        """The message for a transition this node decided, read now (the breaker's deadline
        as it is at the transition); None for what stays local."""
        after = ct.transition.after
        if after is BreakerState.HALF_OPEN:
            return None
        b = self.health.breaker(ct.channel)
        left = max(0.0, b.open_until - self.health.clock()) if after is not BreakerState.CLOSED else 0.0
        doc = {
            "node": self.node_id,
            "channel_id": ct.channel.id,
            "index": ct.channel.key_index,
            "fp": fingerprint(ct.channel.api_key),
            "state": after.value,
            "until_ms": int((self.wall() + left) * 1000),
            "backoff_s": b.backoff_s,
            "reason": ct.transition.reason,
        }
        return self._send(f"{ct.channel.id}:{ct.channel.key_index}", doc)

    async def _send(self, field: str, doc: dict[str, Any]) -> None:
        payload = orjson.dumps(doc)
        try:
            pipe = self.redis.pipeline(transaction=True)
            if doc["state"] == BreakerState.CLOSED.value:
                pipe.hdel(self.hash, field)
            else:
                pipe.hset(self.hash, field, payload)
                pipe.expire(self.hash, int(self.ttl_s))
            pipe.publish(self.events, payload)
            await pipe.execute()
        except Exception as exc:  # other nodes then find out by themselves (their own calls)
            log.warning("could not share a channel state change (%s)", exc)

    # ------------------------------------------------------------------ other nodes' decisions

    def apply(self, raw: bytes | str) -> bool:
        try:
            doc = orjson.loads(raw)
            state = BreakerState(doc["state"])
            channel_id, index = str(doc["channel_id"]), int(doc["index"])
            until_s, backoff_s = int(doc["until_ms"]) / 1000, float(doc["backoff_s"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed shared channel state: %r", raw)
            return False
        if doc.get("node") == self.node_id:
            return False
        current = next(
            (
                x
                for c in self.channels()
                if c.id == channel_id
                for x in c.credentials()
                if x.key_index == index
            ),
            None,
        )
        rotated = current is not None and fingerprint(current.api_key) != doc.get("fp")
        if rotated and state is not BreakerState.CLOSED:
            return False  # that index holds another key now: the state was about the old one
        name = current.label if current is not None else f"{channel_id}#{index + 1}"
        open_until = self.health.clock() + max(0.0, until_s - self.wall())
        changed = self.health.adopt((channel_id, index), name, state, open_until, backoff_s)
        if changed:
            log.info(
                "channel %s: %s (decided by node %s: %s)",
                name,
                state.value,
                doc.get("node"),
                doc.get("reason", ""),
                extra={"channel_id": channel_id, "event": "channel.state.shared"},
            )
        return changed

    async def load(self) -> None:
        """Every state not closed right now (a node starting, or back after Redis was away)."""
        for raw in (await self.redis.hgetall(self.hash)).values():
            self.apply(raw)

    async def run(self) -> None:
        while True:
            pubsub = self.subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.events)
                await self.load()  # after subscribing: nothing falls between the two
                self.subscribed.set()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None and msg.get("type") == "message":
                        self.apply(msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("shared channel states unavailable (%s); retrying in %.1fs", exc, self.retry_s)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(self.retry_s)
