"""The staff overview and the pages read from daily rollups, in a real Chromium: staff land on
the overview; its figures (calls, spend, errors, active accounts, revenue) equal a recount of
the usage records and orders; the channel health is the running server's; the customer's
dashboard and billing show the same numbers before and after a rollup; customers get 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from playwright.sync_api import Browser, Page
from sqlalchemy import func, select

from tollway.money import nano_to_credits
from tollway.store.tables import usage_records
from tollway.usage import rollups

from .conftest import Console, Recorder, new_page, sign_in
from .test_console import call

U = usage_records.c


def _past_record(owner: str, key: str, days_ago: int, deduction: int, status: str = "ok") -> dict[str, Any]:
    when = datetime.combine(datetime.now(UTC).date() - timedelta(days=days_ago), time(9), tzinfo=UTC)
    return {
        "trace_id": f"req_{uuid.uuid4().hex[:24]}", "created_at": when, "owner_id": owner, "key_id": key,
        "endpoint": "chat.completions", "model_requested": "gpt-4o-mini", "model_billed": "gpt-4o-mini",
        "group_name": "x1", "multiplier": "1", "stream": False, "status": status, "http_status": 200,
        "input_tokens": 10, "cache_read_tokens": 0, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
        "output_tokens": 5, "reasoning_tokens": 0, "calls": 1, "estimated": False, "price_snapshot": "{}",
        "lines": "[]", "official_cost_nano": deduction, "deduction_nano": deduction, "overrun_nano": 0,
        "hold_nano": 0, "latency_ms": 3,
    }  # fmt: skip


def _tile(page: Page, id_: str) -> str:
    return page.locator(f"#{id_}").inner_text().strip()


def _row(page: Page, id_: str) -> list[str]:
    return [c.strip() for c in page.locator(f"#{id_} td").all_inner_texts()[1:]]


def test_overview_and_rolled_up_pages(console: Console, browser: Browser, recorder: Recorder) -> None:
    prov = console.prov
    customer = console.user(credit="5")
    key = prov.create_key(customer.id, name="rollup key", group="x1")
    call(console, str(key["secret"]), 3)
    past = [
        _past_record(customer.id, str(key["id"]), d, n) for d, n in ((2, 7_000), (5, 11_000), (20, 13_000))
    ]
    past.append(_past_record(customer.id, str(key["id"]), 2, 0, status="upstream_failed"))

    async def seed() -> None:
        async with prov.engine.begin() as conn:
            await conn.execute(usage_records.insert(), past)

    prov._run(seed())

    async def recount() -> dict[str, int]:
        today = datetime.combine(datetime.now(UTC).date(), time(0), tzinfo=UTC)
        out = {}
        async with prov.engine.connect() as conn:
            for name, since in (
                ("today", today),
                ("d7", today - timedelta(days=6)),
                ("d30", today - timedelta(days=29)),
            ):
                q = select(func.coalesce(func.sum(U.deduction_nano), 0), func.count()).where(
                    U.created_at >= since
                )
                spend, calls = (await conn.execute(q)).one()
                mine = await conn.execute(q.where(U.owner_id == customer.id))
                out[name], out[f"{name}_calls"], out[f"{name}_mine"] = (
                    int(spend),
                    int(calls),
                    int(mine.one()[0]),
                )
        return out

    expected = prov._run(recount())
    assert expected["d30_mine"] > expected["d7_mine"] > expected["today_mine"] > 0

    # the customer's dashboard and billing, before and after the closed days are rolled up
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, customer)
    seen = []
    for rolled in (False, True):
        if rolled:
            prov._run(rollups.roll_up(prov.engine, grace_s=0))
        page.goto(f"{console.url}/console/")
        tiles = [_tile(page, i) for i in ("spent-today", "spent-7d", "spent-30d")]
        assert tiles == [nano_to_credits(expected[f"{w}_mine"]) for w in ("today", "d7", "d30")]
        page.goto(f"{console.url}/console/billing")
        seen.append(
            (tiles, page.locator("#billing-key").inner_text(), page.locator("#billing-day").inner_text())
        )
    assert seen[0] == seen[1]
    assert page.goto(f"{console.url}/console/staff/overview").status == 404  # type: ignore[union-attr]
    ctx.close()

    # staff land on the overview after signing in; its figures are the recount's
    ctx, page = new_page(browser, recorder)
    sign_in(page, console.url, console.user("admin"))
    assert page.url.endswith("/console/staff/overview"), page.url
    assert _row(page, "ov-calls") == [str(expected[f"{w}_calls"]) for w in ("today", "d7", "d30")]
    assert _row(page, "ov-spend") == [nano_to_credits(expected[w]) for w in ("today", "d7", "d30")]
    assert int(_row(page, "ov-failed")[1]) >= 1 and int(_row(page, "ov-accounts")[2]) >= 1
    health = page.locator("#channel-health").inner_text()
    assert "closed" in health, health  # the running server's breakers
    assert page.evaluate("typeof window.Chart") == "function"
    ctx.close()

    ctx, page = new_page(browser, recorder, lang="zh_CN")
    sign_in(page, console.url, console.user("support"))
    text = page.locator("main").inner_text()
    left = [
        m for m in ("Overview", "Active accounts", "Channel health", "Error rate", "Revenue") if m in text
    ]
    assert not left, left
    ctx.close()
