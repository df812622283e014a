"""``tollway audit``: recompute every balance from the transfers and check the invariants of
DESIGN.md §4. Reads only; never trusts a cached column to check itself.

Checks (each finding names its code):
- ``transfer_unbalanced``: a transfer whose entries do not sum to zero;
- ``ledger_not_zero``: all entries together do not sum to zero;
- ``transfer_amount_mismatch``: a transfer's amount differs from the sum of its positive legs;
- ``balance_mismatch``: a cached balance differs from the sum of its account's entries;
- ``voucher_negative``: a voucher grant recomputes below zero;
- ``cash_negative_unexplained``: a customer's cash is below zero by more than its recorded overruns;
- ``hold_not_ended``: an active hold past its timeout; ``hold_end_incomplete``: an ended hold
  without its end time;
- ``usage_without_transfer`` / ``transfer_without_usage`` / ``usage_amount_mismatch``: a charged
  call and its usage record do not match one-to-one;
- ``settled_hold_without_record`` / ``settled_amount_mismatch``: a settled hold and its record
  disagree.
- payments (orders credited exactly once, refunds posted once, codes redeemed once): see
  :mod:`tollway.payments.audit_checks`.
Overruns (bounded, allowed) are listed, not counted as violations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from tollway.ledger.chart import AccountKind, TransferKind
from tollway.money import nano_to_credits
from tollway.payments.audit_checks import check_payments
from tollway.store.tables import (
    holds,
    ledger_accounts,
    ledger_entries,
    ledger_transfers,
    usage_records,
)
from tollway.usage.rollups import pruned_until

MAX_PER_CHECK = 50  # findings listed per check; the count says how many there were


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str


@dataclass(slots=True)
class AuditReport:
    findings: list[Finding] = field(default_factory=list)
    overruns: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, code: str, message: str) -> None:
        self.findings.append(Finding(code, message))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "findings": [{"code": f.code, "message": f.message} for f in self.findings],
            "overruns": self.overruns,
            "stats": self.stats,
        }


async def run_audit(engine: AsyncEngine, *, now: datetime | None = None) -> AuditReport:
    now = now or datetime.now(UTC)
    report = AuditReport()
    async with engine.connect() as conn:
        e, t, a = ledger_entries, ledger_transfers, ledger_accounts

        per_transfer = (
            select(
                e.c.transfer_id,
                func.sum(e.c.amount_nano).label("total"),
                func.sum(case((e.c.amount_nano > 0, e.c.amount_nano), else_=0)).label("positive"),
            )
            .group_by(e.c.transfer_id)
            .subquery()
        )
        rows = await conn.execute(
            select(
                t.c.id,
                t.c.idempotency_key,
                t.c.amount_nano,
                per_transfer.c.total,
                per_transfer.c.positive,
            )
            .select_from(t.outerjoin(per_transfer, per_transfer.c.transfer_id == t.c.id))
            .where(
                (per_transfer.c.total != 0)
                | (per_transfer.c.total.is_(None))
                | (per_transfer.c.positive != t.c.amount_nano)
            )
            .limit(MAX_PER_CHECK)
        )
        for r in rows:
            if r.total is None:
                report.add("transfer_unbalanced", f"transfer {r.id} ({r.idempotency_key}) has no entries")
            elif int(r.total) != 0:
                report.add(
                    "transfer_unbalanced",
                    f"transfer {r.id} ({r.idempotency_key}) sums to {r.total} nano",
                )
            else:
                report.add(
                    "transfer_amount_mismatch",
                    f"transfer {r.id} ({r.idempotency_key}) says {r.amount_nano} nano, "
                    f"its legs move {r.positive}",
                )

        total = (await conn.execute(select(func.coalesce(func.sum(e.c.amount_nano), 0)))).scalar_one()
        if int(total) != 0:
            report.add("ledger_not_zero", f"all ledger entries sum to {total} nano instead of 0")

        per_account = (
            select(e.c.ledger_account_id, func.sum(e.c.amount_nano).label("total"))
            .group_by(e.c.ledger_account_id)
            .subquery()
        )
        recomputed = func.coalesce(per_account.c.total, 0)
        accounts = (
            await conn.execute(
                select(
                    a.c.id,
                    a.c.code,
                    a.c.kind,
                    a.c.owner_id,
                    a.c.balance_nano,
                    recomputed.label("actual"),
                ).select_from(a.outerjoin(per_account, per_account.c.ledger_account_id == a.c.id))
            )
        ).all()
        cash_negative: dict[str, int] = {}
        mismatches = 0
        for acc in accounts:
            actual = int(acc.actual)
            if int(acc.balance_nano) != actual:
                mismatches += 1
                if mismatches <= MAX_PER_CHECK:
                    report.add(
                        "balance_mismatch",
                        f"{acc.code}: cached balance {acc.balance_nano} nano, recomputed {actual} nano",
                    )
            if acc.kind == AccountKind.CUSTOMER_VOUCHER.value and actual < 0:
                report.add("voucher_negative", f"{acc.code} recomputes to {actual} nano")
            if acc.kind == AccountKind.CUSTOMER_CASH.value and actual < 0:
                cash_negative[str(acc.owner_id)] = actual
        report.stats["ledger_accounts"] = len(accounts)

        overrun_rows = (
            await conn.execute(
                select(
                    usage_records.c.owner_id,
                    func.sum(usage_records.c.overrun_nano).label("overrun"),
                    func.count().label("calls"),
                )
                .where(usage_records.c.overrun_nano > 0)
                .group_by(usage_records.c.owner_id)
            )
        ).all()
        overrun_by_owner = {str(r.owner_id): int(r.overrun) for r in overrun_rows}
        report.overruns = [
            {
                "account_id": str(r.owner_id),
                "overrun_nano": int(r.overrun),
                "overrun": nano_to_credits(int(r.overrun)),
                "calls": int(r.calls),
            }
            for r in overrun_rows
        ]
        for owner, balance in cash_negative.items():
            if -balance > overrun_by_owner.get(owner, 0):
                report.add(
                    "cash_negative_unexplained",
                    f"account {owner}: cash is {balance} nano, recorded overruns only "
                    f"{overrun_by_owner.get(owner, 0)} nano",
                )

        stale = (
            await conn.execute(
                select(holds.c.trace_id, holds.c.expires_at)
                .where(holds.c.state == "active", holds.c.expires_at <= now)
                .limit(MAX_PER_CHECK)
            )
        ).all()
        for h in stale:
            report.add(
                "hold_not_ended",
                f"hold {h.trace_id} is still active past its timeout ({h.expires_at.isoformat()})",
            )
        incomplete = (
            await conn.execute(
                select(holds.c.trace_id)
                .where(holds.c.state != "active", holds.c.ended_at.is_(None))
                .limit(MAX_PER_CHECK)
            )
        ).all()
        for r in incomplete:
            report.add("hold_end_incomplete", f"hold {r.trace_id} ended without an end time")

        usage_t = (
            select(t.c.trace_id, func.count().label("n"), func.sum(t.c.amount_nano).label("amount"))
            .where(t.c.kind == TransferKind.USAGE.value)
            .group_by(t.c.trace_id)
            .subquery()
        )
        charged = usage_records.c.deduction_nano > 0
        rows = await conn.execute(
            select(
                usage_records.c.trace_id,
                usage_records.c.deduction_nano,
                usage_t.c.n,
                usage_t.c.amount,
            )
            .select_from(usage_records.outerjoin(usage_t, usage_t.c.trace_id == usage_records.c.trace_id))
            .where(
                (charged & usage_t.c.n.is_(None))
                | (usage_t.c.n > 1)
                | (usage_t.c.amount != usage_records.c.deduction_nano)
            )
            .limit(MAX_PER_CHECK)
        )
        for r in rows:
            if r.n is None:
                report.add(
                    "usage_without_transfer",
                    f"call {r.trace_id} was charged {r.deduction_nano} nano with no transfer",
                )
            elif int(r.n) > 1:
                report.add("usage_amount_mismatch", f"call {r.trace_id} has {r.n} usage transfers")
            else:
                report.add(
                    "usage_amount_mismatch",
                    f"call {r.trace_id}: record says {r.deduction_nano} nano, transfer {r.amount} nano",
                )
        # Usage retention (tollway.usage.rollups.prune) deletes the raw records of old rolled-up
        # days and keeps their transfers: before that point a transfer or settled hold without a
        # record is expected (a transfer commits moments after its record's time: 1 h margin).
        pruned_before = await pruned_until(conn)
        rows = await conn.execute(
            select(t.c.id, t.c.trace_id)
            .select_from(t.outerjoin(usage_records, usage_records.c.trace_id == t.c.trace_id))
            .where(t.c.kind == TransferKind.USAGE.value, usage_records.c.trace_id.is_(None))
            .where(t.c.created_at >= pruned_before + timedelta(hours=1) if pruned_before else true())
            .limit(MAX_PER_CHECK)
        )
        for r in rows:
            report.add(
                "transfer_without_usage",
                f"usage transfer {r.id} (call {r.trace_id}) has no usage record",
            )

        rows = await conn.execute(
            select(holds.c.trace_id, holds.c.settled_nano, usage_records.c.deduction_nano)
            .select_from(holds.outerjoin(usage_records, usage_records.c.trace_id == holds.c.trace_id))
            .where(
                holds.c.state == "settled",
                (usage_records.c.trace_id.is_(None))
                | (usage_records.c.deduction_nano != func.coalesce(holds.c.settled_nano, -1)),
            )
            .where(holds.c.created_at >= pruned_before if pruned_before else true())
            .limit(MAX_PER_CHECK)
        )
        for r in rows:
            if r.deduction_nano is None:
                report.add(
                    "settled_hold_without_record",
                    f"hold {r.trace_id} was settled but has no usage record",
                )
            else:
                report.add(
                    "settled_amount_mismatch",
                    f"hold {r.trace_id} settled {r.settled_nano} nano, its record says {r.deduction_nano}",
                )

        await check_payments(conn, report)

        counts = (
            await conn.execute(
                select(
                    select(func.count()).select_from(t).scalar_subquery(),
                    select(func.count()).select_from(usage_records).scalar_subquery(),
                    select(func.count()).select_from(holds).scalar_subquery(),
                    select(func.count())
                    .select_from(holds)
                    .where(and_(holds.c.state == "active"))
                    .scalar_subquery(),
                )
            )
        ).one()
        report.stats.update(
            transfers=int(counts[0]),
            usage_records=int(counts[1]),
            holds=int(counts[2]),
            active_holds=int(counts[3]),
        )
    return report
