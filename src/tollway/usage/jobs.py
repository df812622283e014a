"""The usage background task of a running server: roll up closed days, then apply retention.

Off the settlement path: it only reads raw records and writes ``usage_daily``,
``usage_rollup_days`` and (retention) deletes old raw records, a day or a batch per
transaction. Several nodes may run it at once: every step is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
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


async def run_usage_jobs(engine: AsyncEngine, settings: Settings) -> None:
    """Every ``usage_rollup_interval_s``: :func:`run_once`. Failures are logged and retried."""
    while True:
        try:
            out = await run_once(engine, settings)
            if out["rolled_up"] or out["retention"]["deleted"]:
                log.info("usage rollup: %s", out)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("usage rollup failed; retrying at the next round", exc_info=True)
        await asyncio.sleep(settings.usage_rollup_interval_s)


def start_usage_jobs(engine: AsyncEngine, settings: Settings) -> asyncio.Task[None] | None:
    """Start the task on the running loop; ``None`` when ``usage_rollup_interval_s`` is 0."""
    if settings.usage_rollup_interval_s <= 0:
        return None
    return asyncio.get_running_loop().create_task(run_usage_jobs(engine, settings), name="usage-rollup")
