"""Exactly-once crediting of paid orders, from any mix of notifications, return pages,
reconciliation and staff.

Three guards, all in the transaction that posts the credit:
1. the notification's dedupe key is inserted once (``payment_notifications`` is unique on
   provider + key), so a retried delivery is recognised and answered without doing anything;
2. the order moves to ``credited`` with ``UPDATE ... WHERE state IN (creditable)``: of several
   racing writers exactly one updates a row;
3. the ledger transfer's idempotency key is ``topup:<order number>``.
A report that disagrees with the stored order (amount, currency, provider, checkout) is
refused, logged and recorded on the order; nothing is credited.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.errors import InvalidRequest, NotFound
from tollway.ledger import chart
from tollway.ledger.chart import AccountKind, TransferKind
from tollway.ledger.transfer import Leg, Transfer
from tollway.payments.amounts import format_minor
from tollway.payments.checks import mismatch
from tollway.payments.context import PaymentsContext, log
from tollway.payments.db import orders as repo
from tollway.payments.db.common import utcnow
from tollway.payments.errors import NotificationRefused
from tollway.payments.model import OPEN_STATES, Order, OrderState, creditable_states
from tollway.payments.numbers import normalise_order_number
from tollway.payments.provider import PaymentReport, PaymentState
from tollway.store import config_repo, ledger_repo
from tollway.store.tables import orders as orders_table

Json = dict[str, Any]


class Outcome(StrEnum):
    CREDITED = "credited"
    ALREADY = "already_credited"  # another delivery (or the return page, or reconciliation) won
    DUPLICATE = "duplicate"  # this exact notification was handled before
    FAILED = "failed"
    EXPIRED = "expired"
    NOTED = "noted"  # nothing changed but what we know (a decline reason, still pending)


async def credit_in_tx(
    conn: AsyncConnection, order: Order, *, source: str, actor: str, report: PaymentReport | None = None
) -> int | None:
    """Credit ``order`` in the caller's transaction; the transfer id, or None if it already was."""
    now = utcnow()
    values: Json = {"paid_at": now, "credited_at": now, "failure_reason": None}
    if report is not None:
        values["provider_ref"] = repo.keep_first(orders_table.c.provider_ref, report.provider_ref)
        values["payment_ref"] = repo.keep_first(orders_table.c.payment_ref, report.payment_ref)
    won = await repo.transition(
        conn, order.order_number, OrderState.CREDITED, sources=creditable_states(), **values
    )
    if not won:
        return None
    clearing = await ledger_repo.get_or_create_account(
        conn, chart.clearing_code(order.provider), AccountKind.CLEARING
    )
    cash = await ledger_repo.get_or_create_account(
        conn, chart.cash_code(order.account_id), AccountKind.CUSTOMER_CASH, owner_id=order.account_id
    )
    amount = f"{format_minor(order.amount_minor, order.currency)} {order.currency}"
    [transfer_id] = await ledger_repo.post_transfers(
        conn,
        [
            Transfer(
                chart.topup_transfer_key(order.order_number),
                TransferKind.TOPUP.value,
                (Leg(clearing, -order.credits_nano), Leg(cash, order.credits_nano)),
                owner_id=order.account_id,
                trace_id=order.order_number,
                memo=f"top-up {order.order_number}: {amount} via {order.provider}",
                actor=actor,
            )
        ],
        at=now,
    )
    detail = {"transfer_id": transfer_id, "credits_nano": order.credits_nano, "amount": amount}
    if report is not None:
        detail["provider_ref"] = report.provider_ref
    await repo.record_event(conn, order.order_number, "paid", source=source, actor=actor, at=now)
    await repo.record_event(
        conn, order.order_number, "credited", source=source, actor=actor, detail=detail, at=now
    )
    return transfer_id


class Crediting:
    def __init__(self, ctx: PaymentsContext, actor: str = "system") -> None:
        self.ctx = ctx
        self.actor = actor

    async def refuse(self, order_number: str | None, provider: str, message: str, *, source: str) -> None:
        """Log a refused notification, and record it on the order it names (if that exists)."""
        log.warning("%s %s refused (order %s): %s", provider, source, order_number, message)
        if not order_number:
            return
        async with self.ctx.engine.begin() as conn:
            if await repo.get_order(conn, order_number) is not None:
                detail = {"provider": provider, "reason": message}
                await repo.record_event(
                    conn, order_number, "refused", source=source, actor=self.actor, detail=detail
                )

    async def apply(
        self,
        provider: str,
        report: PaymentReport,
        *,
        source: str,
        dedupe: tuple[str, str] | None = None,
    ) -> Outcome:
        """Apply a verified report. ``dedupe`` = (key, kind) of the notification, if any."""
        number = normalise_order_number(report.order_number)
        async with self.ctx.engine.connect() as conn:
            order = await repo.get_order(conn, number)
        if order is None:
            await self.refuse(None, provider, f"unknown order {number!r}", source=source)
            raise NotificationRefused(f"unknown order {number!r}", order_number=number)
        if report.state is PaymentState.PAID:
            problem = mismatch(order, report, provider=provider)
            if problem is not None:
                await self.refuse(number, provider, problem, source=source)
                raise NotificationRefused(problem, order_number=number)
        async with self.ctx.engine.begin() as conn:
            if dedupe is not None:
                key, kind = dedupe
                if not await repo.claim_notification(conn, provider, key, order_number=number, kind=kind):
                    return Outcome.DUPLICATE
            outcome = await self._apply_in_tx(conn, order, report, source=source)
        if outcome is Outcome.CREDITED:
            log.info("order %s credited (%s via %s)", number, source, provider)
            self.ctx.changed()
        return outcome

    async def _apply_in_tx(
        self, conn: AsyncConnection, order: Order, report: PaymentReport, *, source: str
    ) -> Outcome:
        n = order.order_number
        if report.state is PaymentState.PAID:
            credited = await credit_in_tx(conn, order, source=source, actor=self.actor, report=report)
            return Outcome.ALREADY if credited is None else Outcome.CREDITED
        if report.state in (PaymentState.FAILED, PaymentState.EXPIRED):
            target = OrderState.FAILED if report.state is PaymentState.FAILED else OrderState.EXPIRED
            moved = await repo.transition(
                conn, n, target, sources=OPEN_STATES, failure_reason=report.failure_reason
            )
            if moved:
                detail = {"reason": report.failure_reason}
                await repo.record_event(conn, n, target.value, source=source, actor=self.actor, detail=detail)
                return Outcome.FAILED if target is OrderState.FAILED else Outcome.EXPIRED
            return Outcome.NOTED
        if report.failure_reason and await repo.set_fields(
            conn, n, states=OPEN_STATES, failure_reason=report.failure_reason
        ):
            detail = {"reason": report.failure_reason}
            await repo.record_event(conn, n, "declined", source=source, actor=self.actor, detail=detail)
        return Outcome.NOTED

    async def credit_manually(self, order_number: str, *, reason: str) -> Json:
        """Staff credit an order after investigating it (a manual order, or a lost notification)."""
        if not reason.strip():
            raise InvalidRequest("a reason is required to credit an order by hand", param="reason")
        number = normalise_order_number(order_number)
        async with self.ctx.engine.begin() as conn:
            order = await repo.get_order(conn, number)
            if order is None:
                raise NotFound(f"no order {order_number!r}", param="order_number")
            if order.state not in creditable_states():
                raise InvalidRequest(
                    f"order {number} is {order.state.value}; it cannot be credited", param="order_number"
                )
            transfer_id = await credit_in_tx(conn, order, source="staff", actor=self.actor)
            if transfer_id is None:
                raise InvalidRequest(f"order {number} was credited meanwhile", param="order_number")
            await config_repo.write_audit(
                conn,
                actor=self.actor,
                action="order.credit",
                target=f"order:{number}",
                reason=reason,
                before={"state": order.state.value},
                after={"state": "credited", "transfer_id": transfer_id, "credits_nano": order.credits_nano},
            )
        self.ctx.changed()
        return {"order_number": number, "state": "credited", "transfer_id": transfer_id}

    async def expire(self, order: Order, *, source: str) -> bool:
        async with self.ctx.engine.begin() as conn:
            moved = await repo.transition(conn, order.order_number, OrderState.EXPIRED, sources=OPEN_STATES)
            if moved:
                await repo.record_event(conn, order.order_number, "expired", source=source, actor=self.actor)
        return moved
