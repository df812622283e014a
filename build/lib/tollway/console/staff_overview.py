"""The staff overview (the first staff page): revenue from credited orders, spend, calls,
error rate and active accounts today / 7 / 30 UTC days, spend charts, and every channel
credential's health now (the running data plane's breakers, ``ControlDeps.live``) with its
calls and failures today. Usage figures come from the daily rollups plus today's raw records
(:mod:`.rollup_queries`); every amount is an integer (nano-credits, minor currency units)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.console import rollup_queries as rq
from tollway.console.overview_data import METRICS, ClosedDaysCache, usage_figures
from tollway.console.staff import StaffOnly
from tollway.console.web import Web
from tollway.payments.amounts import format_minor
from tollway.store.tables import channels, orders
from tollway.usage.rollups import day_start, days

Json = dict[str, Any]
WINDOWS = (("today", 1), ("d7", 7), ("d30", 30))
OC = orders.c


async def revenue(conn: AsyncConnection, end: date) -> Json:
    """Credited orders by window: credits sold, orders, and the amount paid per currency."""
    since = day_start(end - timedelta(days=29))
    starts = {name: day_start(end - timedelta(days=n - 1)) for name, n in WINDOWS}
    cols = []
    for name, start in starts.items():
        inside = OC.credited_at >= start
        cols += [
            func.coalesce(func.sum(case((inside, OC.credits_nano), else_=0)), 0).label(f"{name}_nano"),
            func.coalesce(func.sum(case((inside, 1), else_=0)), 0).label(f"{name}_n"),
            func.coalesce(func.sum(case((inside, OC.amount_minor), else_=0)), 0).label(f"{name}_minor"),
        ]
    q = select(OC.currency, *cols).where(OC.credited_at >= since).group_by(OC.currency).order_by(OC.currency)
    out: Json = {name: {"credits_nano": 0, "orders": 0, "paid": []} for name in starts}
    for r in (await conn.execute(q)).mappings():
        for name in starts:
            cell = out[name]
            cell["credits_nano"] += int(r[f"{name}_nano"])
            cell["orders"] += int(r[f"{name}_n"])
            if int(r[f"{name}_minor"]):
                cell["paid"].append(
                    format_minor(int(r[f"{name}_minor"]), str(r["currency"])) + f" {r['currency']}"
                )
    return out


async def overview(conn: AsyncConnection, end: date, cache: ClosedDaysCache) -> Json:
    since = end - timedelta(days=29)
    fig = await usage_figures(conn, cache, since, end)
    by_day = fig.by_day()
    usage: Json = {}
    for name, n in WINDOWS:
        inside = [cell for day, cell in by_day.items() if day > end - timedelta(days=n)]
        calls, failed, spend, official = (sum(c.get(m, 0) for c in inside) for m in METRICS)
        usage[name] = {
            "calls": calls,
            "failed": failed,
            "spend_nano": spend,
            "official_nano": official,
            # display text only, from integers: failures per 100 calls to one decimal
            "error_rate": f"{failed * 1000 // calls // 10}.{failed * 1000 // calls % 10}%" if calls else "—",
            "accounts": sum(1 for d in fig.last_seen.values() if d > end - timedelta(days=n)),
        }
    models = sorted(fig.by_model().items(), key=lambda kv: -kv[1]["deduction_nano"])
    series = rq.Series(
        by_day={d.isoformat(): [by_day.get(d, {}).get("deduction_nano", 0), 0] for d in days(since, end)},
        by_model={m: [c["deduction_nano"], c["calls"]] for m, c in models[:12]},
    )
    return {
        "usage": usage,
        "revenue": await revenue(conn, end),
        "models": models,
        "chart": series.chart(),
        "channel_today": fig.channel_today,
    }


async def channel_health(conn: AsyncConnection, web: Web, calls: dict[str, tuple[int, int]]) -> list[Json]:
    live = web.deps.live
    rows = []
    q = select(channels.c.id, channels.c.name, channels.c.type, channels.c.status).order_by(channels.c.name)
    for ch in await conn.execute(q):
        creds = live.credentials(str(ch.id)) if live is not None else None
        n, failed = calls.get(str(ch.id), (0, 0))
        rows.append(
            {
                "id": ch.id,
                "name": ch.name,
                "type": ch.type,
                "status": ch.status,
                "credentials": [(c.label, c.state.value) for c in creds or []],
                "calls": n,
                "failed": failed,
            }
        )
    return rows


def overview_routes(router: APIRouter, web: Web) -> None:
    closed_days = ClosedDaysCache()

    @router.get("/staff/overview")
    async def staff_overview(request: Request) -> Response:
        v = await web.viewer(request)
        if not v.staff:
            raise StaffOnly("not found")
        end = rq.today()
        async with web.deps.engine.connect() as conn:
            doc = await overview(conn, end, closed_days)
            health = await channel_health(conn, web, doc["channel_today"])
        return web.render(request, "staff_overview.html", me=v, o=doc, health=health, today=end.isoformat())
