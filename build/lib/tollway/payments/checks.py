"""Does a verified payment report agree with the stored order? Pure; the first disagreement
is returned in words (and the notification refused), ``None`` when everything matches."""

from __future__ import annotations

from tollway.payments.amounts import format_minor
from tollway.payments.model import Order
from tollway.payments.provider import PaymentReport


def mismatch(order: Order, report: PaymentReport, *, provider: str) -> str | None:
    if provider != order.provider:
        return f"order {order.order_number} is paid through {order.provider}, not {provider}"
    if report.currency is None or report.currency.upper() != order.currency:
        return f"currency {report.currency!r} does not match the order's {order.currency}"
    if report.amount_minor is None:
        return "the notification carries no amount"
    if report.amount_minor != order.amount_minor:
        paid = format_minor(report.amount_minor, order.currency)
        return (
            f"amount {paid} {order.currency} does not match the order's "
            f"{format_minor(order.amount_minor, order.currency)} {order.currency}"
        )
    if order.provider_ref and report.provider_ref and order.provider_ref != report.provider_ref:
        return f"the payment {report.provider_ref} belongs to another checkout than {order.provider_ref}"
    return None
