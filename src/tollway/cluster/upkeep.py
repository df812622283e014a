"""The background work of shared admission on each node: watch Redis (restart, return),
release expired holds, and carry control-plane transfers into the wallets Redis knows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.cluster.redis_client import KeySpace, make_redis
from tollway.cluster.shared_wallets import REDIS_DOWN, SharedWallets
from tollway.settings import Settings

log = logging.getLogger("tollway.cluster")


def shared_admission_wanted(settings: Settings, engine: AsyncEngine) -> bool:
    """Redis decides admission when it is configured on a PostgreSQL database. SQLite is the
    single-node default: there Redis is not needed and is ignored (with a warning)."""
    if not settings.redis_url:
        return False
    if engine.dialect.name != "postgresql":
        log.warning(
            "TOLLWAY_REDIS_URL is ignored on SQLite, which serves one node; use PostgreSQL to scale out"
        )
        return False
    return True


async def open_shared_wallets(settings: Settings, engine: AsyncEngine) -> SharedWallets:
    shared = SharedWallets(
        make_redis(settings),
        KeySpace(settings.redis_prefix),
        engine,
        hold_timeout_s=settings.hold_timeout_s,
        wallet_ttl_s=settings.redis_wallet_ttl_s,
        lookback_s=settings.redis_follow_lookback_s,
        recovery_s=settings.redis_recovery_s,
    )
    try:
        await shared.start()
    except REDIS_DOWN:
        log.error("Redis at TOLLWAY_REDIS_URL does not answer; calls get 503 until it does")
        shared.reachable = False
    return shared


async def run_upkeep(
    shared: SharedWallets,
    settings: Settings,
    wake: asyncio.Event | None = None,
    may_sweep: Callable[[], bool] | None = None,
) -> None:
    """Forever: check Redis every ``redis_check_interval_s``; sweep holds every
    ``hold_sweep_interval_s`` (on the node ``may_sweep`` names: one sweeper is enough); follow
    the ledger every ``refresh_interval_s`` (or when woken)."""
    last_sweep = last_follow = 0.0
    while True:
        with contextlib.suppress(TimeoutError):
            if wake is not None:
                async with asyncio.timeout(settings.redis_check_interval_s):  # not wait_for (app.py)
                    await wake.wait()
            else:
                await asyncio.sleep(settings.redis_check_interval_s)
        woken = wake is not None and wake.is_set()
        if wake is not None:
            wake.clear()
        try:
            if not shared.epoch:
                await shared.start()
            await shared.check()
            now = time.monotonic()
            if now - last_sweep >= settings.hold_sweep_interval_s and (may_sweep is None or may_sweep()):
                last_sweep = now
                await shared.sweep()
            if woken or now - last_follow >= settings.refresh_interval_s:
                last_follow = now
                await shared.follow()
        except asyncio.CancelledError:
            raise
        except REDIS_DOWN:
            log.debug("Redis still unreachable", exc_info=True)
        except Exception:
            log.warning("shared admission upkeep failed; will retry", exc_info=True)
