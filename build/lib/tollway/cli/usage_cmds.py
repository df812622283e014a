"""``tollway usage rollup|prune``: the usage background job's two steps, by hand.

``rollup`` with no option does what the server's job does (every closed day not rolled up
yet, and the last ``TOLLWAY_USAGE_ROLLUP_REROLL_DAYS`` again); ``--day`` recomputes one
closed day, ``--since`` every closed day from that one. ``prune`` applies
``TOLLWAY_USAGE_RETENTION_DAYS`` (or ``--days``) to the raw usage records of rolled-up days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tollway.cli.options import JsonFlag
from tollway.cli.runtime import run_engine
from tollway.errors import InvalidRequest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tollway.settings import Settings

app = typer.Typer(help="Daily usage rollups and retention.", no_args_is_help=True)

DayOpt = Annotated[str | None, typer.Option("--day", help="Recompute this closed UTC day (YYYY-MM-DD).")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Recompute every closed UTC day from this one (YYYY-MM-DD).")
]


def _day(text: str, param: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidRequest(f"{param}: {text!r} is not a date (YYYY-MM-DD)", param=param) from exc


@app.command("rollup")
def rollup(day: DayOpt = None, since: SinceOpt = None, json_out: JsonFlag = False) -> None:
    """Roll up closed UTC days into usage_daily (idempotent: a day is replaced in one transaction)."""
    if day and since:
        raise typer.BadParameter("give --day or --since, not both")

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from tollway.usage import rollups

        now = datetime.now(UTC)
        last = rollups.last_closed_day(now, settings.usage_rollup_grace_s)
        only = None
        first = None
        if day:
            only = [_day(day, "day")]
        if since:
            first = _day(since, "since")
        for d in (only or []) + ([first] if first else []):
            if d > last:
                raise InvalidRequest(
                    f"{d.isoformat()} is not closed yet: the last closed UTC day is {last.isoformat()} "
                    f"(TOLLWAY_USAGE_ROLLUP_GRACE_S={settings.usage_rollup_grace_s:g})",
                    param="day" if day else "since",
                )
        done = await rollups.roll_up(
            engine,
            now=now,
            grace_s=settings.usage_rollup_grace_s,
            reroll_days=settings.usage_rollup_reroll_days,
            since=first,
            only=only,
        )
        return {"last_closed_day": last.isoformat(), "rolled_up": [d.json() for d in done]}

    def render(console: Console, doc: Any) -> None:
        for d in doc["rolled_up"]:
            extra = f" (skipped: {d['skipped']})" if d.get("skipped") else ""
            console.print(f"{d['day']}: {d['records']} records in {d['rows']} rows{extra}")
        console.print(f"{len(doc['rolled_up'])} day(s) rolled up; last closed day {doc['last_closed_day']}")

    run_engine(json_out, action, render)


@app.command("prune")
def prune(
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="Keep this many days (default: TOLLWAY_USAGE_RETENTION_DAYS)."),
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Delete raw usage records older than the retention, only for rolled-up days (in batches)."""

    async def action(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
        from tollway.usage import rollups

        keep = days if days is not None else settings.usage_retention_days
        out = await rollups.prune(engine, retention_days=keep, batch=settings.usage_retention_batch)
        return {"retention_days": keep, **out}

    def render(console: Console, doc: Any) -> None:
        if not doc["retention_days"]:
            console.print("retention is off (TOLLWAY_USAGE_RETENTION_DAYS=0): nothing deleted")
            return
        console.print(f"deleted {doc['deleted']} usage record(s) of {len(doc['days'])} day(s)")

    run_engine(json_out, action, render)
