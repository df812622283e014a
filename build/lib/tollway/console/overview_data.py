"""The staff overview's usage figures over 30 UTC days, fast with millions of records.

Two parts, added together:

- **closed days** (listed in ``usage_rollup_days``): per day and model from the small
  ``usage_daily_models`` table, and each account's last active day from ``usage_daily_accounts``.
  They change only when the rollup job runs, so :class:`ClosedDaysCache` keeps the last result
  until the rolled-up days or their ``rolled_at`` change (one indexed query checks that);
- **the other days** (today, normally): one pass over the raw records through the
  ``created_at`` index, grouped by day, model, channel and account, folded in Python into every
  figure the page shows (totals by day and model, calls per channel today, active accounts).

All sums are integers (nano-credits and counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.console.rollup_queries import as_day, raw_day
from tollway.store.tables import usage_daily_accounts, usage_daily_models, usage_records, usage_rollup_days
from tollway.usage.rollups import day_start, days, raw_metric

METRICS = ("calls", "failed_calls", "deduction_nano", "official_cost_nano")
Sums = dict[str, int]
U = usage_records.c


def _add(cell: Sums, values: Sequence[Any]) -> None:
    for m, v in zip(METRICS, values, strict=True):
        cell[m] = cell.get(m, 0) + int(v or 0)


@dataclass
class Figures:
    """Usage over ``since..until`` by day, by (day, model), per channel on ``until``, and each
    active account's last day with a call."""

    by_day_model: dict[tuple[date, str], Sums] = field(default_factory=dict)
    channel_today: dict[str, tuple[int, int]] = field(default_factory=dict)  # calls, failed
    last_seen: dict[str, date] = field(default_factory=dict)

    def seen(self, owner: str, day: date) -> None:
        if self.last_seen.get(owner, date.min) < day:
            self.last_seen[owner] = day

    def merged(self, other: Figures) -> Figures:
        cells = {k: dict(v) for k, v in self.by_day_model.items()}  # the cached part stays as it was
        out = Figures(cells, dict(other.channel_today), dict(self.last_seen))
        for key, cell in other.by_day_model.items():
            _add(out.by_day_model.setdefault(key, {}), [cell.get(m, 0) for m in METRICS])
        for owner, day in other.last_seen.items():
            out.seen(owner, day)
        return out

    def by_day(self) -> dict[date, Sums]:
        out: dict[date, Sums] = {}
        for (day, _m), cell in self.by_day_model.items():
            _add(out.setdefault(day, {}), [cell.get(m, 0) for m in METRICS])
        return out

    def by_model(self) -> dict[str, Sums]:
        out: dict[str, Sums] = {}
        for (_d, model), cell in self.by_day_model.items():
            _add(out.setdefault(model or "?", {}), [cell.get(m, 0) for m in METRICS])
        return out


async def closed_days(conn: AsyncConnection, rolled: Sequence[date]) -> Figures:
    fig = Figures()
    if not rolled:
        return fig
    first, last = min(rolled), max(rolled)
    M = usage_daily_models.c
    q = (
        select(M.day, M.model, *(func.sum(M[m]) for m in METRICS))
        .where(M.day >= first, M.day <= last)
        .group_by(M.day, M.model)
    )
    wanted = set(rolled)
    for r in await conn.execute(q):
        if (day := as_day(r[0])) in wanted:
            _add(fig.by_day_model.setdefault((day, str(r[1])), {}), r[2:])
    A = usage_daily_accounts.c
    # the last active day per account, among the wanted days only
    q2 = select(A.owner_id, func.max(A.day)).where(A.day >= first, A.day <= last).group_by(A.owner_id)
    if len(wanted) != (last - first).days + 1:  # a gap (a day not rolled up): look day by day
        q2 = select(A.owner_id, A.day).where(A.day.in_(sorted(wanted)))
    for owner, day in await conn.execute(q2):
        fig.seen(str(owner), as_day(day))
    return fig


async def raw_days(conn: AsyncConnection, wanted: Sequence[date], today: date) -> Figures:
    """One pass over the raw records of ``wanted`` days (through the ``created_at`` index),
    grouped by day, model, channel and account. (Two narrower passes measured slower.)"""
    fig = Figures()
    if not wanted:
        return fig
    first, last = min(wanted), max(wanted)
    single = first == last  # the usual case (today): no per-row day expression to group by
    day_col = literal(first.isoformat()) if single else raw_day(conn)
    dims = [U.model_billed, U.channel_id, U.owner_id]
    q = (
        select(day_col, *dims, *(raw_metric(m) for m in METRICS))
        .where(U.created_at >= day_start(first), U.created_at < day_start(last + timedelta(days=1)))
        .group_by(*(dims if single else [day_col, *dims]))
    )
    keep = set(wanted)
    for r in await conn.execute(q):
        day = first if single else as_day(r[0])
        if day not in keep:
            continue
        _add(fig.by_day_model.setdefault((day, str(r[1] or "")), {}), r[4:])
        fig.seen(str(r[3]), day)
        if day == today and r[2] is not None:
            calls, failed = fig.channel_today.get(str(r[2]), (0, 0))
            fig.channel_today[str(r[2])] = (calls + int(r[4]), failed + int(r[5] or 0))
    return fig


class ClosedDaysCache:
    """The closed-days part of the last overview, kept while the rollups it read are unchanged.
    One per console application (no module state)."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._value = Figures()

    async def figures(self, conn: AsyncConnection, since: date, until: date) -> tuple[Figures, list[date]]:
        R = usage_rollup_days.c
        q = select(R.day, R.rolled_at).where(R.day >= since, R.day <= until)
        rows = [(as_day(d), at) for d, at in await conn.execute(q)]
        rolled = sorted(d for d, _ in rows)
        newest: datetime | None = max((at for _, at in rows), default=None)
        key = (since, until, tuple(rolled), newest)
        if key != self._key:
            self._value = await closed_days(conn, rolled)
            self._key = key
        return self._value, [d for d in days(since, until) if d not in set(rolled)]


async def usage_figures(conn: AsyncConnection, cache: ClosedDaysCache, since: date, until: date) -> Figures:
    closed, other = await cache.figures(conn, since, until)
    return closed.merged(await raw_days(conn, other, until))
