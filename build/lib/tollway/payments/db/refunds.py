"""Refund requests (what the customer asked) and refunds (one per payment refunded)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.payments.db.common import utcnow
from tollway.payments.model import CREDITED_STATES, Refund, RefundState, RequestState
from tollway.store.tables import orders, refund_requests, refunds


def refund_from_row(row: Row[Any]) -> Refund:
    return Refund(
        id=row.id,
        request_id=row.request_id,
        order_number=row.order_number,
        account_id=row.account_id,
        provider=row.provider,
        out_request_no=row.out_request_no,
        currency=row.currency,
        amount_minor=int(row.amount_minor),
        credits_nano=int(row.credits_nano),
        state=RefundState(row.state),
        provider_ref=row.provider_ref,
        failure_reason=row.failure_reason,
    )


async def insert_refund(conn: AsyncConnection, **values: Any) -> None:
    now = utcnow()
    await conn.execute(refunds.insert().values(created_at=now, updated_at=now, **values))


async def get_refund(conn: AsyncConnection, refund_id: str) -> Refund | None:
    row = (await conn.execute(select(refunds).where(refunds.c.id == refund_id))).first()
    return None if row is None else refund_from_row(row)


async def refund_by_request_no(conn: AsyncConnection, out_request_no: str) -> Refund | None:
    row = (await conn.execute(select(refunds).where(refunds.c.out_request_no == out_request_no))).first()
    return None if row is None else refund_from_row(row)


async def list_refunds(
    conn: AsyncConnection,
    *,
    order_number: str | None = None,
    request_id: str | None = None,
    state: RefundState | None = None,
    updated_before: datetime | None = None,
) -> list[Refund]:
    q = select(refunds).order_by(refunds.c.created_at, refunds.c.id)
    if order_number is not None:
        q = q.where(refunds.c.order_number == order_number)
    if request_id is not None:
        q = q.where(refunds.c.request_id == request_id)
    if state is not None:
        q = q.where(refunds.c.state == state.value)
    if updated_before is not None:
        q = q.where(refunds.c.updated_at <= updated_before)
    return [refund_from_row(r) for r in await conn.execute(q)]


async def finish_refund(conn: AsyncConnection, refund_id: str, target: RefundState, **values: Any) -> bool:
    """pending → succeeded | failed, once (a conditional update)."""
    now = utcnow()
    result = await conn.execute(
        update(refunds)
        .where(refunds.c.id == refund_id, refunds.c.state == RefundState.PENDING.value)
        .values(state=target.value, updated_at=now, settled_at=now, **values)
    )
    return bool(result.rowcount == 1)


async def note_refund(conn: AsyncConnection, refund_id: str, **values: Any) -> None:
    await conn.execute(
        update(refunds)
        .where(refunds.c.id == refund_id, refunds.c.state == RefundState.PENDING.value)
        .values(updated_at=utcnow(), **values)
    )


async def refunded_by_order(
    conn: AsyncConnection, order_numbers: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """(minor units, nano-credits) already refunded or in flight, per order."""
    numbers = list(order_numbers)
    if not numbers:
        return {}
    rows = await conn.execute(
        select(
            refunds.c.order_number,
            func.sum(refunds.c.amount_minor).label("minor"),
            func.sum(refunds.c.credits_nano).label("nano"),
        )
        .where(refunds.c.order_number.in_(numbers), refunds.c.state != RefundState.FAILED.value)
        .group_by(refunds.c.order_number)
    )
    return {str(r.order_number): (int(r.minor), int(r.nano)) for r in rows}


async def succeeded_minor(conn: AsyncConnection, order_number: str) -> int:
    total = await conn.execute(
        select(func.coalesce(func.sum(refunds.c.amount_minor), 0)).where(
            refunds.c.order_number == order_number, refunds.c.state == RefundState.SUCCEEDED.value
        )
    )
    return int(total.scalar_one())


async def credited_orders(conn: AsyncConnection, account_id: str) -> list[Row[Any]]:
    return list(
        await conn.execute(
            select(orders).where(
                orders.c.account_id == account_id, orders.c.state.in_([s.value for s in CREDITED_STATES])
            )
        )
    )


# --- requests ------------------------------------------------------------------------------


async def insert_request(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(refund_requests.insert().values(created_at=utcnow(), **values))


async def get_request(
    conn: AsyncConnection, request_id: str, *, account_id: str | None = None
) -> Row[Any] | None:
    q = select(refund_requests).where(refund_requests.c.id == request_id)
    if account_id is not None:
        q = q.where(refund_requests.c.account_id == account_id)
    return (await conn.execute(q)).first()


async def list_requests(
    conn: AsyncConnection,
    *,
    account_id: str | None = None,
    state: RequestState | None = None,
    limit: int = 100,
) -> list[Row[Any]]:
    q = select(refund_requests).order_by(refund_requests.c.created_at.desc()).limit(limit)
    if account_id is not None:
        q = q.where(refund_requests.c.account_id == account_id)
    if state is not None:
        q = q.where(refund_requests.c.state == state.value)
    return list(await conn.execute(q))


async def open_request(conn: AsyncConnection, account_id: str) -> Row[Any] | None:
    q = select(refund_requests).where(
        refund_requests.c.account_id == account_id,
        refund_requests.c.state.in_([RequestState.REQUESTED.value, RequestState.PROCESSING.value]),
    )
    return (await conn.execute(q)).first()


async def move_request(
    conn: AsyncConnection,
    request_id: str,
    target: RequestState,
    *,
    sources: Iterable[RequestState],
    **values: Any,
) -> bool:
    result = await conn.execute(
        update(refund_requests)
        .where(refund_requests.c.id == request_id, refund_requests.c.state.in_([s.value for s in sources]))
        .values(state=target.value, **values)
    )
    return bool(result.rowcount == 1)
