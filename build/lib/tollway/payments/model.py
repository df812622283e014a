"""Orders, refunds and refund requests: states and the transitions allowed between them.

Pure domain: no I/O. The store applies a transition with a conditional update
(``UPDATE ... WHERE state IN sources_for(target)``), so two deliveries racing for the same
order cannot both move it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tollway.payments.errors import OrderStateConflict


class OrderState(StrEnum):
    CREATED = "created"  # stored, the provider not asked yet
    PENDING = "pending"  # the provider has a checkout; waiting for the customer
    PAID = "paid"  # a verified payment; credited in the same transaction
    CREDITED = "credited"
    FAILED = "failed"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.CREATED: frozenset({S.PENDING, S.PAID, S.FAILED, S.EXPIRED}),
    S.PENDING: frozenset({S.PAID, S.FAILED, S.EXPIRED}),
    # A verified payment wins over our own expiry or a failure report: the money arrived.
    S.EXPIRED: frozenset({S.PAID}),
    S.FAILED: frozenset({S.PAID}),
    S.PAID: frozenset({S.CREDITED}),
    S.CREDITED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.REFUNDED: frozenset(),
}

OPEN_STATES = frozenset({S.CREATED, S.PENDING})
CREDITED_STATES = frozenset({S.CREDITED, S.PARTIALLY_REFUNDED, S.REFUNDED})


def sources_for(target: OrderState) -> frozenset[OrderState]:
    """Every state from which ``target`` may be reached in one step."""
    return frozenset(src for src, dsts in TRANSITIONS.items() if target in dsts)


def creditable_states() -> frozenset[OrderState]:
    """States an order may be credited from (paid and credited happen in one transaction)."""
    return sources_for(S.PAID)


def check_transition(current: OrderState, target: OrderState, *, order_number: str) -> None:
    if target not in TRANSITIONS[current]:
        raise OrderStateConflict(
            f"order {order_number} is {current.value}; it cannot become {target.value}",
            param="order_number",
        )


class RefundState(StrEnum):
    PENDING = "pending"  # cash held, the provider asked (or about to be)
    SUCCEEDED = "succeeded"  # the provider confirmed; the ledger posted
    FAILED = "failed"  # the provider refused; the held cash went back


class RequestState(StrEnum):
    REQUESTED = "requested"  # the customer asked
    PROCESSING = "processing"  # approved; refunds in flight
    COMPLETED = "completed"  # every refund ended (some may have failed)
    FAILED = "failed"  # approved, but every refund failed
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Order:
    order_number: str
    account_id: str
    provider: str
    method: str
    state: OrderState
    currency: str
    amount_minor: int
    price_per_credit: str
    fx_rate: str | None
    credits_nano: int
    provider_ref: str | None
    payment_ref: str | None
    pay_url: str | None
    qr_code: str | None
    failure_reason: str | None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    credited_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    request_id: str | None
    order_number: str
    account_id: str
    provider: str
    out_request_no: str
    currency: str
    amount_minor: int
    credits_nano: int
    state: RefundState
    provider_ref: str | None
    failure_reason: str | None
