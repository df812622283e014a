"""The one interface every payment provider implements, and what crosses it.

A provider turns an order into a checkout (a URL or a QR code), verifies and parses the
notifications it sends (signature over the raw bytes, its merchant id), answers queries about
a payment and makes refunds. It never touches the database: the services decide what a
verified report means for the order and the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from tollway.payments.model import Order, RefundState


class PaymentState(StrEnum):
    PAID = "paid"
    PENDING = "pending"  # not paid yet (or not known to the provider yet)
    FAILED = "failed"  # the payment failed for good
    EXPIRED = "expired"  # the provider closed the checkout unpaid
    UNKNOWN = "unknown"  # the provider cannot say (e.g. no checkout was made)


@dataclass(frozen=True, slots=True)
class CheckoutUrls:
    notify_url: str
    return_url: str
    cancel_url: str


@dataclass(frozen=True, slots=True)
class Checkout:
    pay_url: str | None
    provider_ref: str | None = None  # e.g. the Stripe Checkout Session id
    qr_code: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """What the provider says about one order's payment (from a notification or a query)."""

    order_number: str
    state: PaymentState
    amount_minor: int | None = None
    currency: str | None = None
    provider_ref: str | None = None
    payment_ref: str | None = None
    failure_reason: str | None = None  # plain words, shown to the customer


@dataclass(frozen=True, slots=True)
class RefundReport:
    out_request_no: str
    state: RefundState
    provider_ref: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified notification. ``dedupe_key`` is unique per delivery-worthy event: retries of
    the same event share it, so storing it once makes every retry a no-op."""

    dedupe_key: str
    kind: str
    payment: PaymentReport | None = None
    refund: RefundReport | None = None


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    method: str
    headers: Mapping[str, str]  # lower-case names
    query: str  # the raw query string
    body: bytes  # the raw body: signatures are checked over these exact bytes
    params: Mapping[str, str] = field(default_factory=dict)  # query + form fields, for GET|POST


@dataclass(frozen=True, slots=True)
class RefundLine:
    out_request_no: str
    amount_minor: int
    currency: str
    reason: str
    provider_ref: str | None = None  # the provider's refund id, once known


class PaymentProvider(Protocol):
    name: str
    methods: tuple[str, ...]  # the first is the default
    currencies: frozenset[str] | None  # None: any supported currency

    async def create_checkout(self, order: Order, urls: CheckoutUrls) -> Checkout: ...

    def parse_notification(self, request: IncomingRequest) -> Notification:
        """Verify (signature, freshness, merchant) and parse; raise NotificationRefused."""
        ...

    async def query(self, order: Order) -> PaymentReport: ...

    async def cancel(self, order: Order) -> None:
        """Close an unpaid checkout so that it cannot be paid any more (best effort)."""
        ...

    async def refund(self, order: Order, line: RefundLine) -> RefundReport: ...

    async def refund_status(self, order: Order, line: RefundLine) -> RefundReport: ...
