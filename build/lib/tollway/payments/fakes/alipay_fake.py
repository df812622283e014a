"""An Alipay open-API gateway (``/gateway.do``) for the official ``python-alipay-sdk``.

It has its own RSA key pair (Alipay's) and issues the merchant's key pair, verifies every
request's RSA2 signature against the merchant's public key, and signs every answer the way
Alipay does (over the exact JSON text of ``<method>_response``). Methods: page pay (the
cashier page), precreate (QR), query, close, refund (idempotent per ``out_request_no``) and
refund query. Controls: the buyer pays, the refund window closes (``TRADE_FINISHED``), and
signed async notifications to deliver.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tollway.payments.fakes.forms import flat
from tollway.payments.fakes.keys import KeyPair
from tollway.payments.fakes.server import ThreadedServer

Json = dict[str, Any]
SUCCESS = {"code": "10000", "msg": "Success"}


def _fail(sub_code: str, sub_msg: str) -> Json:
    return {"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}


def signing_string(params: dict[str, str], *, exclude: tuple[str, ...]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in exclude)


class FakeAlipay:
    def __init__(self, *, app_id: str = "2021000000000001", seller_id: str = "2088000000000001") -> None:
        self.app_id = app_id
        self.seller_id = seller_id
        self.app_keys = KeyPair.generate()  # the merchant's (Tollway's) key pair
        self.alipay_keys = KeyPair.generate()  # Alipay's key pair
        self.trades: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.refund_failure: str | None = None  # a sub_code to refuse the next refunds with
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadedServer | None = None
        self.url = ""

    @property
    def gateway(self) -> str:
        return f"{self.url}/gateway.do"

    def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/gateway.do", self._gateway)
        self._server = ThreadedServer(app)
        self.url = self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> FakeAlipay:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- the gateway ---------------------------------------------------------------------------

    def _answer(self, method: str, body: Json) -> web.Response:
        inner = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        name = method.replace(".", "_") + "_response"
        text = f'{{"{name}":{inner},"sign":"{self.alipay_keys.sign(inner)}"}}'
        return web.Response(text=text, content_type="application/json", charset="utf-8")

    async def _gateway(self, request: web.Request) -> web.Response:
        params = flat(request.query_string)
        if request.method == "POST":
            params.update(flat(await request.text()))
        method = params.get("method", "")
        self.calls.append(method)
        signature = params.pop("sign", "")
        if not self.app_keys.verify(signing_string(params, exclude=()), signature):
            error = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"}
            return web.json_response({"error_response": error})
        if params.get("app_id") != self.app_id:
            error = {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-id"}
            return web.json_response({"error_response": error})
        biz = json.loads(params.get("biz_content") or "{}")
        with self._lock:
            if method == "alipay.trade.page.pay":
                trade = self._open(biz, params)
                return web.Response(text=f"<h1>Alipay cashier (fake)</h1><p>{trade['out_trade_no']}</p>")
            handler = {
                "alipay.trade.precreate": self._precreate,
                "alipay.trade.query": self._query,
                "alipay.trade.close": self._close,
                "alipay.trade.refund": self._refund,
                "alipay.trade.fastpay.refund.query": self._refund_query,
            }.get(method)
            if handler is None:
                return self._answer(method, _fail("isv.invalid-method", f"unknown method {method}"))
            return self._answer(method, handler(biz, params))

    def _open(self, biz: Json, params: dict[str, str]) -> Json:
        number = biz["out_trade_no"]
        return self.trades.setdefault(
            number,
            {
                "out_trade_no": number,
                "trade_no": time.strftime("%Y%m%d") + secrets.token_hex(10),
                "total_amount": biz["total_amount"],
                "subject": biz.get("subject", ""),
                "trade_status": "WAIT_BUYER_PAY",
                "notify_url": params.get("notify_url"),
                "refunded": "0.00",
            },
        )

    def _precreate(self, biz: Json, params: dict[str, str]) -> Json:
        trade = self._open(biz, params)
        return {
            **SUCCESS,
            "out_trade_no": trade["out_trade_no"],
            "qr_code": f"https://qr.alipay.test/{trade['trade_no']}",
        }

    def _query(self, biz: Json, params: dict[str, str]) -> Json:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return _fail("ACQ.TRADE_NOT_EXIST", "交易不存在")
        fields = ("out_trade_no", "trade_no", "trade_status", "total_amount")
        return {**SUCCESS, **{k: trade[k] for k in fields}, "buyer_logon_id": "buy***@example.com"}

    def _close(self, biz: Json, params: dict[str, str]) -> Json:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return _fail("ACQ.TRADE_NOT_EXIST", "交易不存在")
        if trade["trade_status"] != "WAIT_BUYER_PAY":
            return _fail("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade["trade_status"] = "TRADE_CLOSED"
        return {**SUCCESS, "out_trade_no": trade["out_trade_no"], "trade_no": trade["trade_no"]}

    def _refund(self, biz: Json, params: dict[str, str]) -> Json:
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return _fail("ACQ.TRADE_NOT_EXIST", "交易不存在")
        request_no = biz.get("out_request_no", "")
        if request_no in self.refunds:  # a retry of the same refund: no money moves again
            return {
                **SUCCESS,
                "trade_no": trade["trade_no"],
                "fund_change": "N",
                "refund_fee": trade["refunded"],
            }
        if self.refund_failure:
            return _fail(self.refund_failure, "refund refused by the fake")
        if trade["trade_status"] not in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            return _fail("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        amount = Decimal(biz["refund_amount"])
        if amount <= 0 or Decimal(trade["refunded"]) + amount > Decimal(trade["total_amount"]):
            return _fail("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        trade["refunded"] = f"{Decimal(trade['refunded']) + amount:.2f}"
        self.refunds[request_no] = {"out_trade_no": trade["out_trade_no"], "refund_amount": f"{amount:.2f}"}
        return {**SUCCESS, "trade_no": trade["trade_no"], "fund_change": "Y", "refund_fee": trade["refunded"]}

    def _refund_query(self, biz: Json, params: dict[str, str]) -> Json:
        refund = self.refunds.get(biz.get("out_request_no", ""))
        if refund is None:
            return {**SUCCESS, "out_trade_no": biz.get("out_trade_no")}
        return {
            **SUCCESS,
            **refund,
            "out_request_no": biz["out_request_no"],
            "refund_status": "REFUND_SUCCESS",
        }

    # --- controls ------------------------------------------------------------------------------

    def pay(self, out_trade_no: str) -> Json:
        with self._lock:
            trade = self.trades[out_trade_no]
            trade["trade_status"] = "TRADE_SUCCESS"
            trade["gmt_payment"] = time.strftime("%Y-%m-%d %H:%M:%S")
            return dict(trade)

    def finish(self, out_trade_no: str) -> Json:
        """The refund window closed: Alipay sends TRADE_FINISHED for the same payment."""
        with self._lock:
            self.trades[out_trade_no]["trade_status"] = "TRADE_FINISHED"
            return dict(self.trades[out_trade_no])

    def notification(
        self, out_trade_no: str, *, overrides: dict[str, str] | None = None, keys: KeyPair | None = None
    ) -> dict[str, str]:
        """The async notify form Alipay POSTs for the trade's current status (signed)."""
        with self._lock:
            trade = dict(self.trades[out_trade_no])
        params = {
            "notify_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "trade_no": trade["trade_no"],
            "out_trade_no": out_trade_no,
            "buyer_id": "2088102177846880",
            "seller_id": self.seller_id,
            "trade_status": trade["trade_status"],
            "total_amount": trade["total_amount"],
            "receipt_amount": trade["total_amount"],
            "buyer_pay_amount": trade["total_amount"],
            "subject": trade["subject"],
            "gmt_payment": trade.get("gmt_payment", ""),
            **(overrides or {}),
        }
        params["sign"] = (keys or self.alipay_keys).sign(
            signing_string(params, exclude=("sign", "sign_type"))
        )
        return params

    @staticmethod
    def form(params: dict[str, str]) -> bytes:
        return urlencode(params).encode()
