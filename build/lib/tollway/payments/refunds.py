"""Refunds: the customer asks (with a reason), staff approve or reject, Tollway refunds each
payment through its provider and posts the ledger when the provider confirms.

Approval, in one transaction: the request moves ``requested → processing`` (once), the plan
is computed from the ledger (``refund_plan``), one refund row per payment is stored with a
unique ``out_request_no``, and the cash is moved to ``platform:refunds_in_flight`` (a ledger
hold: it cannot be spent while the provider works). Then each provider is called:
confirmed → the held credits go to the provider's clearing account; refused → they go back
to cash; unknown → the refund stays pending and reconciliation asks again with the same
``out_request_no`` (providers treat it as the same refund).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.errors import Conflict, InvalidRequest, NotFound
from tollway.ledger import chart
from tollway.money import MoneyFormatError, credits_to_nano
from tollway.payments import refund_ledger, refund_plan
from tollway.payments.context import PaymentsContext, log
from tollway.payments.db import orders as orders_repo
from tollway.payments.db import refunds as repo
from tollway.payments.db.common import lock_ledger_account, utcnow
from tollway.payments.errors import ProviderError, ProviderNotConfigured
from tollway.payments.model import Refund, RefundState, RequestState
from tollway.payments.numbers import new_refund_number
from tollway.payments.provider import RefundLine, RefundReport
from tollway.payments.refund_queries import refundable, request_json
from tollway.payments.views import refund_json
from tollway.store import config_repo

Json = dict[str, Any]
R = RequestState


class RefundService:
    def __init__(self, ctx: PaymentsContext, actor: str) -> None:
        self.ctx = ctx
        self.actor = actor

    # --- the customer's side ---------------------------------------------------------------

    async def request(self, account_id: str, *, reason: str, amount: str | None = None) -> Json:
        if not reason.strip():
            raise InvalidRequest("tell us why you want a refund", param="reason")
        nano = None
        if amount is not None:
            try:
                nano = credits_to_nano(amount)
            except MoneyFormatError as exc:
                raise InvalidRequest(str(exc), param="amount") from exc
            if nano <= 0:
                raise InvalidRequest("amount must be positive", param="amount")
        request_id = str(uuid.uuid4())
        async with self.ctx.engine.begin() as conn:
            if await config_repo.get_account(conn, account_id) is None:
                raise NotFound(f"no account {account_id!r}", param="account_id")
            await lock_ledger_account(conn, chart.cash_code(account_id))
            if await repo.open_request(conn, account_id) is not None:
                raise Conflict("a refund request is already open for this account", param="reason")
            cash, payments = await refundable(conn, account_id)
            if refund_plan.refundable_total(payments, cash_available_nano=cash) <= 0:
                raise InvalidRequest(
                    "nothing is refundable: only unspent cash from payments can be refunded "
                    "(vouchers and redeemed codes are not)",
                    param="amount",
                )
            await repo.insert_request(
                conn,
                id=request_id,
                account_id=account_id,
                state=R.REQUESTED.value,
                reason=reason.strip(),
                amount_nano=nano,
                created_by=self.actor,
            )
        return await self.get(request_id)

    async def get(self, request_id: str, *, account_id: str | None = None) -> Json:
        async with self.ctx.engine.connect() as conn:
            row = await repo.get_request(conn, request_id, account_id=account_id)
            if row is None:
                raise NotFound(f"no refund request {request_id!r}", param="request_id")
            return await request_json(conn, row)

    async def list_requests(self, *, account_id: str | None = None, state: str | None = None) -> list[Json]:
        try:
            wanted = None if state is None else R(state)
        except ValueError as exc:
            raise InvalidRequest(
                f"state must be one of {', '.join(s.value for s in R)}", param="state"
            ) from exc
        async with self.ctx.engine.connect() as conn:
            rows = await repo.list_requests(conn, account_id=account_id, state=wanted)
            return [await request_json(conn, r) for r in rows]

    # --- staff decisions ---------------------------------------------------------------------

    async def reject(self, request_id: str, *, reason: str) -> Json:
        if not reason.strip():
            raise InvalidRequest("a reason is required to reject a refund", param="reason")
        async with self.ctx.engine.begin() as conn:
            values = {"decided_by": self.actor, "decided_at": utcnow(), "decision_reason": reason}
            if not await repo.move_request(conn, request_id, R.REJECTED, sources=[R.REQUESTED], **values):
                raise self._not_open(request_id)
            await config_repo.write_audit(
                conn,
                actor=self.actor,
                action="refund.reject",
                target=f"refund_request:{request_id}",
                reason=reason,
                before={"state": R.REQUESTED.value},
                after={"state": R.REJECTED.value},
            )
        return await self.get(request_id)

    def _not_open(self, request_id: str) -> Conflict:
        return Conflict(f"refund request {request_id} is not waiting for a decision", param="request_id")

    async def approve(self, request_id: str, *, reason: str = "") -> Json:
        await self.ctx.holds_written()  # calls in flight reserve cash the refund must leave
        async with self.ctx.engine.begin() as conn:
            values = {"decided_by": self.actor, "decided_at": utcnow(), "decision_reason": reason}
            if not await repo.move_request(conn, request_id, R.PROCESSING, sources=[R.REQUESTED], **values):
                raise self._not_open(request_id)
            row = await repo.get_request(conn, request_id)
            assert row is not None
            account_id = row.account_id
            await lock_ledger_account(conn, chart.cash_code(account_id))
            cash, payments = await refundable(conn, account_id)
            lines = refund_plan.plan(payments, cash_available_nano=cash, requested_nano=row.amount_nano)
            if not lines:
                raise InvalidRequest(
                    "nothing is refundable any more; reject the request instead", param="request_id"
                )
            refunds = [await self._hold(conn, request_id, account_id, line) for line in lines]
            await config_repo.write_audit(
                conn,
                actor=self.actor,
                action="refund.approve",
                target=f"refund_request:{request_id}",
                reason=reason,
                before={"state": R.REQUESTED.value, "cash_nano": cash},
                after={"state": R.PROCESSING.value, "refunds": [refund_json(r) for r in refunds]},
            )
        self.ctx.changed()
        for refund in refunds:
            await self.execute(refund)
        return await self.get(request_id)

    async def _hold(
        self, conn: AsyncConnection, request_id: str, account_id: str, line: refund_plan.PlanLine
    ) -> Refund:
        refund_id = str(uuid.uuid4())
        await repo.insert_refund(
            conn,
            id=refund_id,
            request_id=request_id,
            order_number=line.order_number,
            account_id=account_id,
            provider=line.provider,
            out_request_no=new_refund_number(utcnow()),
            currency=line.currency,
            amount_minor=line.amount_minor,
            credits_nano=line.credits_nano,
            state=RefundState.PENDING.value,
        )
        await refund_ledger.hold_cash(conn, refund_id, account_id, line.credits_nano, self.actor)
        refund = await repo.get_refund(conn, refund_id)
        assert refund is not None
        return refund

    # --- talking to providers ------------------------------------------------------------------

    async def execute(self, refund: Refund, *, ask_status: bool = False) -> RefundState:
        """Ask the provider to refund (or, with ``ask_status``, what became of the refund)."""
        async with self.ctx.engine.connect() as conn:
            order = await orders_repo.get_order(conn, refund.order_number)
        assert order is not None
        line = RefundLine(
            refund.out_request_no,
            refund.amount_minor,
            refund.currency,
            "requested_by_customer",
            refund.provider_ref,
        )
        try:
            provider = self.ctx.registry.get(refund.provider)
            if ask_status:
                report = await provider.refund_status(order, line)
            else:
                report = await provider.refund(order, line)
        except (ProviderError, ProviderNotConfigured) as exc:
            log.warning("refund %s via %s: %s (will ask again)", refund.id, refund.provider, exc.message)
            report = RefundReport(refund.out_request_no, RefundState.PENDING, message=exc.message)
        return await self.apply(refund, report)

    async def apply(self, refund: Refund, report: RefundReport) -> RefundState:
        """Post what the provider reported; only the first report that ends a refund counts."""
        async with self.ctx.engine.begin() as conn:
            if report.state is RefundState.PENDING:
                await repo.note_refund(
                    conn, refund.id, provider_ref=report.provider_ref or refund.provider_ref
                )
                return RefundState.PENDING
            values: Json = {"provider_ref": report.provider_ref or refund.provider_ref}
            if report.state is RefundState.FAILED:
                values["failure_reason"] = report.message or "the provider refused the refund"
            if not await repo.finish_refund(conn, refund.id, report.state, **values):
                current = await repo.get_refund(conn, refund.id)
                return current.state if current else report.state
            await refund_ledger.settle(conn, refund, report.state, self.actor)
        self.ctx.changed()
        log.info("refund %s (%s) %s", refund.id, refund.provider, report.state.value)
        return report.state

    async def resolve(self, refund_id: str, *, outcome: str, reason: str) -> Json:
        """Staff settle a refund whose outcome the provider cannot report (e.g. EPay has no refund
        query): ``succeeded`` after checking the merchant console, or ``failed``. Audited."""
        if not reason.strip():
            raise InvalidRequest("a reason is required", param="reason")
        try:
            state = RefundState(outcome)
        except ValueError as exc:
            raise InvalidRequest("outcome must be succeeded or failed", param="outcome") from exc
        if state is RefundState.PENDING:
            raise InvalidRequest("outcome must be succeeded or failed", param="outcome")
        async with self.ctx.engine.connect() as conn:
            refund = await repo.get_refund(conn, refund_id)
        if refund is None:
            raise NotFound(f"no refund {refund_id!r}", param="refund_id")
        if refund.state is not RefundState.PENDING:
            raise Conflict(f"refund {refund_id} is already {refund.state.value}", param="refund_id")
        await self.apply(refund, RefundReport(refund.out_request_no, state, message=f"staff: {reason}"))
        async with self.ctx.engine.begin() as conn:
            await config_repo.write_audit(
                conn,
                actor=self.actor,
                action="refund.resolve",
                target=f"refund:{refund_id}",
                reason=reason,
                before={"state": RefundState.PENDING.value},
                after={"state": state.value},
            )
            done = await repo.get_refund(conn, refund_id)
        assert done is not None
        return refund_json(done)
