"""Orders, their event log and the notification dedupe table."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.payments.db.common import insert_ignore, utcnow
from tollway.payments.model import Order, OrderState
from tollway.store.tables import order_events, orders, payment_notifications


def order_from_row(row: Row[Any]) -> Order:
    return Order(
        order_number=row.order_number,
        account_id=row.account_id,
        provider=row.provider,
        method=row.method,
        state=OrderState(row.state),
        currency=row.currency,
        amount_minor=int(row.amount_minor),
        price_per_credit=row.price_per_credit,
        fx_rate=row.fx_rate,
        credits_nano=int(row.credits_nano),
        provider_ref=row.provider_ref,
        payment_ref=row.payment_ref,
        pay_url=row.pay_url,
        qr_code=row.qr_code,
        failure_reason=row.failure_reason,
        created_at=row.created_at,
        expires_at=row.expires_at,
        paid_at=row.paid_at,
        credited_at=row.credited_at,
    )


async def insert_order(conn: AsyncConnection, **values: Any) -> None:
    now = utcnow()
    await conn.execute(orders.insert().values(created_at=now, updated_at=now, **values))


async def get_order(
    conn: AsyncConnection, order_number: str, *, account_id: str | None = None
) -> Order | None:
    q = select(orders).where(orders.c.order_number == order_number)
    if account_id is not None:
        q = q.where(orders.c.account_id == account_id)
    row = (await conn.execute(q)).first()
    return None if row is None else order_from_row(row)


async def list_orders(
    conn: AsyncConnection,
    *,
    account_id: str | None = None,
    states: Iterable[OrderState] | None = None,
    limit: int = 50,
) -> list[Order]:
    q = select(orders).order_by(orders.c.created_at.desc()).limit(max(1, min(limit, 10_000)))
    if account_id is not None:
        q = q.where(orders.c.account_id == account_id)
    if states is not None:
        q = q.where(orders.c.state.in_([s.value for s in states]))
    return [order_from_row(r) for r in await conn.execute(q)]


async def transition(
    conn: AsyncConnection,
    order_number: str,
    target: OrderState,
    *,
    sources: Iterable[OrderState],
    **values: Any,
) -> bool:
    """Move the order to ``target`` only if it is in one of ``sources`` (one atomic statement):
    of several writers racing, exactly one sees True."""
    result = await conn.execute(
        update(orders)
        .where(orders.c.order_number == order_number, orders.c.state.in_([s.value for s in sources]))
        .values(state=target.value, updated_at=utcnow(), **values)
    )
    return bool(result.rowcount == 1)


async def set_fields(
    conn: AsyncConnection, order_number: str, *, states: Iterable[OrderState], **values: Any
) -> bool:
    result = await conn.execute(
        update(orders)
        .where(orders.c.order_number == order_number, orders.c.state.in_([s.value for s in states]))
        .values(updated_at=utcnow(), **values)
    )
    return bool(result.rowcount == 1)


def keep_first(column_value: Any, new_value: str | None) -> Any:
    """``COALESCE(column, new)``: a reference, once known, is never overwritten."""
    return func.coalesce(column_value, new_value)


async def record_event(
    conn: AsyncConnection,
    order_number: str,
    kind: str,
    *,
    source: str,
    actor: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    await conn.execute(
        order_events.insert().values(
            order_number=order_number,
            at=at or utcnow(),
            kind=kind,
            source=source,
            actor=actor,
            detail=orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS).decode(),
        )
    )


async def list_events(conn: AsyncConnection, order_number: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(order_events).where(order_events.c.order_number == order_number).order_by(order_events.c.id)
    )
    return [
        {
            "at": r.at.isoformat(),
            "kind": r.kind,
            "source": r.source,
            "actor": r.actor,
            "detail": orjson.loads(r.detail),
        }
        for r in rows
    ]


async def claim_notification(
    conn: AsyncConnection, provider: str, dedupe_key: str, *, order_number: str | None, kind: str
) -> bool:
    """Store a notification once: False when this exact notification was handled before."""
    return await insert_ignore(
        conn,
        payment_notifications,
        {
            "provider": provider,
            "dedupe_key": dedupe_key[:160],
            "order_number": order_number,
            "kind": kind[:64],
            "received_at": utcnow(),
        },
        ["provider", "dedupe_key"],
    )


async def due_orders(conn: AsyncConnection, *, created_before: datetime, limit: int = 1000) -> list[Order]:
    """Open orders older than the threshold (oldest first): what reconciliation asks about."""
    rows = await conn.execute(
        select(orders)
        .where(
            orders.c.state.in_([OrderState.CREATED.value, OrderState.PENDING.value]),
            orders.c.created_at <= created_before,
            orders.c.provider != "manual",
        )
        .order_by(orders.c.created_at)
        .limit(limit)
    )
    return [order_from_row(r) for r in rows]
