"""Customer pages: dashboard, API keys, usage (with the arithmetic and a streamed CSV),
wallet, groups and prices, quick start. Every lookup is scoped by the signed-in account, so
another account's key, record, order or refund is 404, exactly like ``/api/me``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from tollway.console import stats
from tollway.console.web import Viewer, Web
from tollway.errors import InvalidRequest, NotFound, TollwayError
from tollway.payments.codes import CodeService
from tollway.payments.context import PaymentsContext
from tollway.payments.orders import OrderService
from tollway.payments.refunds import RefundService
from tollway.payments.vouchers import VoucherService
from tollway.store import config_repo

Json = dict[str, Any]
LOW_BALANCE_NANO = 1_000_000_000  # warn below 1 credit
KEY_ACTIONS = {"disable": "disabled", "enable": "enabled", "revoke": "revoked", "delete": "deleted"}
PER = {"mtok": 1_000_000, "call": 1}  # a price line's unit (tollway.pricing.model.ChargeLine.per)


def line_cost(line: Json) -> str:
    """A price line's exact cost in credits (decimal text; display only, never summed)."""
    per = PER.get(str(line["per"]), 1)
    value = Decimal(int(line["quantity"]) * int(line["unit_price_nano"])) / Decimal(per)
    text = format(value / Decimal(10**9), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def surprises(rec: Json) -> list[str]:
    """Keys of the explanations that apply to one record (the template words them)."""
    out = []
    t = rec["tokens"]
    if (t.get("cache_write_5m") or 0) + (t.get("cache_write_1h") or 0) > 0:
        out.append("cache_write")
    if (t.get("cache_read") or 0) > 0:
        out.append("cache_read")
    if rec.get("tier"):
        out.append("tier")
    if rec["model_billed"] and rec["model_requested"] and rec["model_billed"] != rec["model_requested"]:
        out.append("other_model")
    if rec["estimated"]:
        out.append("estimated")
    if any("image" in str(ln.get("category", "")) for ln in rec["lines"]):
        out.append("image")
    if str(rec["multiplier"]) not in ("1", "1.0"):
        out.append("multiplier")
    if rec["status"] != "ok":
        out.append("status")
    return out


def expiry(day: str) -> datetime | None:
    """A key's expiry from a date field: the end of that day, UTC."""
    if not day:
        return None
    try:
        return datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1, seconds=-1)
    except ValueError as exc:
        raise InvalidRequest("the expiry is not a date (YYYY-MM-DD)", param="expires") from exc


def parse_filter(request: Request) -> stats.UsageFilter:
    q = request.query_params

    def day(name: str, plus_days: int = 0) -> datetime | None:
        """A filter's day; a bad or out-of-range one is no filter (9999-12-31 has no next day)."""
        try:
            when = datetime.fromisoformat(q.get(name, "")).replace(tzinfo=UTC) if q.get(name) else None
            return when + timedelta(days=plus_days) if when else None
        except (ValueError, OverflowError):
            return None

    return stats.UsageFilter(
        since=day("since"),
        until=day("until", plus_days=1),
        key_id=q.get("key", ""),
        model=q.get("model", ""),
        status=q.get("status", ""),
        trace_id=q.get("trace", "").strip(),
    )


def customer_routes(router: APIRouter, web: Web, ctx: PaymentsContext) -> None:
    deps = web.deps

    async def groups_for(v: Viewer) -> list[Json]:
        async with deps.engine.connect() as conn:
            names = await stats.visible_group_names(conn)
        return [g for g in await deps.service(v.actor).list_groups() if g["name"] in names]

    @router.get("/")
    async def dashboard(request: Request) -> Response:
        v = await web.viewer(request)
        async with deps.engine.connect() as conn:
            spend = await stats.spend_summary(conn, v.account_id)
            series = await stats.spend_series(conn, v.account_id)
            latest = await stats.usage_page(conn, v.account_id, stats.UsageFilter(), limit=10)
        bal = await deps.service(v.actor).balance(v.account_id)
        chart = {
            "days": list(series["by_day"]),
            "day_values": [float(Decimal(c) / 10**9) for c in series["by_day"].values()],
            "models": list(series["by_model"]),
            "model_values": [float(Decimal(c) / 10**9) for c in series["by_model"].values()],
        }  # chart heights only; every number shown as text comes from integer nano-credits
        return web.render(
            request,
            "dashboard.html",
            me=v,
            bal=bal,
            spend=spend,
            latest=latest,
            chart=chart,
            low=bal["available_nano"] < LOW_BALANCE_NANO,
        )

    async def keys_page(request: Request, v: Viewer, created: Json | None, error: str | None) -> Response:
        async with deps.engine.connect() as conn:
            spent = await stats.spend_by_key(conn, v.account_id)
        return web.render(
            request,
            "keys.html",
            me=v,
            keys=await deps.service(v.actor).list_keys(v.account_id),
            groups=await groups_for(v),
            created=created,
            error=error,
            spent=spent,
        )

    @router.get("/billing")
    async def billing(request: Request) -> Response:
        v = await web.viewer(request)
        async with deps.engine.connect() as conn:
            b = await stats.spend_breakdown(conn, v.account_id)
        keys = await deps.service(v.actor).list_keys(v.account_id, include_deleted=True)
        names = {k["id"]: k["name"] for k in keys}
        chart = {  # bar heights only; shown amounts come from the integer nano-credits
            "days": [d for d, _ in reversed(b["day"])],
            "day_values": [float(Decimal(c) / 10**9) for _, (c, _n) in reversed(b["day"])],
            "models": [m for m, _ in b["model"]],
            "model_values": [float(Decimal(c) / 10**9) for _, (c, _n) in b["model"]],
        }
        return web.render(request, "billing.html", me=v, b=b, names=names, chart=chart)

    @router.get("/keys")
    async def keys(request: Request) -> Response:
        v = await web.viewer(request)
        return await keys_page(request, v, None, None)

    @router.post("/keys")
    async def create_key(request: Request) -> Response:
        v = await web.viewer(request)
        form = await web.form(request)
        svc = deps.service(v.actor)
        error = None
        created = None
        async with deps.engine.connect() as conn:
            group = await config_repo.get_group_row(conn, form.get("group", ""))
        try:
            if group is None or not group.visible:
                raise NotFound("group")
            created = await svc.create_key(
                v.account_id,
                name=form.get("name", "").strip() or "key",
                group=group.name,
                spend_cap=form.get("spend_cap") or None,
                models=form.get("models") or None,
                ip_allow=form.get("ip_allow") or None,
                expires=expiry(form.get("expires", "")),
            )
            deps.changed()
        except TollwayError as exc:
            error = str(exc)
        return await keys_page(request, v, created, error)

    @router.post("/keys/{key_id}/{action}")
    async def key_action(request: Request, key_id: str, action: str) -> Response:
        v = await web.viewer(request)
        form = await web.form(request)
        svc = deps.service(v.actor)
        if action == "rename":
            try:
                await svc.rename_key(key_id, form.get("name", ""), account_id=v.account_id)
            except InvalidRequest as exc:
                return await keys_page(request, v, None, str(exc))
        else:
            status = KEY_ACTIONS.get(action)
            if status is None:
                raise NotFound("action")
            await svc.set_key_status(key_id, status, account_id=v.account_id)
        deps.changed()
        return web.redirect("/console/keys")

    @router.get("/usage")
    async def usage(request: Request) -> Response:
        v = await web.viewer(request)
        f = parse_filter(request)
        async with deps.engine.connect() as conn:
            rows = await stats.usage_page(conn, v.account_id, f, limit=200)
        keys = await deps.service(v.actor).list_keys(v.account_id, include_deleted=True)
        until = request.query_params.get("until", "")
        return web.render(request, "usage.html", me=v, rows=rows, f=f, keys=keys, until=until)

    @router.get("/usage.csv")
    async def usage_csv(request: Request) -> Response:
        v = await web.viewer(request)
        headers = {"content-disposition": 'attachment; filename="usage.csv"'}
        return StreamingResponse(
            stats.usage_csv(deps.engine, v.account_id, parse_filter(request)),
            media_type="text/csv; charset=utf-8",
            headers=headers,
        )

    @router.get("/usage/{trace_id}")
    async def usage_detail(request: Request, trace_id: str) -> Response:
        v = await web.viewer(request)
        rec = await deps.service(v.actor).get_usage(trace_id, account_id=v.account_id, include_operator=False)
        lines = [{**ln, "cost": line_cost(ln)} for ln in rec["lines"]]
        return web.render(request, "usage_detail.html", me=v, r=rec, lines=lines, why=surprises(rec))

    async def wallet_page(request: Request, v: Viewer, **extra: Any) -> Response:
        orders = OrderService(ctx, v.actor)
        return web.render(
            request,
            "wallet.html",
            me=v,
            bal=await deps.service(v.actor).balance(v.account_id),
            options=await orders.options(),
            orders=await orders.list_orders(account_id=v.account_id),
            vouchers=await VoucherService(ctx, v.actor).list_grants(v.account_id),
            refunds=await RefundService(ctx, v.actor).list_requests(account_id=v.account_id),
            quote=extra.pop("quote", None),
            message=extra.pop("message", None),
            error=extra.pop("error", None),
        )

    @router.get("/wallet")
    async def wallet(request: Request) -> Response:
        v = await web.viewer(request)
        quote = None
        q = request.query_params
        if q.get("amount") and q.get("currency"):
            try:
                quote = await OrderService(ctx, v.actor).quote(q["currency"], q["amount"])
            except TollwayError as exc:
                return await wallet_page(request, v, error=str(exc))
        return await wallet_page(request, v, quote=quote)

    @router.post("/wallet/{action}")
    async def wallet_action(request: Request, action: str) -> Response:
        v = await web.viewer(request)
        form = await web.form(request)
        try:
            if action == "redeem":
                out = await CodeService(ctx, v.actor).redeem(v.account_id, form.get("code", "").strip())
                ctx.changed()
                return await wallet_page(request, v, message=("redeemed", out))
            if action == "refund":
                out = await RefundService(ctx, v.actor).request(
                    v.account_id, reason=form.get("reason", ""), amount=form.get("amount") or None
                )
                return await wallet_page(request, v, message=("refund", out))
            if action == "topup":
                out = await OrderService(ctx, v.actor).create(
                    v.account_id,
                    provider=form.get("provider", ""),
                    amount=form.get("amount", ""),
                    currency=form.get("currency", ""),
                    method=form.get("method") or None,
                )
                return await wallet_page(request, v, message=("order", out))
        except TollwayError as exc:
            return await wallet_page(request, v, error=str(exc))
        raise NotFound("action")

    @router.get("/prices")
    async def prices(request: Request) -> Response:
        v = await web.viewer(request)
        svc = deps.service(v.actor)
        groups = await groups_for(v)
        keys = await svc.list_keys(v.account_id)
        mine = request.query_params.get("group") or (keys[0]["group"] if keys else "")
        group = next((g for g in groups if g["name"] == mine), groups[0] if groups else None)
        return web.render(
            request,
            "prices.html",
            me=v,
            groups=groups,
            group=group,
            models=await svc.list_models(),
        )

    @router.get("/start")
    async def quickstart(request: Request) -> Response:
        v = await web.viewer(request)
        base = (deps.settings.public_base_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")
        return web.render(request, "start.html", me=v, base=base)
