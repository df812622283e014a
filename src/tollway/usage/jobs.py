"""The usage background task of a running server: roll up closed days, then apply retention.

Off the settlement path: it only reads raw records and writes ``usage_daily``,
``usage_rollup_days`` and (retention) deletes old raw records, a day or a batch per
transaction. Every step is idempotent; with several nodes one runs it (tollway.cluster.leader).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.settings import Settings
from tollway.usage import rollups

log = logging.getLogger("tollway.usage")


async def run_once(engine: AsyncEngine, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    done = await rollups.roll_up(
        engine,
        now=now,
        grace_s=settings.usage_rollup_grace_s,
        reroll_days=settings.usage_rollup_reroll_days,
    )
    pruned = await rollups.prune(
        engine,
        retention_days=settings.usage_retention_days,
        now=now,
        batch=settings.usage_retention_batch,
    )
    return {"rolled_up": [d.json() for d in done], "retention": pruned}


async def run_usage_jobs(
    engine: AsyncEngine, settings: Settings, may_run: Callable[[], bool] | None = None
) -> None:
    """Every ``usage_rollup_interval_s``: :func:`run_once` (skipped while ``may_run`` says
    another node runs it). Failures are logged and retried."""
    while True:
        try:
            if may_run is not None and not may_run():
                await asyncio.sleep(settings.usage_rollup_interval_s)
                continue
            out = await run_once(engine, settings)
            if out["rolled_up"] or out["retention"]["deleted"]:
                log.info("usage rollup: %s", out)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("usage rollup failed; retrying at the next round", exc_info=True)
        await asyncio.sleep(settings.usage_rollup_interval_s)


def start_usage_jobs(
    engine: AsyncEngine, settings: Settings, may_run: Callable[[], bool] | None = None
) -> asyncio.Task[None] | None:
    """Start the task on the running loop; ``None`` when ``usage_rollup_interval_s`` is 0."""
    if settings.usage_rollup_interval_s <= 0:
        return None
    job = run_usage_jobs(engine, settings, may_run)
    return asyncio.get_running_loop().create_task(job, name="usage-rollup")
