"""Read side of refunds: what is refundable now, and requests as the API shows them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.money import nano_to_credits
from tollway.payments import refund_plan
from tollway.payments.db import refunds as repo
from tollway.payments.model import RequestState
from tollway.payments.views import refund_json
from tollway.services.queries import balance_snapshot

Json = dict[str, Any]


async def refundable(conn: AsyncConnection, account_id: str) -> tuple[int, list[refund_plan.Payment]]:
    """(cash available for refunds, the payments it could go back to)."""
    snap = await balance_snapshot(conn, account_id)
    cash = refund_plan.refundable_cash(
        cash_nano=snap["cash_nano"], voucher_nano=snap["voucher_nano"], held_nano=snap["held_nano"]
    )
    rows = await repo.credited_orders(conn, account_id)
    done = await repo.refunded_by_order(conn, [r.order_number for r in rows])
    payments = [
        refund_plan.Payment(
            r.order_number,
            r.provider,
            r.currency,
            int(r.amount_minor),
            int(r.credits_nano),
            *done.get(r.order_number, (0, 0)),
            credited_at=r.credited_at,
        )
        for r in rows
    ]
    return cash, payments


async def request_json(conn: AsyncConnection, row: Any) -> Json:
    refunds = await repo.list_refunds(conn, request_id=row.id)
    out: Json = {
        "id": row.id,
        "account_id": row.account_id,
        "state": row.state,
        "reason": row.reason,
        "amount": None if row.amount_nano is None else nano_to_credits(int(row.amount_nano)),
        "created_at": row.created_at.isoformat(),
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "decision_reason": row.decision_reason,
        "refunds": [refund_json(r) for r in refunds],
    }
    if row.state == RequestState.REQUESTED.value:
        cash, payments = await refundable(conn, row.account_id)
        lines = refund_plan.plan(payments, cash_available_nano=cash, requested_nano=row.amount_nano)
        out["refundable_now"] = nano_to_credits(sum(line.credits_nano for line in lines))
    return out
