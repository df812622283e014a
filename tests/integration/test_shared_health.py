"""Breaker states shared over real Redis: what one node decides, the others apply within a
second without announcing it again (no echo), a node starting late reads the current states,
a probe that closes the breaker closes it everywhere, a rotated key is not held to its old
key's state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

import pytest
import redis.asyncio as aioredis

from redis_support import REDIS_URL
from tollway.catalog.model import Channel, ChannelType
from tollway.cluster.redis_client import KeySpace, make_redis
from tollway.cluster.shared_health import SharedHealth
from tollway.routing.breaker import BreakerPolicy, BreakerState
from tollway.routing.health import ChannelHealth, ChannelTransition, Outcome
from tollway.settings import Settings

CH = Channel(
    id="ch-1",
    name="main",
    type=ChannelType.OPENAI,
    base_url="http://127.0.0.1:9/v1",
    api_key="k1",
    api_keys=("k1", "k2"),
    models=frozenset({"gpt-4o"}),
    model_map={},
    groups=frozenset(),
)


@dataclass
class Node:
    health: ChannelHealth
    shared: SharedHealth
    channels: list[Channel]
    announced: list[ChannelTransition] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@pytest.fixture
async def make_node(redis_prefix: str) -> AsyncIterator[Callable[[str], asyncio.Future[Node]]]:
    settings = Settings(redis_url=REDIS_URL, redis_prefix=redis_prefix, redis_timeout_s=1.0)
    made: list[tuple[Node, aioredis.Redis, aioredis.Redis]] = []

    async def build(name: str) -> Node:
        client, sub = make_redis(settings), aioredis.Redis.from_url(REDIS_URL)
        channels = [CH]
        node_ref: list[Node] = []

        def on_transition(ct: ChannelTransition) -> None:
            node_ref[0].announced.append(ct)
            coro = node_ref[0].shared.announce(ct)
            if coro is not None:
                asyncio.get_running_loop().create_task(coro)

        health = ChannelHealth(BreakerPolicy(consecutive_failures=2, open_s=30), on_transition=on_transition)
        shared = SharedHealth(
            client, sub, KeySpace(redis_prefix), health, lambda: channels, node_id=name, retry_s=0.2
        )
        node = Node(health, shared, channels)
        node_ref.append(node)
        node.task = asyncio.get_running_loop().create_task(shared.run())
        await asyncio.wait_for(shared.subscribed.wait(), 5)
        made.append((node, client, sub))
        return node

    yield build  # type: ignore[misc]
    for node, client, sub in made:
        assert node.task is not None
        node.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await node.task
        await client.aclose()
        await sub.aclose()


async def until(check: Callable[[], bool], within_s: float = 1.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within_s:
            raise AssertionError("not within the deadline")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_disabled_credential_is_out_on_every_node(
    make_node: Callable[[str], asyncio.Future[Node]],
) -> None:
    a, b = await make_node("a"), await make_node("b")
    cred2 = CH.credentials()[1]
    a.health.record(cred2, Outcome.DISABLE, "HTTP 401")
    await until(lambda: b.health.state(cred2) is BreakerState.DISABLED)
    assert b.health.state(CH.credentials()[0]) is BreakerState.CLOSED  # only that credential
    assert [x.label for x in b.health.order([CH])] == ["main#1"]  # b routes around it
    assert b.announced == []  # adopted, not announced again: no echo
    await asyncio.sleep(0.2)
    assert len(a.announced) == 1 and a.health.state(cred2) is BreakerState.DISABLED

    # a node that starts later reads the current state
    c = await make_node("c")
    assert c.health.state(cred2) is BreakerState.DISABLED
    # the back-off deadline travels with it: c does not probe before a's deadline
    assert not c.health.breaker(cred2).allows(c.health.clock())

    # a probe succeeds on b: closed everywhere, and the hash forgets it
    b.health.record(cred2, Outcome.OK)
    await until(lambda: a.health.state(cred2) is c.health.state(cred2) is BreakerState.CLOSED)
    assert await a.shared.redis.hgetall(a.shared.hash) == {}


async def test_an_open_breaker_is_shared(make_node: Callable[[str], asyncio.Future[Node]]) -> None:
    a, b = await make_node("a"), await make_node("b")
    cred = CH.credentials()[0]
    a.health.record(cred, Outcome.FAILED, "HTTP 502")
    a.health.record(cred, Outcome.FAILED, "HTTP 502")
    took = await until(lambda: b.health.state(cred) is BreakerState.OPEN)
    assert took < 1.0
    # a's probe (half-open) stays a's own business
    a.health.breaker(cred).open_until = 0.0
    a.health.before_attempt(cred)
    assert a.health.state(cred) is BreakerState.HALF_OPEN
    await asyncio.sleep(0.2)
    assert b.health.state(cred) is BreakerState.OPEN


async def test_a_rotated_key_is_not_held_to_the_old_state(
    make_node: Callable[[str], asyncio.Future[Node]],
) -> None:
    a, b = await make_node("a"), await make_node("b")
    b.channels[0] = replace(CH, api_key="new", api_keys=("new", "k2"))  # b already has the new key
    a.health.record(CH.credentials()[0], Outcome.DISABLE, "HTTP 401")
    await asyncio.sleep(0.3)
    assert b.health.state(b.channels[0].credentials()[0]) is BreakerState.CLOSED
