"""Which payments a refund goes back to, and how much of each. Pure.

Refundable cash = the customer's unspent cash, minus what their open call holds need beyond
their vouchers (holds spend vouchers first), never below zero. It goes back newest payment
first; from each payment at most what is left of it (its credits minus what was refunded or
is in flight). Money is returned at the payment's own rate: all that is left of a payment
returns all its money; a part returns the proportional money rounded down, and takes the
credits that money stands for rounded up (so no refund ever returns more than was paid, and
a sub-cent remainder stays with the customer as cash).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Payment:
    order_number: str
    provider: str
    currency: str
    amount_minor: int
    credits_nano: int
    refunded_minor: int  # refunded or in flight
    refunded_nano: int
    credited_at: datetime

    @property
    def left_nano(self) -> int:
        return max(0, self.credits_nano - self.refunded_nano)

    @property
    def left_minor(self) -> int:
        return max(0, self.amount_minor - self.refunded_minor)


@dataclass(frozen=True, slots=True)
class PlanLine:
    order_number: str
    provider: str
    currency: str
    amount_minor: int
    credits_nano: int


def refundable_cash(*, cash_nano: int, voucher_nano: int, held_nano: int) -> int:
    needed_from_cash = max(0, held_nano - voucher_nano)
    return max(0, cash_nano - needed_from_cash)


def refundable_total(payments: Iterable[Payment], *, cash_available_nano: int) -> int:
    return min(cash_available_nano, sum(p.left_nano for p in payments))


def _money_for(p: Payment, take_nano: int) -> tuple[int, int]:
    """(minor units, nano-credits) to refund when taking ``take_nano`` from ``p``."""
    if take_nano >= p.left_nano:
        return p.left_minor, p.left_nano
    minor = min((take_nano * p.amount_minor) // p.credits_nano, p.left_minor)
    nano = -((-minor * p.credits_nano) // p.amount_minor)  # rounded up, never above take_nano
    return minor, nano


def plan(
    payments: Iterable[Payment], *, cash_available_nano: int, requested_nano: int | None
) -> list[PlanLine]:
    budget = refundable_total(payments := list(payments), cash_available_nano=cash_available_nano)
    if requested_nano is not None:
        budget = min(budget, requested_nano)
    lines: list[PlanLine] = []
    for p in sorted(payments, key=lambda p: (p.credited_at, p.order_number), reverse=True):
        if budget <= 0:
            break
        if p.left_nano <= 0 or p.left_minor <= 0:
            continue
        minor, nano = _money_for(p, min(budget, p.left_nano))
        if minor <= 0 or nano <= 0:
            continue  # less than the currency's smallest unit
        lines.append(PlanLine(p.order_number, p.provider, p.currency, minor, nano))
        budget -= nano
    return lines
