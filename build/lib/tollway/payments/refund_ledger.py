"""The ledger side of a refund: hold the cash, then post it to the provider or give it back.

- hold (approval):   cash → ``platform:refunds_in_flight``   key ``refund-hold:<id>``
- confirmed:         refunds in flight → the provider's clearing   key ``refund:<id>``
- refused:           refunds in flight → cash   key ``refund-release:<id>``
Each transfer carries the refund id as its reference (``trace_id``), which the audit uses.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from tollway.ledger import chart
from tollway.ledger.chart import AccountKind, TransferKind
from tollway.ledger.transfer import Leg, Transfer
from tollway.payments.db import orders as orders_repo
from tollway.payments.db import refunds as repo
from tollway.payments.model import CREDITED_STATES, OrderState, Refund, RefundState, RequestState
from tollway.store import ledger_repo


async def _post(
    conn: AsyncConnection,
    key: str,
    kind: TransferKind,
    legs: tuple[Leg, ...],
    refund: Refund | str,
    owner: str,
    actor: str,
) -> None:
    ref = refund if isinstance(refund, str) else refund.id
    memo = f"{kind.value} for refund {ref}"
    transfer = Transfer(key, kind.value, legs, owner_id=owner, trace_id=ref, memo=memo, actor=actor)
    await ledger_repo.post_transfers(conn, [transfer])


async def _cash(conn: AsyncConnection, account_id: str) -> int:
    return await ledger_repo.get_or_create_account(
        conn, chart.cash_code(account_id), AccountKind.CUSTOMER_CASH, owner_id=account_id
    )


async def _in_flight(conn: AsyncConnection) -> int:
    return (await ledger_repo.ensure_platform_accounts(conn))[chart.REFUNDS_IN_FLIGHT]


async def hold_cash(
    conn: AsyncConnection, refund_id: str, account_id: str, credits_nano: int, actor: str
) -> None:
    legs = (Leg(await _cash(conn, account_id), -credits_nano), Leg(await _in_flight(conn), credits_nano))
    await _post(
        conn, f"refund-hold:{refund_id}", TransferKind.REFUND_HOLD, legs, refund_id, account_id, actor
    )


async def settle(conn: AsyncConnection, refund: Refund, state: RefundState, actor: str) -> None:
    """Post a refund that just ended (the caller won the conditional update that ended it)."""
    in_flight = await _in_flight(conn)
    if state is RefundState.SUCCEEDED:
        clearing = await ledger_repo.get_or_create_account(
            conn, chart.clearing_code(refund.provider), AccountKind.CLEARING
        )
        legs = (Leg(in_flight, -refund.credits_nano), Leg(clearing, refund.credits_nano))
        await _post(conn, f"refund:{refund.id}", TransferKind.REFUND, legs, refund, refund.account_id, actor)
        await _mark_order(conn, refund, actor)
    else:
        legs = (
            Leg(in_flight, -refund.credits_nano),
            Leg(await _cash(conn, refund.account_id), refund.credits_nano),
        )
        key = f"refund-release:{refund.id}"
        await _post(conn, key, TransferKind.REFUND_RELEASE, legs, refund, refund.account_id, actor)
    if refund.request_id:
        await _settle_request(conn, refund.request_id)


async def _mark_order(conn: AsyncConnection, refund: Refund, actor: str) -> None:
    order = await orders_repo.get_order(conn, refund.order_number)
    assert order is not None
    refunded = await repo.succeeded_minor(conn, refund.order_number)
    target = OrderState.REFUNDED if refunded >= order.amount_minor else OrderState.PARTIALLY_REFUNDED
    await orders_repo.transition(
        conn, order.order_number, target, sources=CREDITED_STATES - {OrderState.REFUNDED}
    )
    detail = {
        "refund_id": refund.id,
        "amount_minor": refund.amount_minor,
        "credits_nano": refund.credits_nano,
    }
    await orders_repo.record_event(
        conn, order.order_number, "refund", source="provider", actor=actor, detail=detail
    )


async def _settle_request(conn: AsyncConnection, request_id: str) -> None:
    states = {r.state for r in await repo.list_refunds(conn, request_id=request_id)}
    if RefundState.PENDING in states:
        return
    target = RequestState.COMPLETED if RefundState.SUCCEEDED in states else RequestState.FAILED
    await repo.move_request(conn, request_id, target, sources=[RequestState.PROCESSING])
