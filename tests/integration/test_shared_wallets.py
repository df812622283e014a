"""The shared-admission scripts on a real Redis, with wallets loaded from a real ledger (SQLite
and PostgreSQL): two ``SharedWallets`` are two nodes. Nothing is mocked; the oracles are the
Redis state the scripts leave and the balances in the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from redis_support import REDIS_URL
from tollway.cluster.redis_client import KeySpace
from tollway.cluster.shared_wallets import SharedWallets, Short
from tollway.errors import RateLimited, ServiceUnavailable
from tollway.limits.specs import LimitSpec
from tollway.money import credits_to_nano
from tollway.services.admin import AdminService
from tollway.store.secret_box import SecretBox

GIB = credits_to_nano("1")


def _node(engine: AsyncEngine, prefix: str, *, hold_s: float = 60, recovery_s: float = 0.3) -> SharedWallets:
    return SharedWallets(
        aioredis.Redis.from_url(REDIS_URL),
        KeySpace(prefix),
        engine,
        hold_timeout_s=hold_s,
        wallet_ttl_s=60,
        lookback_s=60,
        recovery_s=recovery_s,
    )


@pytest.fixture
async def nodes(engine: AsyncEngine, redis_prefix: str) -> AsyncIterator[tuple[SharedWallets, SharedWallets]]:
    a, b = _node(engine, redis_prefix), _node(engine, redis_prefix)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def _account(engine: AsyncEngine, cash: str, voucher: str | None = None) -> str:
    admin = AdminService(engine, SecretBox("test"))
    acct = await admin.create_account(f"{datetime.now(UTC).timestamp()}@example.com")
    await admin.credit(acct["id"], cash, kind="cash", reason="test funding")
    if voucher:
        await admin.credit(acct["id"], voucher, kind="voucher", reason="test voucher")
    return str(acct["id"])


async def _admit(
    node: SharedWallets, trace: str, owner: str, worst: int, limits: tuple[LimitSpec, ...] = ()
) -> int | Short:
    return await node.admit(
        trace_id=trace,
        owner_id=owner,
        key_id="key-1",
        worst=worst,
        expected=worst,
        cap_nano=None,
        limits=limits,
        tokens=10,
    )


async def _wallet(node: SharedWallets, owner: str) -> dict[str, int]:
    raw = await node.redis.hgetall(node.k("w", owner))
    return {k.decode(): int(v) for k, v in raw.items()}


async def test_holds_on_two_nodes_never_exceed_the_balance(
    nodes: tuple[SharedWallets, SharedWallets], engine: AsyncEngine
) -> None:
    a, b = nodes
    owner = await _account(engine, "1")
    results = await asyncio.gather(*(_admit((a, b)[i % 2], f"t{i}", owner, GIB // 4) for i in range(9)))
    sizes = [r for r in results if isinstance(r, int)]
    assert sizes == [GIB // 4] * 4
    short = [r for r in results if isinstance(r, Short)]
    assert len(short) == 5 and all(s.available_nano == 0 and s.scope == "account" for s in short)
    assert (await _wallet(a, owner))["held"] == GIB


async def test_spend_takes_vouchers_first_and_a_resend_changes_nothing(
    nodes: tuple[SharedWallets, SharedWallets], engine: AsyncEngine
) -> None:
    a, b = nodes
    owner = await _account(engine, "1", voucher="0.3")
    assert await _admit(a, "t1", owner, GIB // 2) == GIB // 2
    ticket = a.tickets["t1"]
    spent = await a.spend("t1", credits_to_nano("0.5"), force=False, tokens_actual=None)
    assert spent is not None
    takes = dict(spent.plan)
    assert takes[spent.cash_ledger_id] == credits_to_nano("0.2")
    assert sum(takes.values()) == credits_to_nano("0.5")
    assert (spent.cash_before, spent.cash_after, spent.vouchers_after) == (GIB, credits_to_nano("0.8"), 0)
    after = await _wallet(b, owner)
    assert after["held"] == 0 and after["c"] == credits_to_nano("0.8")

    # the same end of call sent again (a timeout whose first try ran after all): a no-op
    keys, args = a._spend_call("t1", ticket, credits_to_nano("0.5"), True, None, None)
    res = await a._run("spend", keys, args)
    assert int(res[0]) == 3
    assert await _wallet(b, owner) == after


async def test_a_cancelled_admit_that_runs_late_reserves_nothing(
    nodes: tuple[SharedWallets, SharedWallets], engine: AsyncEngine
) -> None:
    a, _ = nodes
    owner = await _account(engine, "1")
    assert isinstance(await _admit(a, "warm", owner, 1), int)  # the wallet is loaded
    await a.release("warm")
    conc = LimitSpec("c", "account", owner, 1)
    # the node gave up on "late" and sent the cancel first; the admit itself arrives afterwards
    from tollway.cluster.shared_wallets import Ticket

    keys, args = a._spend_call("late", Ticket(owner, "key-1", 0, 0, (conc,), 10, 0), 0, False, None, None)
    await a._run("spend", keys, args)
    with pytest.raises(ServiceUnavailable):
        await _admit(a, "late", owner, GIB // 2, (conc,))
    assert (await _wallet(a, owner))["held"] == 0
    assert await _admit(a, "next", owner, GIB // 2, (conc,)) == GIB // 2  # the slot is free


async def test_limits_hold_across_nodes_and_end_with_the_call(
    nodes: tuple[SharedWallets, SharedWallets], engine: AsyncEngine
) -> None:
    a, b = nodes
    owner = await _account(engine, "1")
    rpm = (LimitSpec("r", "key", "key-1", 2),)
    assert isinstance(await _admit(a, "r1", owner, 1, rpm), int)
    assert isinstance(await _admit(b, "r2", owner, 1, rpm), int)
    with pytest.raises(RateLimited) as exc:
        await _admit(a, "r3", owner, 1, rpm)
    assert exc.value.scope == "key" and exc.value.retry_after_s >= 1

    conc = (LimitSpec("c", "account", owner, 1),)
    assert isinstance(await _admit(a, "c1", owner, 1, conc), int)
    with pytest.raises(RateLimited):
        await _admit(b, "c2", owner, 1, conc)
    await a.release("c1")
    assert isinstance(await _admit(b, "c3", owner, 1, conc), int)

    # a refusal for money consumes no slot: the limits are checked, then nothing is taken
    poor = await _account(engine, "0.000000001")
    tight = (LimitSpec("r", "account", poor, 1),)
    assert isinstance(await _admit(a, "p1", poor, GIB, tight), Short)
    assert isinstance(await _admit(b, "p2", poor, 1, tight), int)


async def test_expired_holds_are_swept_whichever_node_opened_them(
    engine: AsyncEngine, redis_prefix: str
) -> None:
    a, b = _node(engine, redis_prefix, hold_s=0.2), _node(engine, redis_prefix, hold_s=0.2)
    await a.start()
    await b.start()
    try:
        owner = await _account(engine, "1")
        assert await _admit(a, "dead", owner, GIB) == GIB
        assert isinstance(await _admit(b, "t2", owner, 1), Short)
        await asyncio.sleep(0.3)
        assert await b.sweep() == 1
        assert (await _wallet(b, owner))["held"] == 0
        assert isinstance(await _admit(b, "t3", owner, 1), int)
    finally:
        await a.close()
        await b.close()


async def test_a_credit_reaches_the_shared_wallet_once(
    nodes: tuple[SharedWallets, SharedWallets], engine: AsyncEngine
) -> None:
    a, b = nodes
    owner = await _account(engine, "1")
    assert isinstance(await _admit(a, "t1", owner, 1), int)  # loaded: the credit below is news
    await AdminService(engine, SecretBox("test")).credit(owner, "2", kind="cash", reason="top-up")
    assert await a.follow() == 1
    assert await b.follow() == 0  # the other node's follower finds it applied
    assert await a.follow() == 0
    assert (await _wallet(a, owner))["c"] == credits_to_nano("3")


async def test_a_redis_restart_pauses_admission_and_keeps_open_holds(
    engine: AsyncEngine, redis_prefix: str
) -> None:
    a, b = _node(engine, redis_prefix), _node(engine, redis_prefix)
    await a.start()
    await b.start()
    try:
        owner = await _account(engine, "1")
        assert await _admit(a, "open", owner, GIB // 2) == GIB // 2
        keys = [k async for k in a.redis.scan_iter(match=redis_prefix + "*")]
        await a.redis.delete(*keys)  # what a restart of a Redis that keeps nothing looks like
        with pytest.raises(ServiceUnavailable):
            await _admit(b, "during", owner, 1)
        await a.check()  # a's watch re-registers its open hold under the new epoch
        await asyncio.sleep(0.35)  # the recovery pause
        await b.check()
        assert (await _wallet(b, owner))["held"] == GIB // 2
        assert isinstance(await _admit(b, "after", owner, GIB // 2), int)
        assert isinstance(await _admit(b, "over", owner, 1), Short)
    finally:
        await a.close()
        await b.close()
