"""EPay through its HTTP protocol: ``submit.php`` checkout, signed notify (GET or POST),
``api.php?act=order`` query and ``api.php?act=refund`` refunds (the V1 "Rainbow" API)."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tollway.errors import InvalidRequest
from tollway.payments.amounts import format_minor, parse_amount
from tollway.payments.epay import protocol
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

TIMEOUT = aiohttp.ClientTimeout(total=15)


class EPayProvider:
    name = "epay"
    methods: tuple[str, ...] = ("alipay", "wxpay", "qqpay")
    currencies: frozenset[str] | None = frozenset({"CNY"})

    def __init__(self, base_url: str, pid: str, key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.pid = pid
        self.key = key

    async def create_checkout(self, order: Order, urls: CheckoutUrls) -> Checkout:
        params = protocol.submit_params(
            pid=self.pid,
            key=self.key,
            pay_type=order.method or self.methods[0],
            out_trade_no=order.order_number,
            notify_url=urls.notify_url,
            return_url=urls.return_url,
            name=f"Tollway top-up {order.order_number}",
            money=format_minor(order.amount_minor, order.currency),
        )
        return Checkout(pay_url=protocol.submit_url(self.base_url, params))

    def parse_notification(self, request: IncomingRequest) -> Notification:
        params = dict(request.params)
        order_number = params.get("out_trade_no") or None
        if not protocol.verify(params, self.key):
            raise NotificationRefused(
                "EPay notification: bad or missing signature", order_number=order_number
            )
        if params.get("pid", "") != self.pid:
            raise NotificationRefused(
                f"EPay notification for merchant {params.get('pid')!r}, not ours", order_number=order_number
            )
        if not order_number or not params.get("trade_no"):
            raise NotificationRefused("EPay notification without out_trade_no / trade_no")
        status = params.get("trade_status", "")
        state = PaymentState.PAID if status == protocol.PAID_STATUS else PaymentState.PENDING
        report = PaymentReport(
            order_number=order_number,
            state=state,
            amount_minor=_money(params.get("money", "")),
            currency="CNY",
            provider_ref=params["trade_no"],
        )
        return Notification(f"{params['trade_no']}:{status}", status or "unknown", payment=report)

    async def _api(self, act: str, method: str, **fields: str) -> dict[str, Any]:
        data = {"act": act, "pid": self.pid, "key": self.key, **fields}
        url = f"{self.base_url}/api.php"
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
                if method == "GET":
                    resp = await http.get(url, params=data)
                else:
                    resp = await http.post(url, params={"act": act}, data=data)
                async with resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise ProviderError(f"EPay {act}: HTTP {resp.status}")
            doc = orjson.loads(body)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise ProviderError(f"EPay {act} failed: {exc or type(exc).__name__}") from exc
        if not isinstance(doc, dict):
            raise ProviderError(f"EPay {act}: unexpected answer")
        return doc

    async def query(self, order: Order) -> PaymentReport:
        doc = await self._api("order", "GET", out_trade_no=order.order_number)
        if str(doc.get("code")) != "1":
            # "order not found": the customer never reached the cashier.
            return PaymentReport(order.order_number, PaymentState.UNKNOWN)
        if str(doc.get("pid", self.pid)) != self.pid:
            raise ProviderError("EPay answered about another merchant's order")
        paid = str(doc.get("status")) == "1"
        return PaymentReport(
            order_number=order.order_number,
            state=PaymentState.PAID if paid else PaymentState.PENDING,
            amount_minor=_money(str(doc.get("money", ""))),
            currency="CNY",
            provider_ref=str(doc["trade_no"]) if doc.get("trade_no") else None,
        )

    async def cancel(self, order: Order) -> None:
        return None  # EPay has no close call; a late payment is still credited

    async def refund(self, order: Order, line: RefundLine) -> RefundReport:
        doc = await self._api(
            "refund",
            "POST",
            out_trade_no=order.order_number,
            money=format_minor(line.amount_minor, line.currency),
        )
        if str(doc.get("code")) == "1":
            return RefundReport(line.out_request_no, RefundState.SUCCEEDED, message=str(doc.get("msg", "")))
        return RefundReport(
            line.out_request_no, RefundState.FAILED, message=f"EPay refused: {doc.get('msg', 'no reason')}"
        )

    async def refund_status(self, order: Order, line: RefundLine) -> RefundReport:
        # EPay has no refund query: an unknown outcome stays pending for staff to settle.
        return RefundReport(line.out_request_no, RefundState.PENDING, message="EPay has no refund query")


def _money(text: str) -> int | None:
    try:
        return parse_amount(text, "CNY", param="money")
    except InvalidRequest:
        return None
