"""Biller + writer + ledger + audit against real SQLite and PostgreSQL (nothing mocked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.audit import run_audit
from tollway.billing.biller import Biller, CallFacts
from tollway.billing.wallets import WalletCache
from tollway.billing.writer import SettlementWriter
from tollway.errors import InsufficientBalance
from tollway.ledger import chart
from tollway.money import Ratio
from tollway.pricing.book import PriceBook
from tollway.pricing.model import PriceEntry, Usage
from tollway.services.admin import AdminService
from tollway.store import ledger_repo
from tollway.store.batch_store import BatchRefused
from tollway.store.secret_box import SecretBox
from tollway.store.tables import holds, ledger_accounts, usage_records


@dataclass
class Rig:
    engine: AsyncEngine
    admin: AdminService
    biller: Biller
    writer: SettlementWriter
    entry: PriceEntry


@pytest.fixture
async def rig(engine: AsyncEngine) -> AsyncIterator[Rig]:
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
    entry = PriceBook.bundled().lookup("claude-opus-4-5", datetime.now(UTC))
    assert entry is not None
    yield Rig(engine, AdminService(engine, SecretBox("test")), biller, writer, entry)
    await writer.stop()


async def _account(rig: Rig, credits: str) -> str:
    acct = await rig.admin.create_account(f"{datetime.now(UTC).timestamp()}-{id(rig)}@example.com")
    if credits != "0":
        await rig.admin.credit(acct["id"], credits, kind="cash", reason="test funding")
    return str(acct["id"])


def _facts(owner: str, trace: str, mult: str = "1") -> CallFacts:
    return CallFacts(
        trace,
        owner,
        "key-1",
        "chat.completions",
        "claude-opus-4-5",
        "claude-opus-4-5",
        "default",
        Ratio.parse(mult),
        False,
        "127.0.0.1",
        datetime.now(UTC),
    )


async def test_worked_opus_cases_settle_exactly(rig: Rig) -> None:
    owner = await _account(rig, "10")
    cases = [
        (Usage(input_tokens=110_000), 550_000_000),
        (
            Usage(input_tokens=10_000, cache_write_5m_tokens=100_000, output_tokens=2_000),
            725_000_000,
        ),
        (Usage(input_tokens=10_000, cache_read_tokens=100_000, output_tokens=2_000), 150_000_000),
    ]
    for i, (usage, expected) in enumerate(cases):
        facts = _facts(owner, f"trace-opus-{i}")
        await rig.biller.admit(
            facts,
            rig.entry,
            input_upper=200_000,
            input_expected=110_000,
            max_output=2_000,
            spend_cap_nano=None,
        )
        charge = await rig.biller.settle(facts, rig.entry, usage, latency_ms=5, ttft_ms=3)
        assert charge.deduction_nano == expected
    balance = await rig.admin.balance(owner)
    assert balance["cash_nano"] == 10_000_000_000 - 550_000_000 - 725_000_000 - 150_000_000
    assert balance["held_nano"] == 0
    assert (await run_audit(rig.engine)).ok


async def test_multiplier_applies_once(rig: Rig) -> None:
    owner = await _account(rig, "1")
    facts = _facts(owner, "trace-mult", mult="0.3")
    # 100,000 input tokens of Opus 4.5 = $0.50 official; at 0.3x = 0.15 credits
    await rig.biller.admit(
        facts,
        rig.entry,
        input_upper=100_000,
        input_expected=100_000,
        max_output=1,
        spend_cap_nano=None,
    )
    charge = await rig.biller.settle(facts, rig.entry, Usage(input_tokens=100_000), latency_ms=1, ttft_ms=1)
    assert charge.official_cost_nano == 500_000_000
    assert charge.deduction_nano == 150_000_000
    assert (await rig.admin.balance(owner))["cash_nano"] == 850_000_000


async def test_concurrent_admission_never_overdraws(rig: Rig) -> None:
    # Each call may cost at most 1,000 output tokens x $25/MTok = 0.025 credits; fund 50 of them.
    owner = await _account(rig, "1.25")

    async def one(i: int) -> bool:
        facts = _facts(owner, f"trace-c-{i}")
        try:
            await rig.biller.admit(
                facts,
                rig.entry,
                input_upper=0,
                input_expected=0,
                max_output=1_000,
                spend_cap_nano=None,
            )
        except InsufficientBalance:
            return False
        await asyncio.sleep(0.001)
        await rig.biller.settle(facts, rig.entry, Usage(output_tokens=1_000), latency_ms=1, ttft_ms=1)
        return True

    results = await asyncio.gather(*(one(i) for i in range(500)))
    assert sum(results) >= 50
    balance = await rig.admin.balance(owner)
    assert balance["cash_nano"] >= 0
    assert balance["cash_nano"] == 1_250_000_000 - sum(results) * 25_000_000
    report = await run_audit(rig.engine)
    assert report.ok, report.findings


async def test_vouchers_spend_first_soonest_expiry_first(rig: Rig) -> None:
    owner = await _account(rig, "1")
    late = datetime(2099, 1, 1, tzinfo=UTC)
    soon = datetime(2098, 1, 1, tzinfo=UTC)
    await rig.admin.credit(owner, "0.2", kind="voucher", reason="late", expires=late)
    await rig.admin.credit(owner, "0.1", kind="voucher", reason="soon", expires=soon)
    facts = _facts(owner, "trace-v")
    await rig.biller.admit(
        facts, rig.entry, input_upper=0, input_expected=0, max_output=10_000, spend_cap_nano=None
    )
    # 10,000 output tokens = 0.25 credits: 0.1 from the soon voucher, 0.15 from the late one.
    await rig.biller.settle(facts, rig.entry, Usage(output_tokens=10_000), latency_ms=1, ttft_ms=1)
    balance = await rig.admin.balance(owner)
    remaining = {v["expires_at"][:4]: v["remaining_nano"] for v in balance["vouchers"]}
    assert remaining == {"2098": 0, "2099": 50_000_000}
    assert balance["cash_nano"] == 1_000_000_000


async def test_overrun_is_bounded_posted_and_reported(rig: Rig) -> None:
    owner = await _account(rig, "0.02")
    facts = _facts(owner, "trace-over")
    # worst case 0.07 (10,000 input bytes + 800 output tokens), expected 0.02 fits: hold it all.
    hold = await rig.biller.admit(
        facts, rig.entry, input_upper=10_000, input_expected=0, max_output=800, spend_cap_nano=None
    )
    assert hold.amount_nano == 20_000_000
    await rig.biller.settle(
        facts, rig.entry, Usage(input_tokens=1_000, output_tokens=800), latency_ms=1, ttft_ms=1
    )
    balance = await rig.admin.balance(owner)
    assert balance["cash_nano"] == -5_000_000
    report = await run_audit(rig.engine)
    assert report.ok, report.findings
    assert report.overruns == [
        {"account_id": owner, "overrun_nano": 5_000_000, "overrun": "0.005", "calls": 1}
    ]


async def test_insufficient_balance_names_affordable_tokens(rig: Rig) -> None:
    owner = await _account(rig, "0.01")
    with pytest.raises(InsufficientBalance) as info:
        await rig.biller.admit(
            _facts(owner, "trace-402"),
            rig.entry,
            input_upper=10_000,
            input_expected=10_000,
            max_output=10_000,
            spend_cap_nano=None,
        )
    # 0.01 credits - 10,000 input x $5/MTok (0.05) is already short: 0 output tokens affordable.
    assert info.value.affordable_output_tokens == 0
    assert "0.01" in info.value.message


async def test_void_charges_nothing_and_records_failure(rig: Rig) -> None:
    owner = await _account(rig, "1")
    facts = _facts(owner, "trace-void")
    await rig.biller.admit(
        facts, rig.entry, input_upper=10, input_expected=10, max_output=10, spend_cap_nano=None
    )
    rig.biller.void(
        facts,
        rig.entry,
        status="upstream_failed",
        http_status=502,
        error_code="upstream_error",
        latency_ms=3,
    )
    await rig.writer.flush()
    async with rig.engine.connect() as conn:
        state = (
            await conn.execute(select(holds.c.state).where(holds.c.trace_id == "trace-void"))
        ).scalar_one()
        rec = (
            await conn.execute(select(usage_records).where(usage_records.c.trace_id == "trace-void"))
        ).one()
    assert state == "voided"
    assert rec.deduction_nano == 0 and rec.status == "upstream_failed"
    assert (await rig.admin.balance(owner))["cash_nano"] == 1_000_000_000
    assert (await run_audit(rig.engine)).ok


async def test_settle_twice_charges_once(rig: Rig) -> None:
    owner = await _account(rig, "1")
    facts = _facts(owner, "trace-twice")
    await rig.biller.admit(
        facts, rig.entry, input_upper=0, input_expected=0, max_output=100, spend_cap_nano=None
    )
    await rig.biller.settle(facts, rig.entry, Usage(output_tokens=100), latency_ms=1, ttft_ms=1)
    with pytest.raises(BatchRefused):  # the usage record's primary key refuses a second record
        await rig.biller.settle(facts, rig.entry, Usage(output_tokens=100), latency_ms=1, ttft_ms=1)
    async with rig.engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM ledger_transfers WHERE kind = 'usage'"))
        ).scalar_one()
    assert n == 1


@pytest.mark.parametrize(
    ("corruption", "code"),
    [
        ("balance", "balance_mismatch"),
        ("entry", "transfer_unbalanced"),
        ("hold", "hold_not_ended"),
        ("record", "transfer_without_usage"),
        ("orphan_record", "usage_without_transfer"),
        ("voucher", "voucher_negative"),
    ],
)
async def test_audit_finds_each_corruption(rig: Rig, corruption: str, code: str) -> None:
    owner = await _account(rig, "1")
    facts = _facts(owner, "trace-a")
    await rig.biller.admit(
        facts, rig.entry, input_upper=0, input_expected=0, max_output=100, spend_cap_nano=None
    )
    await rig.biller.settle(facts, rig.entry, Usage(output_tokens=100), latency_ms=1, ttft_ms=1)
    assert (await run_audit(rig.engine)).ok
    async with rig.engine.begin() as conn:
        if corruption == "balance":
            await conn.execute(
                update(ledger_accounts)
                .where(ledger_accounts.c.owner_id == owner)
                .values(balance_nano=ledger_accounts.c.balance_nano + 1)
            )
        elif corruption == "entry":
            await conn.execute(
                text(
                    "UPDATE ledger_entries SET amount_nano = amount_nano + 7 WHERE id = "
                    "(SELECT max(id) FROM ledger_entries)"
                )
            )
        elif corruption == "hold":
            await conn.execute(
                holds.insert().values(
                    trace_id="stale",
                    owner_id=owner,
                    key_id="k",
                    amount_nano=5,
                    state="active",
                    created_at=datetime(2020, 1, 1, tzinfo=UTC),
                    expires_at=datetime(2020, 1, 1, 0, 15, tzinfo=UTC),
                )
            )
        elif corruption == "record":
            await conn.execute(usage_records.delete().where(usage_records.c.trace_id == "trace-a"))
        elif corruption == "orphan_record":
            await conn.execute(
                text(
                    "DELETE FROM ledger_entries WHERE transfer_id IN "
                    "(SELECT id FROM ledger_transfers WHERE kind = 'usage')"
                )
            )
            await conn.execute(text("DELETE FROM ledger_transfers WHERE kind = 'usage'"))
        elif corruption == "voucher":
            vid = await ledger_repo.get_or_create_account(
                conn,
                chart.voucher_code(owner, "g"),
                chart.AccountKind.CUSTOMER_VOUCHER,
                owner_id=owner,
            )
            from tollway.ledger.transfer import Leg, Transfer

            cash = await ledger_repo.get_or_create_account(
                conn, chart.cash_code(owner), chart.AccountKind.CUSTOMER_CASH, owner_id=owner
            )
            await ledger_repo.post_transfers(
                conn, [Transfer("bad", "correction", (Leg(vid, -5), Leg(cash, 5)))]
            )
    report = await run_audit(rig.engine)
    assert not report.ok
    assert code in {f.code for f in report.findings}, report.findings


async def test_hold_openings_are_written_lazily_and_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        platform = await ledger_repo.ensure_platform_accounts(conn)
    writer = SettlementWriter(engine, batch_size=64, interval_ms=0, hold_persist_delay_s=0.2)
    writer.start()
    biller = Biller(
        WalletCache(engine),
        writer,
        revenue_account_id=platform[chart.USAGE_REVENUE],
        hold_timeout_s=60,
        settlement_deadline_s=10,
    )
    entry = PriceBook.bundled().lookup("claude-opus-4-5", datetime.now(UTC))
    assert entry is not None
    admin = AdminService(engine, SecretBox("test"))
    owner = str((await admin.create_account("lazy@example.com"))["id"])
    await admin.credit(owner, "1", kind="cash", reason="t")

    async def state(trace: str) -> str | None:
        async with engine.connect() as conn:
            return (await conn.execute(select(holds.c.state).where(holds.c.trace_id == trace))).scalar()

    try:
        short, long = _facts(owner, "short"), _facts(owner, "long")
        for facts in (short, long):
            await biller.admit(
                facts, entry, input_upper=0, input_expected=0, max_output=10, spend_cap_nano=None
            )
        await biller.settle(short, entry, Usage(output_tokens=10), latency_ms=1, ttft_ms=1)
        assert await state("short") == "settled"  # written once, in its final state
        assert await state("long") is None  # not yet due
        deadline = asyncio.get_running_loop().time() + 5
        while await state("long") != "active":
            assert asyncio.get_running_loop().time() < deadline, "a long hold was never written as active"
            await asyncio.sleep(0.05)
        await biller.settle(long, entry, Usage(output_tokens=10), latency_ms=1, ttft_ms=1)
        assert await state("long") == "settled"
        assert (await run_audit(engine)).ok
    finally:
        await writer.stop()
