"""Alipay (RSA2) through ``python-alipay-sdk``.

- ``page``: a signed ``alipay.trade.page.pay`` URL on the gateway (no server call);
  ``qr``: ``alipay.trade.precreate`` returns a QR code for the customer's phone.
- Notify: the POSTed form, ``sign`` verified over the sorted ``k=v`` pairs with Alipay's public
  key; ``app_id`` (and ``seller_id`` when configured) must be ours; answered ``success``.
  ``TRADE_SUCCESS`` and later ``TRADE_FINISHED`` (the refund window closed) are two
  notifications about one payment: both mean paid, and the order is credited once.
- Refunds: ``alipay.trade.refund`` with the refund's unique ``out_request_no`` (reused on every
  retry); ``alipay.trade.fastpay.refund.query`` confirms an uncertain outcome.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alipay import AliPay  # type: ignore[import-untyped]
from alipay.exceptions import AliPayException, AliPayValidationError  # type: ignore[import-untyped]

from tollway.errors import InvalidRequest
from tollway.payments.amounts import format_minor, parse_amount
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

Json = dict[str, Any]
DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
PAID = ("TRADE_SUCCESS", "TRADE_FINISHED")
OK = "10000"
RETRYABLE = {"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR"}


class GatewayAliPay(AliPay):  # type: ignore[misc]
    """The SDK's client with a configurable gateway (``TOLLWAY_ALIPAY_GATEWAY``)."""

    def __init__(self, *, gateway: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gateway = gateway


class AlipayProvider:
    name = "alipay"
    methods: tuple[str, ...] = ("page", "qr")
    currencies: frozenset[str] | None = frozenset({"CNY"})

    def __init__(
        self,
        *,
        app_id: str,
        private_key: str,
        alipay_public_key: str,
        gateway: str | None,
        seller_id: str | None,
    ) -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.gateway = gateway or DEFAULT_GATEWAY
        self.client = GatewayAliPay(
            gateway=self.gateway,
            appid=app_id,
            app_private_key_string=private_key,
            alipay_public_key_string=alipay_public_key,
            sign_type="RSA2",
        )

    async def _call(self, what: str, fn: Callable[[], Json]) -> Json:
        try:
            result = await asyncio.to_thread(fn)
        except AliPayValidationError as exc:
            raise ProviderError(f"Alipay {what}: the answer's signature did not verify") from exc
        except (AliPayException, OSError, ValueError) as exc:
            raise ProviderError(f"Alipay {what} failed: {exc}") from exc
        if not isinstance(result, dict):
            raise ProviderError(f"Alipay {what}: unexpected answer")
        return result

    async def create_checkout(self, order: Order, urls: CheckoutUrls) -> Checkout:
        amount = format_minor(order.amount_minor, order.currency)
        subject = f"Tollway top-up {order.order_number}"
        minutes = max(1, math.ceil((order.expires_at - datetime.now(UTC)).total_seconds() / 60))
        if order.method == "qr":
            doc = await self._call(
                "precreate",
                lambda: self.client.api_alipay_trade_precreate(
                    subject=subject,
                    out_trade_no=order.order_number,
                    total_amount=amount,
                    notify_url=urls.notify_url,
                    timeout_express=f"{minutes}m",
                ),
            )
            if doc.get("code") != OK or not doc.get("qr_code"):
                raise ProviderError(f"Alipay precreate refused: {_why(doc)}")
            return Checkout(pay_url=None, qr_code=str(doc["qr_code"]))
        query = self.client.api_alipay_trade_page_pay(
            subject=subject,
            out_trade_no=order.order_number,
            total_amount=amount,
            return_url=urls.return_url,
            notify_url=urls.notify_url,
            timeout_express=f"{minutes}m",
        )
        return Checkout(pay_url=f"{self.gateway}?{query}")

    def parse_notification(self, request: IncomingRequest) -> Notification:
        params = dict(request.params)
        order_number = params.get("out_trade_no") or None
        signature = params.pop("sign", "")
        try:
            verified = bool(signature) and bool(self.client.verify(params, signature))
        except (AliPayException, ValueError, TypeError):
            verified = False
        if not verified:
            raise NotificationRefused(
                "Alipay notification: bad or missing signature", order_number=order_number
            )
        if params.get("app_id") != self.app_id:
            raise NotificationRefused(
                f"Alipay notification for app {params.get('app_id')!r}, not ours", order_number=order_number
            )
        if self.seller_id and params.get("seller_id") != self.seller_id:
            raise NotificationRefused(
                f"Alipay notification for seller {params.get('seller_id')!r}, not ours",
                order_number=order_number,
            )
        if not order_number:
            raise NotificationRefused("Alipay notification without out_trade_no")
        status = params.get("trade_status", "")
        report = _trade_report(order_number, status, params)
        key = params.get("notify_id") or params.get("trade_no") or order_number
        return Notification(f"{key}:{status}", status or "unknown", payment=report)

    async def query(self, order: Order) -> PaymentReport:
        doc = await self._call(
            "query", lambda: self.client.api_alipay_trade_query(out_trade_no=order.order_number)
        )
        if doc.get("code") != OK:
            return PaymentReport(order.order_number, PaymentState.UNKNOWN)  # ACQ.TRADE_NOT_EXIST
        return _trade_report(order.order_number, str(doc.get("trade_status", "")), doc)

    async def cancel(self, order: Order) -> None:
        try:
            await asyncio.to_thread(
                lambda: self.client.api_alipay_trade_close(out_trade_no=order.order_number)
            )
        except (AliPayException, AliPayValidationError, OSError, ValueError):
            return  # not created at Alipay, or already paid: a late payment is still credited

    async def refund(self, order: Order, line: RefundLine) -> RefundReport:
        doc = await self._call(
            "refund",
            lambda: self.client.api_alipay_trade_refund(
                refund_amount=format_minor(line.amount_minor, line.currency),
                out_trade_no=order.order_number,
                out_request_no=line.out_request_no,
                refund_reason=line.reason[:256],
            ),
        )
        if doc.get("code") == OK:
            if doc.get("fund_change") == "Y":
                return RefundReport(line.out_request_no, RefundState.SUCCEEDED, doc.get("trade_no"))
            return await self.refund_status(order, line)  # a repeat: ask what happened the first time
        if doc.get("sub_code") in RETRYABLE:
            return RefundReport(line.out_request_no, RefundState.PENDING, message=_why(doc))
        return RefundReport(line.out_request_no, RefundState.FAILED, message=f"Alipay refused: {_why(doc)}")

    async def refund_status(self, order: Order, line: RefundLine) -> RefundReport:
        doc = await self._call(
            "refund query",
            lambda: self.client.api_alipay_trade_fastpay_refund_query(
                line.out_request_no, out_trade_no=order.order_number
            ),
        )
        if doc.get("code") != OK:
            return RefundReport(line.out_request_no, RefundState.PENDING, message=_why(doc))
        if doc.get("refund_status") == "REFUND_SUCCESS" or (
            "refund_status" not in doc and doc.get("refund_amount")
        ):
            return RefundReport(line.out_request_no, RefundState.SUCCEEDED, doc.get("trade_no"))
        return RefundReport(line.out_request_no, RefundState.FAILED, message="Alipay has no such refund")


def _why(doc: Json) -> str:
    return str(doc.get("sub_msg") or doc.get("msg") or doc.get("sub_code") or "no reason given")


def _trade_report(order_number: str, status: str, fields: Json) -> PaymentReport:
    if status in PAID:
        state = PaymentState.PAID
    elif status == "TRADE_CLOSED":
        state = PaymentState.EXPIRED  # closed unpaid (a credited order ignores this)
    else:
        state = PaymentState.PENDING
    try:
        amount: int | None = parse_amount(str(fields.get("total_amount", "")), "CNY", param="total_amount")
    except InvalidRequest:
        amount = None
    return PaymentReport(
        order_number=order_number,
        state=state,
        amount_minor=amount,
        currency="CNY",
        provider_ref=str(fields["trade_no"]) if fields.get("trade_no") else None,
    )
