"""Redis away mid-load, with two real nodes: admission fails closed (503, ``x-should-retry:
true``, nothing reserved, nothing sent upstream), calls already admitted finish and are billed,
and no money is lost or made up — whether Redis stalls and comes back with its state (SIGSTOP /
SIGCONT: the nodes replay what they spent meanwhile) or restarts empty (SIGKILL and start: the
state is rebuilt from the ledger). The oracle is the ledger: every served call billed once, the
balance spent to exactly zero and not a call more, a clean audit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from redis_support import PrivateRedis

from .calls import fake, tag
from .cluster_stack import Cluster, running_cluster
from .stack import poll
from .test_cluster_admission import BALANCE_NANO, MAX_TOKENS, _call, _spread, _status

FULL = {"prompt_tokens": 9, "completion_tokens": MAX_TOKENS}  # each call costs its hold
FAST = {
    "TOLLWAY_REDIS_TIMEOUT_S": "0.5",
    "TOLLWAY_REDIS_CHECK_INTERVAL_S": "0.2",
    "TOLLWAY_REDIS_RECOVERY_S": "1",
}


def _served(results: list[Any]) -> list[ChatCompletion]:
    return [r for r in results if isinstance(r, ChatCompletion)]


def _outage(
    cl: Cluster, secret: str, redis: PrivateRedis, refused_tag: str, *, restart: bool
) -> tuple[list[Any], list[Any]]:
    """10 slow calls in flight on both nodes when Redis goes away; 10 calls during the outage."""

    async def run() -> tuple[list[Any], list[Any]]:
        nodes = cl.nodes
        flying = [
            asyncio.ensure_future(_call(nodes[i % 2], secret, fake(tag(), usage=FULL, latency_ms=1500)))
            for i in range(10)
        ]
        await asyncio.sleep(0.6)  # admitted: their holds are in Redis
        if restart:
            redis.stop()
        else:
            redis.pause()
        await asyncio.sleep(0.3)
        refused = await _spread(cl, secret, 10, fake(refused_tag, usage=FULL))
        done = list(await asyncio.gather(*flying))
        return done, list(refused)

    return asyncio.run(run())


def _check_outage(cl: Cluster, done: list[Any], refused: list[Any], refused_tag: str) -> None:
    st = cl.stack
    assert [_status(r) for r in done] == [200] * 10, [str(r) for r in done if _status(r) != 200][:2]
    assert [_status(r) for r in refused] == [503] * 10
    for r in refused:
        assert isinstance(r, openai.APIStatusError)
        assert r.response.headers["x-should-retry"] == "true"
        assert int(r.response.headers["retry-after"]) >= 1
        assert "Redis" in r.message
    assert st.fake_requests(refused_tag) == []  # the refused reached no upstream


def _spend_the_rest(cl: Cluster, secret: str, account_id: str, served_so_far: int) -> None:
    st = cl.stack

    def admitted() -> int | None:
        r = asyncio.run(_call(cl.nodes[1], secret, fake(tag(), usage=FULL)))
        return 1 if _status(r) == 200 else None

    poll(admitted, timeout=20, interval=0.3, what="admission to resume after the outage")
    more = _served(asyncio.run(_spread(cl, secret, 60, fake(tag(), usage=FULL))))
    total = served_so_far + 1 + len(more)
    assert total == 50, total  # the whole balance, and not a call more
    assert st.balance(account_id)["cash_nano"] == 0
    records = st.p.usage_list(account_id)
    assert len(records) == 50
    assert sum(r["deduction_nano"] for r in records) == BALANCE_NANO
    poll(lambda: True if st.p.audit().ok else None, timeout=20, interval=0.5, what="a clean audit")


def _scenario(pg_db_url: str, redis_prefix: str, tmp_path: Path, *, restart: bool) -> None:
    redis = PrivateRedis(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    try:
        with running_cluster(
            pg_db_url, tmp_path, redis_url=redis.url, redis_prefix=redis_prefix, nodes=2, server_env=FAST
        ) as cl:
            st = cl.stack
            c = st.customer(group="x1", credit="0.051125")  # 50 calls
            warm = _served(asyncio.run(_spread(cl, c.secret, 10, fake(tag(), usage=FULL))))
            assert len(warm) == 10
            refused_tag = tag()
            done, refused = _outage(cl, c.secret, redis, refused_tag, restart=restart)
            if restart:
                redis.start()
            else:
                redis.resume()
            _check_outage(cl, done, refused, refused_tag)
            _spend_the_rest(cl, c.secret, c.account_id, 20)
    finally:
        redis.stop()


def test_redis_stalls_mid_load_and_returns_with_its_state(
    pg_db_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    _scenario(pg_db_url, redis_prefix, tmp_path, restart=False)


def test_redis_restarts_empty_mid_load(pg_db_url: str, redis_prefix: str, tmp_path: Path) -> None:
    _scenario(pg_db_url, redis_prefix, tmp_path, restart=True)


def test_no_redis_at_start_refuses_calls_not_the_node(
    pg_db_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """A node whose Redis is down serves 503 + x-should-retry (never unsafe admission), and
    admits as soon as Redis answers."""
    redis = PrivateRedis(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    try:
        with running_cluster(
            pg_db_url, tmp_path, redis_url=redis.url, redis_prefix=redis_prefix, nodes=1, server_env=FAST
        ) as cl:
            c = cl.stack.customer(group="x1", credit="1")
            redis.stop()
            time.sleep(0.5)
            r = asyncio.run(_call(cl.nodes[0], c.secret, fake(tag())))
            assert _status(r) == 503 and r.response.headers["x-should-retry"] == "true"
            redis.start()
            poll(
                lambda: (
                    True if _status(asyncio.run(_call(cl.nodes[0], c.secret, fake(tag())))) == 200 else None
                ),
                timeout=20,
                interval=0.3,
                what="admission once Redis is back",
            )
            cl.stack.audit_ok()
    finally:
        redis.stop()
