"""Stripe through the official SDK (``stripe.StripeClient``; ``TOLLWAY_STRIPE_API_BASE`` points
it elsewhere, e.g. at the loopback fake in tests).

- Checkout: one Checkout Session per order, the order number in ``client_reference_id`` and
  ``metadata.order_number`` (and on the payment intent), created with an idempotency key so a
  retried create never makes a second session.
- Webhooks: ``StripeClient.construct_event`` verifies ``Stripe-Signature`` over the raw body with
  the configured tolerance; the verified body is then read as plain JSON.
- Refunds: the Refunds API, partial amounts in minor units, the refund's ``out_request_no`` as
  the idempotency key (a retry returns the same refund), treated as asynchronous.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import stripe

from tollway.money import nano_to_credits
from tollway.payments.errors import NotificationRefused, ProviderError
from tollway.payments.model import Order, RefundState
from tollway.payments.provider import (
    Checkout,
    CheckoutUrls,
    IncomingRequest,
    Notification,
    PaymentReport,
    PaymentState,
    RefundLine,
    RefundReport,
)
from tollway.payments.stripe.declines import decline_message

T = TypeVar("T")
Json = dict[str, Any]
MIN_SESSION_S = 31 * 60  # Stripe: a session lives at least 30 minutes...
MAX_SESSION_S = 23 * 3600 + 55 * 60  # ...and at most 24 hours
REFUND_STATES = {
    "succeeded": RefundState.SUCCEEDED,
    "failed": RefundState.FAILED,
    "canceled": RefundState.FAILED,
    "pending": RefundState.PENDING,
    "requires_action": RefundState.PENDING,
}
ASYNC_FAILED = "The payment did not complete (the bank or payment method reported a failure)."


class StripeProvider:
    name = "stripe"
    methods: tuple[str, ...] = ("checkout",)
    currencies: frozenset[str] | None = None

    def __init__(
        self, secret_key: str, webhook_secret: str | None, *, api_base: str | None, tolerance_s: int
    ) -> None:
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=2,
        )
        self.webhook_secret = webhook_secret
        self.tolerance_s = tolerance_s

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe {what} failed: {exc.user_message or exc}") from exc

    async def create_checkout(self, order: Order, urls: CheckoutUrls) -> Checkout:
        now = int(time.time())
        expires = min(max(int(order.expires_at.timestamp()), now + MIN_SESSION_S), now + MAX_SESSION_S)
        meta = {"order_number": order.order_number, "account_id": order.account_id}
        session = await self._call(
            "checkout",
            lambda: self.client.v1.checkout.sessions.create(
                {
                    "mode": "payment",
                    "client_reference_id": order.order_number,
                    "metadata": meta,
                    "payment_intent_data": {"metadata": meta},
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": order.currency.lower(),
                                "unit_amount": order.amount_minor,
                                "product_data": {
                                    "name": f"{nano_to_credits(order.credits_nano)} Tollway credits",
                                    "description": f"Order {order.order_number}",
                                },
                            },
                        }
                    ],
                    "success_url": urls.return_url + "?session_id={CHECKOUT_SESSION_ID}",
                    "cancel_url": urls.cancel_url,
                    "expires_at": expires,
                },
                {"idempotency_key": f"checkout-{order.order_number}"},
            ),
        )
        return Checkout(pay_url=session.url, provider_ref=session.id)

    def parse_notification(self, request: IncomingRequest) -> Notification:
        if not self.webhook_secret:
            raise NotificationRefused("TOLLWAY_STRIPE_WEBHOOK_SECRET is not set; Stripe webhooks are refused")
        try:
            self.client.construct_event(
                request.body, request.headers.get("stripe-signature"), self.webhook_secret, self.tolerance_s
            )
        except stripe.SignatureVerificationError as exc:
            message = f"Stripe signature refused: {exc.user_message or exc}"
            raise NotificationRefused(message, order_number=_claimed_order(request.body)) from exc
        except ValueError as exc:
            raise NotificationRefused("Stripe webhook body is not an event") from exc
        event = orjson.loads(request.body)
        kind = str(event.get("type", ""))
        obj: Json = event.get("data", {}).get("object", {}) or {}
        return Notification(str(event["id"]), kind, payment=_payment(kind, obj), refund=_refund(kind, obj))

    async def _session(self, session_id: str) -> Json:
        s = await self._call("session lookup", lambda: self.client.v1.checkout.sessions.retrieve(session_id))
        return s.to_dict()

    async def query(self, order: Order) -> PaymentReport:
        if not order.provider_ref:
            return PaymentReport(order.order_number, PaymentState.UNKNOWN)
        session = await self._session(order.provider_ref)
        report = _session_report(session, _session_state(session))
        if report.state is PaymentState.PENDING and isinstance(session.get("payment_intent"), str):
            pi_id = session["payment_intent"]
            pi = await self._call("payment lookup", lambda: self.client.v1.payment_intents.retrieve(pi_id))
            reason = decline_message(pi.to_dict().get("last_payment_error"))
            report = _session_report(session, PaymentState.PENDING, reason)
        return report

    async def cancel(self, order: Order) -> None:
        if not order.provider_ref:
            return
        ref = order.provider_ref
        try:
            await asyncio.to_thread(lambda: self.client.v1.checkout.sessions.expire(ref))
        except stripe.StripeError:
            return  # already complete or expired: reconciliation asks again before expiring

    async def _payment_intent(self, order: Order) -> str:
        if order.payment_ref:
            return order.payment_ref
        if order.provider_ref:
            pi = (await self._session(order.provider_ref)).get("payment_intent")
            if isinstance(pi, str):
                return pi
        raise ProviderError(f"order {order.order_number} has no Stripe payment to refund")

    async def refund(self, order: Order, line: RefundLine) -> RefundReport:
        pi = await self._payment_intent(order)
        try:
            refund = await asyncio.to_thread(
                lambda: self.client.v1.refunds.create(
                    {
                        "payment_intent": pi,
                        "amount": line.amount_minor,
                        "reason": "requested_by_customer",
                        "metadata": {
                            "order_number": order.order_number,
                            "out_request_no": line.out_request_no,
                        },
                    },
                    {"idempotency_key": line.out_request_no},
                )
            )
        except stripe.InvalidRequestError as exc:  # a definite no (e.g. more than is left to refund)
            message = f"Stripe refused: {exc.user_message or exc}"
            return RefundReport(line.out_request_no, RefundState.FAILED, message=message)
        except stripe.StripeError as exc:  # unknown outcome: asked again with the same key
            raise ProviderError(f"Stripe refund failed: {exc.user_message or exc}") from exc
        return _refund_report(line.out_request_no, refund.to_dict())

    async def refund_status(self, order: Order, line: RefundLine) -> RefundReport:
        if line.provider_ref is None:
            return await self.refund(order, line)  # the same idempotency key returns the same refund
        ref = line.provider_ref
        refund = await self._call("refund lookup", lambda: self.client.v1.refunds.retrieve(ref))
        return _refund_report(line.out_request_no, refund.to_dict())


def _claimed_order(body: bytes) -> str | None:
    """The order an unverified body claims to be about: only to record the refusal on it (a
    wrong webhook secret is a common reason for "my top-up did not arrive")."""
    try:
        obj = orjson.loads(body)["data"]["object"]
        number = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("order_number")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return number if isinstance(number, str) else None


def _order_number(obj: Json) -> str:
    ref = obj.get("client_reference_id")
    meta = (obj.get("metadata") or {}).get("order_number")
    if ref and meta and ref != meta:
        raise NotificationRefused(f"Stripe session names two orders ({ref} and {meta})")
    number = ref or meta
    if not number:
        raise NotificationRefused("Stripe object carries no order number")
    return str(number)


def _session_state(session: Json) -> PaymentState:
    if session.get("status") == "complete" and session.get("payment_status") == "paid":
        return PaymentState.PAID
    if session.get("status") == "expired":
        return PaymentState.EXPIRED
    return PaymentState.PENDING


def _session_report(session: Json, state: PaymentState, reason: str | None = None) -> PaymentReport:
    pi = session.get("payment_intent")
    return PaymentReport(
        order_number=_order_number(session),
        state=state,
        amount_minor=session.get("amount_total"),
        currency=str(session.get("currency") or "").upper() or None,
        provider_ref=session.get("id"),
        payment_ref=pi if isinstance(pi, str) else None,
        failure_reason=reason,
    )


def _payment(kind: str, obj: Json) -> PaymentReport | None:
    if kind == "checkout.session.completed":
        return _session_report(obj, _session_state(obj))
    if kind == "checkout.session.async_payment_succeeded":
        return _session_report(obj, PaymentState.PAID)
    if kind == "checkout.session.async_payment_failed":
        return _session_report(obj, PaymentState.FAILED, ASYNC_FAILED)
    if kind == "checkout.session.expired":
        return _session_report(obj, PaymentState.EXPIRED)
    if kind == "payment_intent.payment_failed":  # a declined attempt; the customer may retry
        return PaymentReport(
            order_number=_order_number(obj),
            state=PaymentState.PENDING,
            payment_ref=obj.get("id"),
            failure_reason=decline_message(obj.get("last_payment_error")),
        )
    return None


def _refund(kind: str, obj: Json) -> RefundReport | None:
    if not kind.startswith("refund.") and kind != "charge.refund.updated":
        return None
    number = (obj.get("metadata") or {}).get("out_request_no")
    return None if not number else _refund_report(str(number), obj)


def _refund_report(out_request_no: str, refund: Json) -> RefundReport:
    state = REFUND_STATES.get(str(refund.get("status")), RefundState.PENDING)
    reason = refund.get("failure_reason")
    message = f"Stripe: {reason}" if state is RefundState.FAILED else None
    return RefundReport(out_request_no, state, provider_ref=refund.get("id"), message=message)
