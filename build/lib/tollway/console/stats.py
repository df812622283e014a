"""Read models the console needs beyond :mod:`tollway.services.queries`: spend totals, daily
and per-model series, filtered usage pages and the audit log. Sums stay integer nano-credits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollway.console import rollup_queries as rq
from tollway.services.queries import usage_json
from tollway.store.tables import audit_log, usage_records

Json = dict[str, Any]
U = usage_records.c


async def spend_summary(conn: AsyncConnection, owner_id: str, now: datetime | None = None) -> Json:
    """Spend today, over the last 7 and the last 30 UTC days (today included), nano-credits."""
    end = rq.today(now)
    by_day = await rq.totals(conn, since=end - timedelta(days=29), until=end, by=("day",), owner_id=owner_id)
    t, d7, d30 = rq.window_sums(by_day, end, "deduction_nano", (1, 7, 30))
    return {"today": t, "d7": d7, "d30": d30}


async def spend_series(
    conn: AsyncConnection, owner_id: str, days: int = 30, now: datetime | None = None
) -> Json:
    """Spend per day (UTC) and per model over the last ``days`` days, in nano-credits."""
    end = rq.today(now)
    by = ("day", "model")
    rows = await rq.totals(conn, since=end - timedelta(days=days - 1), until=end, by=by, owner_id=owner_id)
    by_day = {d: c[0] for d, c in sorted(rq.fold(rows, by, "day").items())}
    by_model = {m: c[0] for m, c in sorted(rq.fold(rows, by, "model").items(), key=lambda kv: -kv[1][0])}
    return {"by_day": by_day, "by_model": by_model}


@dataclass(slots=True)
class UsageFilter:
    since: datetime | None = None
    until: datetime | None = None
    key_id: str = ""
    model: str = ""
    status: str = ""
    trace_id: str = ""

    def where(self, owner_id: str) -> list[Any]:
        conds: list[Any] = [U.owner_id == owner_id]
        if self.since:
            conds.append(U.created_at >= self.since)
        if self.until:
            conds.append(U.created_at < self.until)
        if self.key_id:
            conds.append(U.key_id == self.key_id)
        if self.model:
            conds.append(U.model_billed == self.model)
        if self.status:
            conds.append(U.status == self.status)
        if self.trace_id:
            conds.append(U.trace_id == self.trace_id)
        return conds


async def usage_page(conn: AsyncConnection, owner_id: str, f: UsageFilter, limit: int = 100) -> list[Json]:
    q = select(usage_records).where(*f.where(owner_id)).order_by(U.created_at.desc()).limit(limit)
    return [usage_json(r) for r in await conn.execute(q)]


CSV_COLUMNS = (
    "trace_id",
    "created_at",
    "key_id",
    "model_requested",
    "model_billed",
    "group",
    "multiplier",
    "status",
    "http_status",
    "input",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "output",
    "reasoning",
    "estimated",
    "official_cost_usd",
    "deduction",
)


def _csv_line(values: list[str]) -> str:
    out = []
    for v in values:
        if any(c in v for c in ',"\n\r'):
            v = '"' + v.replace('"', '""') + '"'
        out.append(v)
    return ",".join(out) + "\r\n"


async def usage_csv(
    engine: AsyncEngine, owner_id: str, f: UsageFilter, batch: int = 1000
) -> AsyncIterator[str]:
    """The filtered records as CSV, newest first, read in keyset pages so any range streams."""
    yield _csv_line(list(CSV_COLUMNS))
    cursor: tuple[datetime, str] | None = None
    while True:
        q = select(usage_records).where(*f.where(owner_id))
        if cursor is not None:
            q = q.where((U.created_at < cursor[0]) | ((U.created_at == cursor[0]) & (U.trace_id < cursor[1])))
        q = q.order_by(U.created_at.desc(), U.trace_id.desc()).limit(batch)
        async with engine.connect() as conn:
            rows = list(await conn.execute(q))
        for r in rows:
            j = usage_json(r)
            t = j["tokens"]
            yield _csv_line(
                [
                    j["trace_id"],
                    j["created_at"],
                    j["key_id"] or "",
                    j["model_requested"] or "",
                    j["model_billed"] or "",
                    j["group"] or "",
                    str(j["multiplier"]),
                    j["status"],
                    str(j["http_status"] or ""),
                    *(
                        str(t[k] or 0)
                        for k in (
                            "input",
                            "cache_read",
                            "cache_write_5m",
                            "cache_write_1h",
                            "output",
                            "reasoning",
                        )
                    ),
                    "1" if j["estimated"] else "0",
                    j["official_cost_usd"],
                    j["deduction"],
                ]
            )
        if len(rows) < batch:
            return
        cursor = (rows[-1].created_at, rows[-1].trace_id)


async def audit_entries(conn: AsyncConnection, *, target: str = "", limit: int = 200) -> list[Json]:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if target:
        q = q.where(audit_log.c.target == target)
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "actor": r.actor,
            "action": r.action,
            "target": r.target,
            "reason": r.reason,
            "after": r.after or "",
        }
        for r in await conn.execute(q)
    ]


async def visible_group_names(conn: AsyncConnection) -> set[str]:
    from tollway.store.tables import groups

    return {r.name for r in await conn.execute(select(groups.c.name).where(groups.c.visible.is_(True)))}


async def spend_by_key(conn: AsyncConnection, owner_id: str) -> dict[str, int]:
    """Each key's spend since its first call (rollups plus today's raw records)."""
    rows = await rq.totals(conn, since=None, until=rq.today(), by=("key",), owner_id=owner_id)
    return {str(k): cell["deduction_nano"] for (k,), cell in rows.items()}


async def spend_breakdown(
    conn: AsyncConnection, owner_id: str, days: int = 90, now: datetime | None = None
) -> Json:
    """Spend and calls over the last ``days`` UTC days by day, month, model and key (nano-credits)."""
    end = rq.today(now)
    by = ("day", "model", "key")
    rows = await rq.totals(conn, since=end - timedelta(days=days - 1), until=end, by=by, owner_id=owner_id)
    out = {dim: rq.fold(rows, by, dim) for dim in ("day", "model", "key")}
    month: dict[str, list[int]] = {}
    for day, (spend, calls) in out["day"].items():
        cell = month.setdefault(day[:7], [0, 0])
        cell[0] += spend
        cell[1] += calls
    out["month"] = month
    return {
        dim: sorted(
            v.items(),
            key=(lambda kv: kv[0]) if dim in ("day", "month") else (lambda kv: kv[1][0]),
            reverse=True,
        )
        for dim, v in out.items()
    }
