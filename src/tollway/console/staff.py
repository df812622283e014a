"""Staff pages (support and admin): find an account by UUID, email, order number or trace ID;
an account's balance, keys, usage, orders, vouchers and audit trail; credit with a reason,
voucher grants, suspend; orders (reconcile, manual credit); the refund queue; code batches;
the audit log. Groups, models and prices, channels and settings are in :mod:`.staff_catalog`,
:mod:`.staff_channels` and :mod:`.staff_settings` (admins change them; support only reads)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.accounts.model import Role
from tollway.api.sessions import account_by_email
from tollway.console import stats
from tollway.console.web import Viewer, Web
from tollway.errors import NotFound, TollwayError
from tollway.payments.codes import CodeService
from tollway.payments.context import PaymentsContext
from tollway.payments.crediting import Crediting
from tollway.payments.orders import OrderService
from tollway.payments.reconcile import Reconciler
from tollway.payments.refunds import RefundService
from tollway.payments.vouchers import VoucherService
from tollway.services.queries import get_usage

Json = dict[str, Any]


class StaffOnly(NotFound):
    """A customer on a staff page sees "not found": staff pages do not announce themselves."""


def staff_routes(router: APIRouter, web: Web, ctx: PaymentsContext) -> None:
    deps = web.deps

    async def staff(request: Request) -> Viewer:
        v = await web.viewer(request)
        if not v.staff:
            raise StaffOnly("not found")
        return v

    async def find(v: Viewer, q: str) -> str | None:
        """The account id that ``q`` names: a UUID, an email, an order number or a trace ID."""
        q = q.strip()
        if not q:
            return None
        try:
            return (await deps.service(v.actor).get_account(str(uuid.UUID(q))))["id"]  # type: ignore[no-any-return]
        except (ValueError, TollwayError):
            pass
        async with deps.engine.connect() as conn:
            row = await account_by_email(conn, q)
            if row is not None:
                return str(row.id)
            rec = await get_usage(conn, q)
            if rec is not None:
                return str(rec["account_id"])
        try:
            return str((await OrderService(ctx, v.actor).get(q))["account_id"])
        except TollwayError:
            return None

    @router.get("/staff")
    async def accounts(request: Request) -> Response:
        v = await staff(request)
        q = request.query_params.get("q", "")
        if q:
            found = await find(v, q)
            if found:
                return web.redirect(f"/console/staff/accounts/{found}")
        return web.render(request, "staff_search.html", me=v, q=q, missing=bool(q))

    async def account_page(request: Request, v: Viewer, account_id: str, **extra: Any) -> Response:
        svc = deps.service(v.actor)
        acct = await svc.get_account(account_id)
        async with deps.engine.connect() as conn:
            audit = await stats.audit_entries(conn, target=f"account:{account_id}", limit=50)
        return web.render(
            request,
            "staff_account.html",
            me=v,
            a=acct,
            bal=await svc.balance(account_id),
            keys=await svc.list_keys(account_id, include_deleted=True),
            usage=await svc.list_usage(account_id, limit=20),
            orders=await OrderService(ctx, v.actor).list_orders(account_id=account_id),
            refunds=await RefundService(ctx, v.actor).list_requests(account_id=account_id),
            audit=audit,
            message=extra.get("message"),
            error=extra.get("error"),
        )

    @router.get("/staff/accounts/{account_id}")
    async def account(request: Request, account_id: str) -> Response:
        v = await staff(request)
        return await account_page(request, v, account_id)

    @router.post("/staff/accounts/{account_id}/{action}")
    async def account_action(request: Request, account_id: str, action: str) -> Response:
        v = await staff(request)
        form = await web.form(request)
        svc = deps.service(v.actor)
        reason = form.get("reason", "")
        try:
            if action == "credit":
                await svc.credit(account_id, form.get("amount", ""), kind="cash", reason=reason)
            elif action == "voucher":
                days = int(form.get("days") or "30")
                await VoucherService(ctx, v.actor).grant(
                    account_id,
                    form.get("amount", ""),
                    reason=reason,
                    expires=datetime.now(UTC) + timedelta(days=days),
                )
            elif action in ("suspend", "activate"):
                status = "suspended" if action == "suspend" else "active"
                await svc.set_account_status(account_id, status, reason)
            else:
                raise NotFound("action")
        except (TollwayError, ValueError, OverflowError) as exc:  # OverflowError: days=10**10
            if isinstance(exc, NotFound):
                raise
            return await account_page(request, v, account_id, error=str(exc))
        deps.changed()
        return await account_page(request, v, account_id, message=action)

    @router.get("/staff/orders")
    async def orders(request: Request) -> Response:
        v = await staff(request)
        state = request.query_params.get("state") or None
        rows = await OrderService(ctx, v.actor).list_orders(state=state, limit=200)
        return web.render(request, "staff_orders.html", me=v, orders=rows, state=state or "", result=None)

    @router.get("/staff/orders/{order_number}")
    async def order(request: Request, order_number: str) -> Response:
        v = await staff(request)
        doc = await OrderService(ctx, v.actor).show(order_number)
        return web.render(request, "order.html", me=v, o=doc, staff_view=True, error=None)

    @router.post("/staff/orders/{order_number}/credit")
    async def credit_order(request: Request, order_number: str) -> Response:
        v = await staff(request)
        form = await web.form(request)
        error = None
        try:
            await Crediting(ctx, v.actor).credit_manually(order_number, reason=form.get("reason", ""))
            ctx.changed()
        except TollwayError as exc:
            error = str(exc)
        doc = await OrderService(ctx, v.actor).show(order_number)
        return web.render(request, "order.html", me=v, o=doc, staff_view=True, error=error)

    @router.post("/staff/reconcile")
    async def reconcile(request: Request) -> Response:
        v = await staff(request)
        await web.form(request)
        result = await Reconciler(ctx, v.actor).run()
        rows = await OrderService(ctx, v.actor).list_orders(limit=200)
        return web.render(request, "staff_orders.html", me=v, orders=rows, state="", result=result)

    @router.get("/staff/refunds")
    async def refunds(request: Request) -> Response:
        v = await staff(request)
        state = request.query_params.get("state") or None
        rows = await RefundService(ctx, v.actor).list_requests(state=state)
        return web.render(request, "staff_refunds.html", me=v, refunds=rows, error=None)

    @router.post("/staff/refunds/{request_id}/{action}")
    async def refund_action(request: Request, request_id: str, action: str) -> Response:
        v = await staff(request)
        form = await web.form(request)
        svc = RefundService(ctx, v.actor)
        error = None
        try:
            if action == "approve":
                await svc.approve(request_id, reason=form.get("reason", ""))
            elif action == "reject":
                await svc.reject(request_id, reason=form.get("reason", ""))
            else:
                raise NotFound("action")
            ctx.changed()
        except TollwayError as exc:
            if isinstance(exc, NotFound):
                raise
            error = str(exc)
        return web.render(request, "staff_refunds.html", me=v, refunds=await svc.list_requests(), error=error)

    @router.get("/staff/codes")
    async def codes(request: Request) -> Response:
        v = await staff(request)
        batches = await CodeService(ctx, v.actor).list_batches()
        return web.render(request, "staff_codes.html", me=v, batches=batches)

    async def admin(request: Request) -> Viewer:
        v = await staff(request)
        if v.role is not Role.ADMIN:
            raise StaffOnly("not found")
        return v

    @router.post("/staff/codes")
    async def create_codes(request: Request) -> Response:
        v = await admin(request)
        form = await web.form(request)
        svc = CodeService(ctx, v.actor)
        error = None
        try:
            await svc.create_batch(
                count=int(form.get("count") or "0"),
                value=form.get("value", ""),
                kind=form.get("kind", "cash"),
                label=form.get("label", ""),
            )
        except (TollwayError, ValueError) as exc:
            error = str(exc)
        return web.render(request, "staff_codes.html", me=v, batches=await svc.list_batches(), error=error)

    @router.post("/staff/codes/{batch_id}/revoke")
    async def revoke_codes(request: Request, batch_id: str) -> Response:
        v = await admin(request)
        form = await web.form(request)
        svc = CodeService(ctx, v.actor)
        if batch_id not in {b["batch_id"] for b in await svc.list_batches()}:
            raise NotFound("batch")
        done = await svc.revoke(batch_id=batch_id, reason=form.get("reason", "").strip())
        return web.render(
            request, "staff_codes.html", me=v, batches=await svc.list_batches(), revoked=done["revoked"]
        )

    @router.get("/staff/codes/{batch_id}.csv")
    async def export_codes(request: Request, batch_id: str) -> Response:
        v = await admin(request)
        text = await CodeService(ctx, v.actor).export_csv(batch_id)
        headers = {"content-disposition": f'attachment; filename="codes-{batch_id}.csv"'}
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)

    @router.get("/staff/audit")
    async def audit(request: Request) -> Response:
        v = await staff(request)
        async with deps.engine.connect() as conn:
            rows = await stats.audit_entries(conn, target=request.query_params.get("target", ""))
        return web.render(request, "staff_audit.html", me=v, rows=rows)
