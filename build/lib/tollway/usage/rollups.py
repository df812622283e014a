"""Daily rollups of ``usage_records`` into ``usage_daily`` (one row per UTC day, account, key
and model; integer counts, token sums and nano-credits).

Nothing here runs on the settlement path: a background job (:mod:`.jobs`) and
``tollway usage rollup`` roll up **closed** days only. A day is closed ``grace_s`` seconds after
its UTC midnight end, so settlements committed just after midnight still land in it. Rolling up
a day is idempotent: its rows are deleted and recomputed from the raw records in one
transaction, and the day is listed in ``usage_rollup_days``.

Late records: every run re-rolls the last ``reroll_days`` closed days as well as every day
not rolled up yet, so a record committed after its day was rolled up is counted at the next
run (within that window). A day whose raw records retention deleted (``pruned_at``) is never
rolled up again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from tollway.store.tables import (
    usage_daily,
    usage_daily_accounts,
    usage_daily_models,
    usage_records,
    usage_rollup_days,
)

U = usage_records.c
D = usage_daily.c
R = usage_rollup_days.c
M = usage_daily_models.c
A = usage_daily_accounts.c
# Statuses that say nothing about the service: the client left, or its own 4xx was passed
# through. Every other status but "ok" is a failure (the status page's rule, observability/status).
NEUTRAL_STATUSES = ("client_disconnected", "upstream_rejected")
COUNTS = (
    "calls",
    "ok_calls",
    "failed_calls",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "official_cost_nano",
    "deduction_nano",
)


def raw_metric(name: str) -> ColumnElement[Any]:
    """The aggregate over raw usage records that ``usage_daily.<name>`` holds."""
    if name == "calls":
        return func.count()
    if name == "ok_calls":
        return func.coalesce(func.sum(case((U.status == "ok", 1), else_=0)), 0)
    if name == "failed_calls":
        failed = case((U.status == "ok", 0), (U.status.in_(NEUTRAL_STATUSES), 0), else_=1)
        return func.coalesce(func.sum(failed), 0)
    return func.coalesce(func.sum(U[name]), 0)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def last_closed_day(now: datetime, grace_s: float) -> date:
    """The latest UTC day that ended at least ``grace_s`` seconds before ``now``."""
    return (now.astimezone(UTC) - timedelta(seconds=grace_s)).date() - timedelta(days=1)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class DayRollup:
    day: date
    records: int  # raw records counted
    rows: int  # usage_daily rows written
    skipped: str = ""  # why nothing was done ("pruned")

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"day": self.day.isoformat(), "records": self.records, "rows": self.rows}
        if self.skipped:
            doc["skipped"] = self.skipped
        return doc


async def roll_up_day(engine: AsyncEngine, day: date, *, now: datetime | None = None) -> DayRollup:
    """Recompute ``day`` from the raw records, replacing its rows, in one transaction."""
    now = now or datetime.now(UTC)
    start, end = day_start(day), day_start(day + timedelta(days=1))
    async with engine.begin() as conn:
        state = (await conn.execute(select(R.pruned_at).where(R.day == day))).first()
        if state is not None and state.pruned_at is not None:
            return DayRollup(day, 0, 0, skipped="pruned")
        await conn.execute(delete(usage_daily).where(D.day == day))
        source = (
            select(
                literal(day, usage_daily.c.day.type),
                U.owner_id,
                U.key_id,
                U.model_billed,
                *(raw_metric(n) for n in COUNTS),
            )
            .where(U.created_at >= start, U.created_at < end)
            .group_by(U.owner_id, U.key_id, U.model_billed)
        )
        cols = ["day", "owner_id", "key_id", "model", *COUNTS]
        await conn.execute(insert(usage_daily).from_select(cols, source))
        totals = (
            await conn.execute(select(func.count(), func.coalesce(func.sum(D.calls), 0)).where(D.day == day))
        ).one()
        rows, records = int(totals[0]), int(totals[1])
        # the summaries over every account, from the rows just written
        await conn.execute(delete(usage_daily_models).where(M.day == day))
        await conn.execute(delete(usage_daily_accounts).where(A.day == day))
        by_model = select(D.day, D.model, *(func.sum(D[n]) for n in COUNTS)).where(D.day == day)
        await conn.execute(
            insert(usage_daily_models).from_select(
                ["day", "model", *COUNTS], by_model.group_by(D.day, D.model)
            )
        )
        by_owner = select(D.day, D.owner_id, func.sum(D.calls)).where(D.day == day)
        await conn.execute(
            insert(usage_daily_accounts).from_select(
                ["day", "owner_id", "calls"], by_owner.group_by(D.day, D.owner_id)
            )
        )
        await conn.execute(delete(usage_rollup_days).where(R.day == day))
        await conn.execute(insert(usage_rollup_days).values(day=day, rolled_at=now, records=records))
    return DayRollup(day, records, rows)


async def rolled_days(
    conn: AsyncConnection, first: date | None = None, last: date | None = None
) -> dict[date, bool]:
    """Rolled-up days (in ``[first, last]`` when given) -> whether retention pruned them."""
    q = select(R.day, R.pruned_at)
    if first is not None:
        q = q.where(R.day >= first)
    if last is not None:
        q = q.where(R.day <= last)
    return {r.day: r.pruned_at is not None for r in await conn.execute(q)}


async def first_raw_day(conn: AsyncConnection) -> date | None:
    at = (await conn.execute(select(U.created_at).order_by(U.created_at).limit(1))).scalar_one_or_none()
    return None if at is None else at.date()


async def days_to_roll(
    engine: AsyncEngine, *, now: datetime, grace_s: float, reroll_days: int, since: date | None = None
) -> list[date]:
    """Every closed day not rolled up yet (from the first raw record, or ``since``), plus the
    last ``reroll_days`` closed days again; never a pruned day."""
    last = last_closed_day(now, grace_s)
    async with engine.connect() as conn:
        done = await rolled_days(conn)
        first = since or await first_raw_day(conn)
    if first is None or first > last:
        return []
    recent = last - timedelta(days=max(reroll_days, 0))
    return [
        d
        for d in days(first, last)
        if not done.get(d, False) and (d not in done or d > recent or since is not None)
    ]


async def roll_up(
    engine: AsyncEngine,
    *,
    now: datetime | None = None,
    grace_s: float = 900.0,
    reroll_days: int = 2,
    since: date | None = None,
    only: Iterable[date] | None = None,
) -> list[DayRollup]:
    """Roll up what :func:`days_to_roll` names (or exactly the days in ``only``), a day per
    transaction. Days that are not closed yet are refused by the caller (:func:`last_closed_day`)."""
    now = now or datetime.now(UTC)
    todo = (
        sorted(set(only))
        if only is not None
        else await days_to_roll(engine, now=now, grace_s=grace_s, reroll_days=reroll_days, since=since)
    )
    return [await roll_up_day(engine, d, now=now) for d in todo]


async def prune(
    engine: AsyncEngine, *, retention_days: int, now: datetime | None = None, batch: int = 5000
) -> dict[str, Any]:
    """Delete raw usage records older than ``retention_days`` days, only for days already rolled
    up, in batches of ``batch`` (a transaction each). Each day is rolled up once more just
    before, so its rollup is the final count. Ledger transfers are never touched."""
    if retention_days <= 0:
        return {"deleted": 0, "days": []}
    now = now or datetime.now(UTC)
    cutoff = now.astimezone(UTC).date() - timedelta(days=retention_days)
    async with engine.connect() as conn:
        done = await rolled_days(conn, last=cutoff - timedelta(days=1))
    deleted, pruned = 0, []
    for day in sorted(d for d, was_pruned in done.items() if not was_pruned):
        await roll_up_day(engine, day, now=now)
        start, end = day_start(day), day_start(day + timedelta(days=1))
        while True:
            async with engine.begin() as conn:
                ids = select(U.trace_id).where(U.created_at >= start, U.created_at < end).limit(batch)
                n = (
                    await conn.execute(delete(usage_records).where(U.trace_id.in_(ids.scalar_subquery())))
                ).rowcount
            deleted += int(n or 0)
            if not n or n < batch:
                break
        async with engine.begin() as conn:
            await conn.execute(update(usage_rollup_days).where(R.day == day).values(pruned_at=now))
        pruned.append(day.isoformat())
    return {"deleted": deleted, "days": pruned}


async def pruned_until(conn: AsyncConnection) -> datetime | None:
    """The end of the last day whose raw records retention deleted (None: nothing pruned)."""
    day = (await conn.execute(select(func.max(R.day)).where(R.pruned_at.is_not(None)))).scalar_one_or_none()
    if day is None:
        return None
    return day_start((day if isinstance(day, date) else date.fromisoformat(str(day))) + timedelta(days=1))
