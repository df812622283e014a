"""Reconciliation: ask the providers about what is stuck, so no customer writes to support.

- Orders open (``created``/``pending``) for longer than ``TOLLWAY_RECONCILE_AFTER_S``: the
  provider is asked; paid ones are credited (the same exactly-once path as a notification),
  failed ones marked failed; past their expiry the checkout is closed at the provider, asked
  about once more (a payment that slipped in is still credited) and the order expires.
- Refunds still pending: the provider is asked what became of them (same ``out_request_no``).
- Vouchers past expiry (plus grace): the remainder goes to breakage.
Manual orders are left to staff. Every step is idempotent, so several nodes may run it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tollway.payments.context import PaymentsContext, log
from tollway.payments.crediting import Crediting
from tollway.payments.db import orders as orders_repo
from tollway.payments.db import refunds as refunds_repo
from tollway.payments.db.common import utcnow
from tollway.payments.errors import NotificationRefused, ProviderError, ProviderNotConfigured
from tollway.payments.model import Order, RefundState
from tollway.payments.provider import PaymentState
from tollway.payments.refunds import RefundService
from tollway.payments.vouchers import VoucherService

Json = dict[str, Any]
Progress = Callable[[str], None]  # called once per order or refund handled, with a label
CONCURRENCY = 8


class Reconciler:
    def __init__(self, ctx: PaymentsContext, actor: str = "system:reconcile") -> None:
        self.ctx = ctx
        self.actor = actor
        self.crediting = Crediting(ctx, actor)

    async def due(self, *, now: datetime | None = None) -> tuple[list[Order], list[Any]]:
        now = now or utcnow()
        before = now - timedelta(seconds=self.ctx.settings.reconcile_after_s)
        async with self.ctx.engine.connect() as conn:
            orders = await orders_repo.due_orders(conn, created_before=before)
            refunds = await refunds_repo.list_refunds(conn, state=RefundState.PENDING, updated_before=before)
        return orders, refunds

    async def run(
        self,
        *,
        now: datetime | None = None,
        on_start: Callable[[int], None] | None = None,
        progress: Progress | None = None,
    ) -> Json:
        now = now or utcnow()
        orders, refunds = await self.due(now=now)
        if on_start is not None:
            on_start(len(orders) + len(refunds))
        gate = asyncio.Semaphore(CONCURRENCY)
        order_results: Counter[str] = Counter()
        refund_results: Counter[str] = Counter()

        async def one_order(order: Order) -> None:
            async with gate:
                order_results[await self.order(order, now=now)] += 1
            if progress is not None:
                progress(f"order {order.order_number}")

        async def one_refund(refund: Any) -> None:
            async with gate:
                refund_results[await self.refund(refund)] += 1
            if progress is not None:
                progress(f"refund {refund.out_request_no}")

        await asyncio.gather(*(one_order(o) for o in orders))
        await asyncio.gather(*(one_refund(r) for r in refunds))
        swept = await VoucherService(self.ctx, self.actor).sweep(now=now)
        summary = {
            "orders_checked": len(orders),
            "orders": dict(sorted(order_results.items())),
            "refunds_checked": len(refunds),
            "refunds": dict(sorted(refund_results.items())),
            "vouchers_expired": swept,
            "at": now.isoformat(),
        }
        if orders or refunds or swept:
            log.info("reconciliation: %s", summary)
        return summary

    async def order(self, order: Order, *, now: datetime) -> str:
        try:
            provider = self.ctx.registry.get(order.provider)
        except ProviderNotConfigured:
            return "provider_not_configured"
        try:
            report = await provider.query(order)
            if report.state is PaymentState.PAID or report.state in (
                PaymentState.FAILED,
                PaymentState.EXPIRED,
            ):
                return (await self.crediting.apply(order.provider, report, source="reconcile")).value
            if now < order.expires_at:
                if report.failure_reason:
                    await self.crediting.apply(order.provider, report, source="reconcile")
                return "pending"
            await provider.cancel(order)
            report = await provider.query(order)  # a payment may have slipped in before the close
            if report.state is PaymentState.PAID:
                return (await self.crediting.apply(order.provider, report, source="reconcile")).value
        except ProviderError as exc:
            log.warning("reconcile %s: %s", order.order_number, exc.message)
            return "provider_error"
        except NotificationRefused:
            return "refused"  # recorded on the order for staff
        return "expired" if await self.crediting.expire(order, source="reconcile") else "unchanged"

    async def refund(self, refund: Any) -> str:
        state = await RefundService(self.ctx, self.actor).execute(refund, ask_status=True)
        return state.value
