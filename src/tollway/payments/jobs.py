"""The payments background task of a running server: FX refresh and reconciliation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.payments.context import PaymentsContext, log
from tollway.payments.pricing import PricingService
from tollway.payments.reconcile import Reconciler
from tollway.settings import Settings
from tollway.store.secret_box import SecretBox


async def run_payment_jobs(ctx: PaymentsContext, may_run: Callable[[], bool] | None = None) -> None:
    """Refresh FX rates every ``fx_refresh_interval_s`` (when ``TOLLWAY_FX_URL`` is set) and
    reconcile every ``reconcile_interval_s``; rounds are skipped while ``may_run`` says another
    node runs them. Failures are logged and retried next round."""
    loop = asyncio.get_running_loop()
    next_fx = loop.time()

    def mine() -> bool:
        return may_run is None or may_run()

    while True:
        if ctx.settings.fx_url and loop.time() >= next_fx and mine():
            try:
                await PricingService(ctx, "system:fx").refresh_fx()
                next_fx = loop.time() + ctx.settings.fx_refresh_interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("FX refresh failed: %s; retrying at the next round", exc)
        await asyncio.sleep(ctx.settings.reconcile_interval_s)
        if not mine():
            continue
        try:
            await Reconciler(ctx).run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("reconciliation failed; retrying at the next round", exc_info=True)


def start_payment_jobs(
    engine: AsyncEngine,
    box: SecretBox,
    settings: Settings,
    on_change: Callable[[], None] | None = None,
    may_run: Callable[[], bool] | None = None,
) -> asyncio.Task[None]:
    """Start the payments background task on the running loop (the server's ``start`` calls it)."""
    ctx = PaymentsContext.build(engine, box, settings, on_change)
    return asyncio.get_running_loop().create_task(run_payment_jobs(ctx, may_run), name="payments")
