"""Manual orders: no checkout and no notifications; staff credit them (``tollway admin order
credit``) and refund them by paying back outside Tollway, which is recorded as confirmed."""

from __future__ import annotations

from tollway.payments.errors import NotificationRefused
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


class ManualProvider:
    name = "manual"
    methods: tuple[str, ...] = ("manual",)
    currencies: frozenset[str] | None = None

    async def create_checkout(self, order: Order, urls: CheckoutUrls) -> Checkout:
        return Checkout(pay_url=None)

    def parse_notification(self, request: IncomingRequest) -> Notification:
        raise NotificationRefused("manual orders have no provider notifications")

    async def query(self, order: Order) -> PaymentReport:
        return PaymentReport(order.order_number, PaymentState.PENDING)  # only staff know

    async def cancel(self, order: Order) -> None:
        return None

    async def refund(self, order: Order, line: RefundLine) -> RefundReport:
        return RefundReport(line.out_request_no, RefundState.SUCCEEDED, message="paid back by staff")

    async def refund_status(self, order: Order, line: RefundLine) -> RefundReport:
        return RefundReport(line.out_request_no, RefundState.SUCCEEDED, message="paid back by staff")
