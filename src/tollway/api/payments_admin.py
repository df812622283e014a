"""``/api/admin/...`` for payments. Staff (support and admin) read, credit orders after
investigation, grant vouchers and decide refunds; admins also sell codes and set prices.
Every money action is in the audit log with actor, time, reason, before and after."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from tollway.api.auth import Authenticator, Principal
from tollway.api.payments_schemas import (
    CodeBatchCreate,
    CodeRevoke,
    OptionalReason,
    PriceSet,
    Reasoned,
    RefundResolve,
    StaffOrderCreate,
    StaffRefundAsk,
    VoucherGrant,
)
from tollway.payments.codes import CodeService
from tollway.payments.context import PaymentsContext
from tollway.payments.crediting import Crediting
from tollway.payments.notify import NotifyService
from tollway.payments.orders import OrderService
from tollway.payments.pricing import PricingService
from tollway.payments.reconcile import Reconciler
from tollway.payments.refunds import RefundService
from tollway.payments.vouchers import VoucherService

Json = dict[str, Any]


class CsvResponse(PlainTextResponse):
    """Text as ``text/csv`` (and so documented in the OpenAPI)."""

    media_type = "text/csv"


def admin_payments_router(ctx: PaymentsContext, auth: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/admin")
    staff = Depends(auth.staff)
    admin = Depends(auth.admin)

    # --- orders ------------------------------------------------------------------------------

    @router.post("/accounts/{account_id}/orders", tags=["orders"], status_code=201, summary="Create an order")
    async def create_order(account_id: str, body: StaffOrderCreate, who: Principal = staff) -> Json:
        return await OrderService(ctx, who.actor).create(
            account_id,
            provider=body.provider,
            amount=body.amount,
            currency=body.currency,
            method=body.method,
            staff=True,
        )

    @router.get("/orders", tags=["orders"], summary="Orders, newest first")
    async def list_orders(
        account_id: str | None = None,
        state: str | None = None,
        limit: int = Query(50, ge=1, le=10_000),
        who: Principal = staff,
    ) -> Json:
        svc = OrderService(ctx, who.actor)
        return {"orders": await svc.list_orders(account_id=account_id, state=state, limit=limit)}

    @router.get("/orders/{order_number}", tags=["orders"], summary="An order with its history and refunds")
    async def show_order(order_number: str, who: Principal = staff) -> Json:
        return await OrderService(ctx, who.actor).show(order_number)

    @router.post(
        "/orders/{order_number}/credit", tags=["orders"], summary="Credit an order by hand (audited)"
    )
    async def credit_order(order_number: str, body: Reasoned, who: Principal = staff) -> Json:
        return await Crediting(ctx, who.actor).credit_manually(order_number, reason=body.reason)

    @router.post("/orders/{order_number}/refresh", tags=["orders"], summary="Ask the provider now")
    async def refresh_order(order_number: str, who: Principal = staff) -> Json:
        return await NotifyService(ctx).confirm(order_number, source="staff")

    @router.post("/payments/reconcile", tags=["orders"], summary="Run reconciliation now")
    async def reconcile(who: Principal = staff) -> Json:
        return await Reconciler(ctx, who.actor).run()

    # --- prices --------------------------------------------------------------------------------

    @router.get("/payments/prices", tags=["prices"], summary="Price of a credit per currency")
    async def prices(who: Principal = staff) -> Json:
        return {"currencies": await PricingService(ctx, who.actor).list_json()}

    @router.put("/payments/prices/{currency}", tags=["prices"], summary="Set a currency's price (audited)")
    async def set_price(currency: str, body: PriceSet, who: Principal = admin) -> Json:
        return await PricingService(ctx, who.actor).set_price(
            currency,
            price_per_credit=body.price_per_credit,
            fx_rate=body.fx_rate,
            margin=body.margin,
            min_amount=body.min_amount,
            presets=body.presets,
            enabled=body.enabled,
            reason=body.reason,
        )

    @router.post("/payments/fx/refresh", tags=["prices"], summary="Refresh FX rates from TOLLWAY_FX_URL")
    async def refresh_fx(who: Principal = admin) -> Json:
        return await PricingService(ctx, who.actor).refresh_fx()

    # --- vouchers and codes ------------------------------------------------------------------------

    @router.post(
        "/accounts/{account_id}/vouchers", tags=["vouchers"], status_code=201, summary="Grant a voucher"
    )
    async def grant_voucher(account_id: str, body: VoucherGrant, who: Principal = staff) -> Json:
        return await VoucherService(ctx, who.actor).grant(
            account_id,
            body.amount,
            expires=body.expires,
            reason=body.reason,
            order_number=body.order_number,
            trace_id=body.trace_id,
        )

    @router.get("/accounts/{account_id}/vouchers", tags=["vouchers"], summary="An account's voucher grants")
    async def list_vouchers(account_id: str, who: Principal = staff) -> Json:
        return {
            "account_id": account_id,
            "vouchers": await VoucherService(ctx, who.actor).list_grants(account_id),
        }

    @router.post("/codes", tags=["codes"], status_code=201, summary="Create a batch of redemption codes")
    async def create_codes(body: CodeBatchCreate, who: Principal = admin) -> Json:
        return await CodeService(ctx, who.actor).create_batch(
            count=body.count, value=body.value, kind=body.kind, expires=body.expires, label=body.label
        )

    @router.get("/codes", tags=["codes"], summary="Code batches with counts by state")
    async def list_codes(who: Principal = staff) -> Json:
        return {"batches": await CodeService(ctx, who.actor).list_batches()}

    @router.get(
        "/codes/{batch_id}/export", tags=["codes"], summary="A batch as CSV", response_class=CsvResponse
    )
    async def export_codes(batch_id: str, who: Principal = admin) -> CsvResponse:
        text = await CodeService(ctx, who.actor).export_csv(batch_id)
        headers = {"Content-Disposition": f'attachment; filename="codes-{batch_id}.csv"'}
        return CsvResponse(text, headers=headers)

    @router.post("/codes/revoke", tags=["codes"], summary="Revoke an unused code, or a batch's unused codes")
    async def revoke_codes(body: CodeRevoke, who: Principal = admin) -> Json:
        return await CodeService(ctx, who.actor).revoke(
            code=body.code, batch_id=body.batch_id, reason=body.reason
        )

    # --- refunds ---------------------------------------------------------------------------------

    @router.get("/refunds", tags=["refunds"], summary="Refund requests (filter by state)")
    async def list_refunds(
        state: str | None = None, account_id: str | None = None, who: Principal = staff
    ) -> Json:
        svc = RefundService(ctx, who.actor)
        return {"refunds": await svc.list_requests(account_id=account_id, state=state)}

    @router.post(
        "/refunds", tags=["refunds"], status_code=201, summary="Open a refund request for an account"
    )
    async def open_refund(body: StaffRefundAsk, who: Principal = staff) -> Json:
        return await RefundService(ctx, who.actor).request(
            body.account_id, reason=body.reason, amount=body.amount
        )

    @router.post(
        "/refunds/{request_id}/approve", tags=["refunds"], summary="Approve: refund through providers"
    )
    async def approve(request_id: str, body: OptionalReason | None = None, who: Principal = staff) -> Json:
        reason = body.reason if body else ""
        return await RefundService(ctx, who.actor).approve(request_id, reason=reason)

    @router.post("/refunds/{request_id}/reject", tags=["refunds"], summary="Reject, with a reason")
    async def reject(request_id: str, body: Reasoned, who: Principal = staff) -> Json:
        return await RefundService(ctx, who.actor).reject(request_id, reason=body.reason)

    @router.post("/refunds/items/{refund_id}/resolve", tags=["refunds"], summary="Settle an unknown outcome")
    async def resolve(refund_id: str, body: RefundResolve, who: Principal = staff) -> Json:
        return await RefundService(ctx, who.actor).resolve(
            refund_id, outcome=body.outcome, reason=body.reason
        )

    return router
