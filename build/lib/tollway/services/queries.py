"""Read models: balances and usage records as the CLI, the API and the console show them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.ledger.chart import AccountKind
from tollway.money import nano_to_credits
from tollway.store.tables import holds, ledger_accounts, usage_records

Json = dict[str, Any]


async def balance_snapshot(conn: AsyncConnection, owner_id: str, *, now: datetime | None = None) -> Json:
    """Balances from the ledger's cached columns and the active holds the store knows of."""
    now = now or datetime.now(UTC)
    rows = await conn.execute(
        select(
            ledger_accounts.c.kind,
            ledger_accounts.c.balance_nano,
            ledger_accounts.c.expires_at,
            ledger_accounts.c.code,
            ledger_accounts.c.label,
        ).where(ledger_accounts.c.owner_id == owner_id)
    )
    cash = 0
    voucher = 0
    grants: list[Json] = []
    for r in rows:
        if r.kind == AccountKind.CUSTOMER_CASH.value:
            cash += int(r.balance_nano)
        elif r.kind == AccountKind.CUSTOMER_VOUCHER.value:
            live = r.expires_at is None or r.expires_at > now
            if live:
                voucher += max(int(r.balance_nano), 0)
            grants.append(
                {
                    "grant": r.code.rsplit(":", 1)[-1],
                    "remaining_nano": int(r.balance_nano),
                    "remaining": nano_to_credits(int(r.balance_nano)),
                    "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                    "expired": not live,
                    "reason": r.label,
                }
            )
    held = int(
        (
            await conn.execute(
                select(func.coalesce(func.sum(holds.c.amount_nano), 0)).where(
                    holds.c.owner_id == owner_id,
                    holds.c.state == "active",
                    holds.c.expires_at > now,
                )
            )
        ).scalar_one()
    )
    available = cash + voucher - held
    return {
        "account_id": owner_id,
        "cash_nano": cash,
        "voucher_nano": voucher,
        "held_nano": held,
        "available_nano": available,
        "cash": nano_to_credits(cash),
        "voucher": nano_to_credits(voucher),
        "held": nano_to_credits(held),
        "available": nano_to_credits(available),
        "vouchers": grants,
    }


def usage_json(r: Row[Any]) -> Json:
    return {
        "trace_id": r.trace_id,
        "created_at": r.created_at.isoformat(),
        "account_id": r.owner_id,
        "key_id": r.key_id,
        "endpoint": r.endpoint,
        "model_requested": r.model_requested,
        "model_billed": r.model_billed,
        "group": r.group_name,
        "multiplier": r.multiplier,
        "stream": bool(r.stream),
        "status": r.status,
        "http_status": r.http_status,
        "error_code": r.error_code,
        "tokens": {
            "input": r.input_tokens,
            "cache_read": r.cache_read_tokens,
            "cache_write_5m": r.cache_write_5m_tokens,
            "cache_write_1h": r.cache_write_1h_tokens,
            "output": r.output_tokens,
            "reasoning": r.reasoning_tokens,
        },
        "calls": r.calls,
        "estimated": bool(r.estimated),
        "tier": r.tier,
        "price_snapshot": orjson.loads(r.price_snapshot),
        "lines": orjson.loads(r.lines),
        "official_cost_nano": r.official_cost_nano,
        "official_cost_usd": nano_to_credits(r.official_cost_nano),
        "deduction_nano": r.deduction_nano,
        "deduction": nano_to_credits(r.deduction_nano),
        "balance_after_nano": r.balance_after_nano,
        "overrun_nano": r.overrun_nano,
        "hold_nano": r.hold_nano,
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "client_ip": r.client_ip,
    }


async def list_usage(
    conn: AsyncConnection, owner_id: str, *, limit: int = 50, include_operator: bool = False
) -> list[Json]:
    rows = await conn.execute(
        select(usage_records)
        .where(usage_records.c.owner_id == owner_id)
        .order_by(usage_records.c.created_at.desc())
        .limit(max(1, min(limit, 10_000)))
    )
    return [_with_channel(r, include_operator) for r in rows]


async def get_usage(
    conn: AsyncConnection,
    trace_id: str,
    *,
    owner_id: str | None = None,
    include_operator: bool = False,
) -> Json | None:
    q = select(usage_records).where(usage_records.c.trace_id == trace_id)
    if owner_id is not None:
        q = q.where(usage_records.c.owner_id == owner_id)
    row = (await conn.execute(q)).first()
    return None if row is None else _with_channel(row, include_operator)


def _with_channel(r: Row[Any], include_operator: bool) -> Json:
    out = usage_json(r)
    if include_operator:
        out["channel_id"] = r.channel_id  # operator-only (DESIGN.md §2)
    return out
