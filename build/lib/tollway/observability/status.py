"""The public status page: per model, availability over the last 24 hours and serving capacity now.

``GET /status`` (HTML, server-rendered, no outside assets) and ``GET /status.json``. Public:
it names models only — never a channel, a base URL or a credential.

- History: one query over ``usage_records`` (index ``ix_usage_created``) grouped by model and
  UTC hour; a call succeeded when its status is ``ok``; ``client_disconnected`` (the client
  left) and ``upstream_rejected`` (the client's own 4xx, passed through) do not count against
  availability; every other status (``upstream_failed``, ``upstream_cut``, ...) is a failure.
  The aggregation is cached ``ttl_s`` seconds (30) so a scraped page cannot load the database.
- Now: from the in-process channel health: ``operational`` if a channel serving the model has
  its breaker closed, ``degraded`` if only half-open or open ones, ``down`` if none.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.catalog.model import Channel
from tollway.relay.asgi import Send
from tollway.routing.breaker import BreakerState
from tollway.routing.health import ChannelHealth
from tollway.store.tables import usage_records

log = logging.getLogger("tollway.status")

STATUS_PATHS = ("/status", "/status.json")
WINDOW_HOURS = 24
NEUTRAL_STATUSES = ("client_disconnected", "upstream_rejected")
_CSS_PATH = Path(__file__).resolve().parent.parent / "console" / "static" / "console.css"
_EXTRA_CSS = (
    ".bars{display:grid;grid-template-columns:repeat(24,1fr);gap:2px;min-width:240px}"
    ".bars i{display:block;height:1.6rem;border-radius:2px;background:#e4e7ec}"
    ".bars i.g{background:#12b76a}.bars i.w{background:#f79009}.bars i.b{background:#d92d20}"
    ".state-operational{color:var(--good);font-weight:600}.state-degraded{color:var(--warn);"
    "font-weight:600}.state-down{color:var(--bad);font-weight:600}"
)


def hour_key(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H")


def model_state(channels: Sequence[Channel], health: ChannelHealth) -> str:
    states = {health.state(x) for c in channels if c.enabled for x in c.credentials()}
    if BreakerState.CLOSED in states:
        return "operational"
    if states & {BreakerState.HALF_OPEN, BreakerState.OPEN}:
        return "degraded"
    return "down"


@dataclass
class _Cache:
    at: float = -1e18
    rows: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    ok: bool = False


class StatusPage:
    def __init__(
        self,
        engine: AsyncEngine,
        health: ChannelHealth,
        channels: Callable[[], Sequence[Channel]],
        *,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.health = health
        self.channels = channels
        self.ttl_s = ttl_s
        self.clock = clock
        self.queries = 0  # aggregation queries run (tests check the cache with it)
        self._cache = _Cache()
        self._lock = asyncio.Lock()

    async def _history(self, since: datetime) -> tuple[dict[tuple[str, str], tuple[int, int]], bool]:
        """{(model, hour key): (counted calls, successes)}, cached ``ttl_s``; stale on error."""
        if self.clock() - self._cache.at < self.ttl_s:
            return self._cache.rows, self._cache.ok
        async with self._lock:  # one query at a time, whatever the number of scrapers
            if self.clock() - self._cache.at < self.ttl_s:
                return self._cache.rows, self._cache.ok
            try:
                rows = await self._query(since)
                self._cache = _Cache(self.clock(), rows, True)
            except Exception:
                log.warning("status page: usage aggregation failed", exc_info=True)
                # keep what we had, retry after a short pause rather than on every scrape
                self._cache = _Cache(self.clock() - self.ttl_s + 5.0, self._cache.rows, False)
            return self._cache.rows, self._cache.ok

    async def _query(self, since: datetime) -> dict[tuple[str, str], tuple[int, int]]:
        u = usage_records.c
        async with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                hour = func.strftime(literal_column("'%Y-%m-%d %H'"), u.created_at)
            else:  # literals, not bind parameters: GROUP BY must repeat the exact expression
                hour = func.to_char(
                    func.timezone(literal_column("'UTC'"), u.created_at), literal_column("'YYYY-MM-DD HH24'")
                )
            counted = func.sum(case((u.status.in_(NEUTRAL_STATUSES), 0), else_=1))
            ok = func.sum(case((u.status == "ok", 1), else_=0))
            stmt = (
                select(u.model_requested, hour.label("hour"), counted, ok)
                .where(u.created_at >= since)
                .group_by(u.model_requested, hour)
            )
            self.queries += 1
            result = await conn.execute(stmt)
            return {(str(m), str(h)): (int(c or 0), int(k or 0)) for m, h, c, k in result.all()}

    async def document(self) -> dict[str, Any]:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        hours = [now - timedelta(hours=WINDOW_HOURS - 1 - i) for i in range(WINDOW_HOURS)]
        rows, fresh = await self._history(hours[0])
        serving: dict[str, list[Channel]] = {}
        for c in self.channels():
            if not c.enabled:
                continue
            for m in c.models:
                serving.setdefault(m, []).append(c)
        models = []
        for model in sorted(serving):
            series = []
            total = good = 0
            for h in hours:
                calls, ok = rows.get((model, hour_key(h)), (0, 0))
                total += calls
                good += ok
                series.append(
                    {
                        "hour": h.strftime("%Y-%m-%dT%H:00:00Z"),
                        "calls": calls,
                        "ok": ok,
                        "availability": round(ok / calls, 4) if calls else None,
                    }
                )
            models.append(
                {
                    "model": model,
                    "state": model_state(serving[model], self.health),
                    "calls_24h": total,
                    "availability_24h": round(good / total, 4) if total else None,
                    "hours": series,
                }
            )
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "window_hours": WINDOW_HOURS,
            "history_available": fresh,
            "models": models,
        }

    async def serve(self, path: str, send: Send) -> None:
        doc = await self.document()
        if path.endswith(".json"):
            body, ctype = orjson.dumps(doc), b"application/json"
        else:
            body, ctype = render_html(doc).encode(), b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", ctype),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"public, max-age=30"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _css() -> str:
    try:
        return _CSS_PATH.read_text(encoding="utf-8") + _EXTRA_CSS
    except OSError:
        return _EXTRA_CSS


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def _bar(h: dict[str, Any]) -> str:
    a = h["availability"]
    cls = "" if a is None else "g" if a >= 0.99 else "w" if a >= 0.9 else "b"
    tip = f"{h['hour'][:13].replace('T', ' ')}:00 UTC — {h['calls']} calls, {_pct(a)} ok"
    return f'<i class="{cls}" title="{html.escape(tip)}"></i>'


def render_html(doc: dict[str, Any]) -> str:
    e = html.escape
    rows = []
    for m in doc["models"]:
        bars = "".join(_bar(h) for h in m["hours"])
        rows.append(
            f"<tr><td class=mono>{e(m['model'])}</td>"
            f'<td class="state-{e(m["state"])}">{e(m["state"])}</td>'
            f"<td class=num>{_pct(m['availability_24h'])}</td>"
            f"<td class=num>{m['calls_24h']}</td>"
            f'<td><div class="bars" aria-label="last 24 hours, oldest first">{bars}</div></td></tr>'
        )
    states = [m["state"] for m in doc["models"]]
    overall = (
        "All systems operational"
        if states and all(s == "operational" for s in states)
        else "Some models are degraded or down"
        if states
        else "No models are configured"
    )
    stale = "" if doc["history_available"] else '<p class="warn">History is temporarily unavailable.</p>'
    body = "".join(rows) or '<tr class="muted"><td colspan=5>Nothing to show.</td></tr>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="60"><title>Tollway status</title>'
        f"<style>{_css()}</style></head><body>"
        '<header class="top"><span class="brand">Tollway status</span></header><main>'
        f"<h1>{e(overall)}</h1>{stale}"
        f'<p class="note">Availability per model over the last {doc["window_hours"]} hours (UTC, '
        "oldest first): the share of calls that succeeded, not counting calls the client "
        "abandoned or its own invalid requests. Updated every 30 seconds; generated "
        f'{e(doc["generated_at"])}. Also as <a href="/status.json">JSON</a>.</p>'
        '<div class="scroll"><table><thead><tr><th>Model</th><th>Now</th><th>24 h</th>'
        f"<th>Calls</th><th>Hourly</th></tr></thead><tbody>{body}</tbody></table></div>"
        "</main></body></html>"
    )
