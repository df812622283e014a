"""Usage totals for the console's pages: closed days from ``usage_daily`` (the rollups), the
days not rolled up yet (today, normally) from the raw records through an index. Integer sums.

:func:`totals` is the one entry point: any UTC day range, grouped by any of ``day``,
``model``, ``key`` and ``owner``, for one account or all. A day listed in
``usage_rollup_days`` is read from the rollup only; every other day from raw records only, so
nothing is counted twice or missed (a day nobody rolled up yet is simply slower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from tollway.store.tables import usage_daily, usage_daily_models, usage_records
from tollway.usage.rollups import day_start, days, raw_metric, rolled_days

U = usage_records.c
D = usage_daily.c
Key = tuple[Any, ...]
DIMS = ("day", "model", "key", "owner")
PAGE_METRICS = ("calls", "failed_calls", "deduction_nano")


def raw_day(conn: AsyncConnection) -> ColumnElement[Any]:
    """The UTC day of a raw record, as ``YYYY-MM-DD`` text (literals: GROUP BY repeats it)."""
    if conn.dialect.name == "sqlite":  # naive UTC text "YYYY-MM-DD HH:MM:SS..."
        return func.substr(U.created_at, 1, 10)
    return func.to_char(func.timezone(literal_column("'UTC'"), U.created_at), literal_column("'YYYY-MM-DD'"))


def _raw_dim(conn: AsyncConnection, dim: str) -> ColumnElement[Any]:
    return (
        {"model": U.model_billed, "key": U.key_id, "owner": U.owner_id}[dim]
        if dim != "day"
        else raw_day(conn)
    )


def _rolled_dim(dim: str) -> ColumnElement[Any]:
    return {"day": D.day, "model": D.model, "key": D.key_id, "owner": D.owner_id}[dim]


def as_day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def first_day(conn: AsyncConnection, owner_id: str | None) -> date | None:
    """The first UTC day with usage (rolled up or raw), through the owner's indexes."""
    q1 = select(func.min(D.day))
    q2 = select(func.min(U.created_at))
    if owner_id is not None:
        q1, q2 = q1.where(D.owner_id == owner_id), q2.where(U.owner_id == owner_id)
    a = (await conn.execute(q1)).scalar_one_or_none()
    b = (await conn.execute(q2)).scalar_one_or_none()
    found = [x for x in (None if a is None else as_day(a), None if b is None else b.date()) if x]
    return min(found) if found else None


async def totals(
    conn: AsyncConnection,
    *,
    since: date | None,
    until: date,
    by: Sequence[str] = (),
    owner_id: str | None = None,
    metrics: Sequence[str] = PAGE_METRICS,
) -> dict[Key, dict[str, int]]:
    """{group key (in ``by`` order): {metric: integer sum}} over the UTC days ``since..until``
    (``since`` None: from the first day with usage)."""
    assert all(d in DIMS for d in by)
    if since is None:
        since = await first_day(conn, owner_id)
        if since is None:
            return {}
    out: dict[Key, dict[str, int]] = {}

    def add(key: Key, values: Sequence[Any]) -> None:
        cell = out.setdefault(key, dict.fromkeys(metrics, 0))
        for m, v in zip(metrics, values, strict=True):
            cell[m] += int(v or 0)

    rolled = await rolled_days(conn, since, until)
    if rolled:
        # every account, by day and model only: the small per-model summary
        table = usage_daily_models if owner_id is None and set(by) <= {"day", "model"} else usage_daily
        cols = [table.c[_rolled_dim(d).name] for d in by]
        q = select(*cols, *(func.sum(table.c[m]) for m in metrics))
        q = q.where(table.c.day >= since, table.c.day <= until)
        if owner_id is not None:
            q = q.where(D.owner_id == owner_id)
        for r in await conn.execute(q.group_by(*cols) if cols else q):
            key = tuple(as_day(v) if d == "day" else v for d, v in zip(by, r[: len(by)], strict=True))
            add(key, r[len(by) :])
    raw = [d for d in days(since, until) if d not in rolled]
    if raw:
        cols = [raw_day(conn), *(_raw_dim(conn, d) for d in by if d != "day")]
        q = select(*cols, *(raw_metric(m) for m in metrics)).where(
            U.created_at >= day_start(raw[0]), U.created_at < day_start(raw[-1] + timedelta(days=1))
        )
        if owner_id is not None:
            q = q.where(U.owner_id == owner_id)
        n = len(cols)
        for r in await conn.execute(q.group_by(*cols)):
            day = as_day(r[0])
            if day in rolled:  # a rolled-up day inside the raw span: the rollup has it
                continue
            rest = iter(r[1:n])
            key = tuple(day if d == "day" else next(rest) for d in by)
            add(key, r[n:])
    return out


def today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def window_sums(
    by_day: dict[Key, dict[str, int]], end: date, metric: str, windows: Sequence[int]
) -> list[int]:
    """Sums of ``metric`` over the last N days (ending ``end``, inclusive) for each N."""
    return [
        sum(cell[metric] for (day, *_), cell in by_day.items() if day > end - timedelta(days=n))
        for n in windows
    ]


@dataclass(frozen=True, slots=True)
class Series:
    """Spend by day and by model, and the calls of each (nano-credits and counts)."""

    by_day: dict[str, list[int]]  # day -> [spend, calls]
    by_model: dict[str, list[int]]

    def chart(self) -> dict[str, Any]:
        """Chart.js data: bar heights only (floats are for drawing; shown text is integers)."""
        return {
            "days": list(self.by_day),
            "day_values": [c[0] / 10**9 for c in self.by_day.values()],
            "models": list(self.by_model),
            "model_values": [c[0] / 10**9 for c in self.by_model.values()],
        }


def fold(rows: dict[Key, dict[str, int]], by: Sequence[str], dim: str) -> dict[str, list[int]]:
    """Collapse rows grouped by ``by`` onto one dimension: {value: [spend, calls]}."""
    i = list(by).index(dim)
    out: dict[str, list[int]] = {}
    for key, cell in rows.items():
        v = key[i]
        name = v.isoformat() if isinstance(v, date) else (str(v) if v else "?")
        acc = out.setdefault(name, [0, 0])
        acc[0] += cell["deduction_nano"]
        acc[1] += cell["calls"]
    return out
