"""Daily usage rollups and retention against real SQLite and PostgreSQL: the rollup equals a
recount of the raw records and the ledger, the console's numbers are the same with and without
rollups, re-rolling is idempotent and picks up late records, retention keeps every total."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.audit import run_audit
from tollway.billing.biller import Biller, CallFacts
from tollway.billing.wallets import WalletCache
from tollway.billing.writer import SettlementWriter
from tollway.console import stats
from tollway.console.overview_data import ClosedDaysCache
from tollway.console.staff_overview import overview
from tollway.ledger import chart
from tollway.money import Ratio
from tollway.pricing.book import PriceBook
from tollway.pricing.model import Usage
from tollway.services.admin import AdminService
from tollway.store import ledger_repo
from tollway.store.secret_box import SecretBox
from tollway.store.tables import holds, ledger_transfers, usage_daily, usage_records, usage_rollup_days
from tollway.usage import rollups

NOW = datetime.combine(datetime.now(UTC).date(), time(12, 0), tzinfo=UTC)
TODAY = NOW.date()
U = usage_records.c
STATUSES = ("ok", "ok", "ok", "upstream_failed", "client_disconnected")


def at(days_ago: int, hour: int = 10) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour, 30), tzinfo=UTC)


def record(owner: str, key: str, model: str, when: datetime, n: int, status: str = "ok") -> dict[str, Any]:
    return {
        "trace_id": f"req_{uuid.uuid4().hex}",
        "created_at": when,
        "owner_id": owner,
        "key_id": key,
        "endpoint": "chat.completions",
        "model_requested": model,
        "model_billed": model,
        "group_name": "default",
        "multiplier": "1",
        "stream": False,
        "status": status,
        "http_status": 200 if status == "ok" else 502,
        "input_tokens": 100 * n,
        "cache_read_tokens": n,
        "cache_write_5m_tokens": 0,
        "cache_write_1h_tokens": 0,
        "output_tokens": 10 * n,
        "reasoning_tokens": 0,
        "calls": 1,
        "estimated": False,
        "price_snapshot": "{}",
        "lines": "[]",
        "official_cost_nano": 3_000 * n,
        "deduction_nano": 1_000 * n if status == "ok" else 0,
        "overrun_nano": 0,
        "hold_nano": 0,
        "latency_ms": 5,
    }


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncIterator[dict[str, Any]]:
    """Two accounts with real settled calls (moved back in time) plus synthetic records over
    40 days, three models, two keys, mixed statuses."""
    async with engine.begin() as conn:
        platform = await ledger_repo.ensure_platform_accounts(conn)
    writer = SettlementWriter(engine, batch_size=64, interval_ms=2)
    writer.start()
    biller = Biller(
        WalletCache(engine),
        writer,
        revenue_account_id=platform[chart.USAGE_REVENUE],
        hold_timeout_s=60,
        settlement_deadline_s=10,
    )
    admin = AdminService(engine, SecretBox("test"))
    entry = PriceBook.bundled().lookup("claude-opus-4-5", datetime.now(UTC))
    assert entry is not None
    owners = []
    for i in range(2):
        acct = await admin.create_account(f"rollup-{i}-{uuid.uuid4().hex[:6]}@example.com")
        await admin.credit(acct["id"], "100", kind="cash", reason="test funding")
        owners.append(str(acct["id"]))
    settled: list[str] = []
    for i in range(6):
        trace = f"req_settled_{i}_{uuid.uuid4().hex[:8]}"
        facts = CallFacts(
            trace, owners[i % 2], "key-real", "chat.completions", "claude-opus-4-5", "claude-opus-4-5",
            "default", Ratio.parse("0.5"), False, "127.0.0.1", datetime.now(UTC),
        )  # fmt: skip
        await biller.admit(
            facts, entry, input_upper=5000, input_expected=1000, max_output=100, spend_cap_nano=None
        )
        await biller.settle(
            facts, entry, Usage(input_tokens=1000 + i, output_tokens=50), latency_ms=5, ttft_ms=1
        )
        settled.append(trace)
    await writer.stop()
    async with engine.begin() as conn:  # history: the real calls happened on earlier days
        for i, trace in enumerate(settled):
            await conn.execute(update(usage_records).where(U.trace_id == trace).values(created_at=at(i * 3)))
            t, h = ledger_transfers.c, holds.c  # as if settled then: transfer and hold alike
            await conn.execute(
                update(ledger_transfers).where(t.trace_id == trace).values(created_at=at(i * 3))
            )
            await conn.execute(update(holds).where(h.trace_id == trace).values(created_at=at(i * 3)))
        rows = [
            record(owners[n % 2], f"key-{n % 3 % 2}", ("m-a", "m-b", "m-c")[n % 3], at(n % 40, n % 24), n + 1,
                   STATUSES[n % len(STATUSES)])
            for n in range(400)
        ]  # fmt: skip
        await conn.execute(usage_records.insert(), rows)
    yield {"engine": engine, "owners": owners, "settled": settled}


async def recount(engine: AsyncEngine) -> dict[tuple[date, str, str, str], dict[str, int]]:
    """The rollup computed naively in Python from every raw record."""
    out: dict[tuple[date, str, str, str], dict[str, int]] = {}
    async with engine.connect() as conn:
        for r in await conn.execute(select(usage_records)):
            cell = out.setdefault(
                (r.created_at.date(), r.owner_id, r.key_id, r.model_billed), dict.fromkeys(rollups.COUNTS, 0)
            )
            cell["calls"] += 1
            cell["ok_calls"] += r.status == "ok"
            cell["failed_calls"] += r.status not in ("ok", *rollups.NEUTRAL_STATUSES)
            for name in rollups.COUNTS[3:]:
                cell[name] += int(getattr(r, name))
    return out


async def stored(engine: AsyncEngine) -> dict[tuple[date, str, str, str], dict[str, int]]:
    async with engine.connect() as conn:
        return {
            (r.day, r.owner_id, r.key_id, r.model): {n: int(getattr(r, n)) for n in rollups.COUNTS}
            for r in await conn.execute(select(usage_daily))
        }


async def pages(engine: AsyncEngine, owners: list[str], cache: ClosedDaysCache | None = None) -> list[Any]:
    """Every aggregate page's numbers; the overview through ``cache`` (a long-lived one, as the
    console keeps, must give what a fresh one gives)."""
    async with engine.connect() as conn:
        out: list[Any] = [await overview(conn, TODAY, cache or ClosedDaysCache())]
        for o in owners:
            out += [
                await stats.spend_summary(conn, o, NOW),
                await stats.spend_series(conn, o, now=NOW),
                await stats.spend_breakdown(conn, o, now=NOW),
                await stats.spend_by_key(conn, o),
            ]
    return out


async def test_rollup_equals_recount_and_ledger_and_pages_agree(seeded: dict[str, Any]) -> None:
    engine, owners = seeded["engine"], seeded["owners"]
    kept = ClosedDaysCache()  # lives across the rollup, as in a running console
    before = await pages(engine, owners, kept)  # nothing rolled up: every number from raw records
    done = await rollups.roll_up(engine, now=NOW, grace_s=900)
    assert [d.day for d in done] == [TODAY - timedelta(days=n) for n in range(39, 0, -1)]
    expected = {k: v for k, v in (await recount(engine)).items() if k[0] < TODAY}
    assert await stored(engine) == expected
    assert sum(d.records for d in done) == sum(v["calls"] for v in expected.values())

    # the ledger agrees: usage transfers of the real calls = their rolled-up deductions
    async with engine.connect() as conn:
        ledger = (
            await conn.execute(
                select(func.sum(ledger_transfers.c.amount_nano)).where(
                    ledger_transfers.c.kind == "usage", ledger_transfers.c.trace_id.in_(seeded["settled"])
                )
            )
        ).scalar_one()
    real = sum(v["deduction_nano"] for (_, _, key, _), v in expected.items() if key == "key-real")
    today_real = sum(
        v["deduction_nano"]
        for (d, _, k, _), v in (await recount(engine)).items()
        if k == "key-real" and d == TODAY
    )
    assert ledger > 0 and real + today_real == ledger

    assert await pages(engine, owners) == before  # the same numbers from the rollups
    assert await pages(engine, owners, kept) == before  # the kept cache saw the rollup change


async def test_reroll_is_idempotent_and_counts_late_records(seeded: dict[str, Any]) -> None:
    engine, owners = seeded["engine"], seeded["owners"]
    await rollups.roll_up(engine, now=NOW, grace_s=900)
    first = await stored(engine)
    assert await rollups.roll_up(engine, now=NOW, grace_s=900, reroll_days=0) == []
    again = await rollups.roll_up(engine, now=NOW, grace_s=900, reroll_days=2)
    assert [d.day for d in again] == [TODAY - timedelta(days=2), TODAY - timedelta(days=1)]
    assert await stored(engine) == first

    # a record committed late into yesterday (re-rolled) and into a day 10 days ago (not)
    async with engine.begin() as conn:
        await conn.execute(usage_records.insert(), [record(owners[0], "key-0", "m-a", at(1), 7)])
        await conn.execute(usage_records.insert(), [record(owners[0], "key-0", "m-a", at(10), 5)])
    await rollups.roll_up(engine, now=NOW, grace_s=900, reroll_days=2)
    now_stored = await stored(engine)
    raw = {k: v for k, v in (await recount(engine)).items() if k[0] < TODAY}
    assert now_stored != raw  # ten days ago is outside the re-roll window
    assert {k: v for k, v in now_stored.items() if k[0] != TODAY - timedelta(days=10)} == {
        k: v for k, v in raw.items() if k[0] != TODAY - timedelta(days=10)
    }
    await rollups.roll_up(engine, now=NOW, since=TODAY - timedelta(days=10))
    assert await stored(engine) == raw

    # the grace period: just after midnight yesterday is not closed yet
    just_after = datetime.combine(TODAY, time(0, 5), tzinfo=UTC)
    assert rollups.last_closed_day(just_after, 900) == TODAY - timedelta(days=2)
    assert rollups.last_closed_day(just_after, 60) == TODAY - timedelta(days=1)


async def test_retention_keeps_totals_and_ledger(seeded: dict[str, Any]) -> None:
    engine, owners = seeded["engine"], seeded["owners"]
    await rollups.roll_up(engine, now=NOW, grace_s=900)
    before = await pages(engine, owners)
    async with engine.connect() as conn:
        transfers = (await conn.execute(select(func.count()).select_from(ledger_transfers))).scalar_one()
        raw_before = (await conn.execute(select(func.count()).select_from(usage_records))).scalar_one()
    out = await rollups.prune(engine, retention_days=7, now=NOW, batch=7)
    assert out["deleted"] > 0 and len(out["days"]) == 39 - 8 + 1  # days 8..39 ago
    async with engine.connect() as conn:
        oldest = (await conn.execute(select(func.min(U.created_at)))).scalar_one()
        assert oldest.date() >= TODAY - timedelta(days=7)
        left = (await conn.execute(select(func.count()).select_from(usage_records))).scalar_one()
        assert left == raw_before - out["deleted"]
        assert (
            await conn.execute(select(func.count()).select_from(ledger_transfers))
        ).scalar_one() == transfers
        pruned = (
            await conn.execute(select(func.count()).select_from(usage_rollup_days).where(
                usage_rollup_days.c.pruned_at.is_not(None)))
        ).scalar_one()  # fmt: skip
        assert pruned == len(out["days"])
    assert await pages(engine, owners) == before  # charts and totals from the rollups
    # a pruned day is never rolled up again (it would come out empty)
    again = await rollups.roll_up(engine, now=NOW, since=TODAY - timedelta(days=30))
    assert {d.day for d in again} == {TODAY - timedelta(days=n) for n in range(1, 8)}
    forced = await rollups.roll_up(engine, now=NOW, only=[TODAY - timedelta(days=9)])
    assert [d.skipped for d in forced] == ["pruned"]
    assert await pages(engine, owners) == before
    # the audit still pairs every usage transfer and settled hold with a record, except those
    # of pruned days (the synthetic records have no transfers: only that finding is left)
    codes = {f.code for f in (await run_audit(engine)).findings}
    assert codes <= {"usage_without_transfer"}, codes
