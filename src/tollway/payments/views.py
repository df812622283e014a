"""JSON shapes of orders and refunds as the API and the CLI show them. Money is a decimal
string in the payment currency plus the integer minor units; credits likewise."""

from __future__ import annotations

from typing import Any

from tollway.money import nano_to_credits
from tollway.payments.amounts import format_minor
from tollway.payments.model import Order, Refund

Json = dict[str, Any]

DESTINATIONS = {
    "stripe": "the card or account that paid, through Stripe",
    "alipay": "the Alipay account that paid",
    "epay": "the account that paid, through EPay",
    "manual": "paid back by staff, as agreed with you",
}


def order_json(order: Order) -> Json:
    return {
        "order_number": order.order_number,
        "account_id": order.account_id,
        "provider": order.provider,
        "method": order.method,
        "state": order.state.value,
        "currency": order.currency,
        "amount": format_minor(order.amount_minor, order.currency),
        "amount_minor": order.amount_minor,
        "price_per_credit": order.price_per_credit,
        "fx_rate": order.fx_rate,
        "credits": nano_to_credits(order.credits_nano),
        "credits_nano": order.credits_nano,
        "pay_url": order.pay_url,
        "qr_code": order.qr_code,
        "provider_ref": order.provider_ref,
        "failure_reason": order.failure_reason,
        "created_at": order.created_at.isoformat(),
        "expires_at": order.expires_at.isoformat(),
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "credited_at": order.credited_at.isoformat() if order.credited_at else None,
    }


# What the return page (``/pay/return/{order}``, no session) answers in JSON: what the order
# number already tells whoever holds it, as the console's payment page shows. Not the account,
# the payment link or QR code, nor the provider's reference.
PUBLIC_ORDER_FIELDS = (
    "order_number",
    "provider",
    "method",
    "state",
    "currency",
    "amount",
    "amount_minor",
    "credits",
    "credits_nano",
    "failure_reason",
    "created_at",
    "expires_at",
    "paid_at",
    "credited_at",
)


def public_order(doc: Json) -> Json:
    """An :func:`order_json` document cut to :data:`PUBLIC_ORDER_FIELDS`."""
    return {k: doc[k] for k in PUBLIC_ORDER_FIELDS}


def refund_json(refund: Refund) -> Json:
    return {
        "id": refund.id,
        "request_id": refund.request_id,
        "order_number": refund.order_number,
        "account_id": refund.account_id,
        "provider": refund.provider,
        "out_request_no": refund.out_request_no,
        "destination": f"{DESTINATIONS.get(refund.provider, refund.provider)} (order {refund.order_number})",
        "destination_text": DESTINATIONS.get(refund.provider, refund.provider),
        "currency": refund.currency,
        "amount": format_minor(refund.amount_minor, refund.currency),
        "amount_minor": refund.amount_minor,
        "credits": nano_to_credits(refund.credits_nano),
        "credits_nano": refund.credits_nano,
        "state": refund.state.value,
        "failure_reason": refund.failure_reason,
    }
