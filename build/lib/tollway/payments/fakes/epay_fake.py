"""An EPay (易支付) endpoint: ``submit.php`` (the cashier, signature checked), ``api.php``
with ``act=order`` (query) and ``act=refund``, and signed notifications to deliver."""

from __future__ import annotations

import secrets
import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tollway.payments.epay import protocol
from tollway.payments.fakes.forms import flat
from tollway.payments.fakes.server import ThreadedServer

Json = dict[str, Any]


class FakeEPay:
    def __init__(self, *, pid: str = "1001", key: str = "epay-merchant-key-for-tests") -> None:
        self.pid = pid
        self.key = key
        self.orders: dict[str, Json] = {}
        self.refund_ok = True
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadedServer | None = None
        self.url = ""

    def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/submit.php", self._submit)
        app.router.add_route("*", "/api.php", self._api)
        self._server = ThreadedServer(app)
        self.url = self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> FakeEPay:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = flat(request.query_string)
        if request.method == "POST":
            params.update(flat(await request.text()))
        return params

    async def _submit(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        self.calls.append("submit")
        if params.get("pid") != self.pid or not protocol.verify(params, self.key):
            return web.Response(text="签名错误 (bad signature)", status=400)
        with self._lock:
            self.orders.setdefault(
                params["out_trade_no"],
                {
                    "out_trade_no": params["out_trade_no"],
                    "trade_no": time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(4),
                    "type": params.get("type", "alipay"),
                    "name": params.get("name", ""),
                    "money": params["money"],
                    "notify_url": params.get("notify_url"),
                    "return_url": params.get("return_url"),
                    "status": 0,
                    "refunded": "0.00",
                },
            )
        return web.Response(
            text=f"<h1>EPay cashier (fake)</h1><p>{params['out_trade_no']}</p>", content_type="text/html"
        )

    async def _api(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        act = params.get("act", "")
        self.calls.append(act)
        if params.get("pid") != self.pid or params.get("key") != self.key:
            return web.json_response({"code": -1, "msg": "商户不存在或密钥错误"})
        with self._lock:
            order = self.orders.get(params.get("out_trade_no", ""))
            if order is None:
                return web.json_response({"code": -1, "msg": "订单不存在"})
            if act == "order":
                fields = ("trade_no", "out_trade_no", "type", "name", "money", "status")
                return web.json_response(
                    {"code": 1, "msg": "查询订单号成功！", "pid": self.pid, **{k: order[k] for k in fields}}
                )
            if act == "refund":
                return web.json_response(self._refund(order, params.get("money", "")))
        return web.json_response({"code": -1, "msg": f"unknown act {act!r}"})

    def _refund(self, order: Json, money: str) -> Json:
        if not self.refund_ok:
            return {"code": -1, "msg": "退款失败 (refused by the fake)"}
        amount = Decimal(money or "0")
        if (
            order["status"] != 1
            or amount <= 0
            or Decimal(order["refunded"]) + amount > Decimal(order["money"])
        ):
            return {"code": -1, "msg": "退款金额错误"}
        order["refunded"] = f"{Decimal(order['refunded']) + amount:.2f}"
        return {"code": 1, "msg": "退款成功"}

    # --- controls ------------------------------------------------------------------------------

    def pay(self, out_trade_no: str) -> Json:
        with self._lock:
            self.orders[out_trade_no]["status"] = 1
            return dict(self.orders[out_trade_no])

    def notification(
        self, out_trade_no: str, *, overrides: dict[str, str] | None = None, key: str | None = None
    ) -> dict[str, str]:
        with self._lock:
            order = dict(self.orders[out_trade_no])
        params = {
            "pid": self.pid,
            "trade_no": order["trade_no"],
            "out_trade_no": out_trade_no,
            "type": order["type"],
            "name": order["name"],
            "money": order["money"],
            "trade_status": "TRADE_SUCCESS" if order["status"] == 1 else "WAIT_BUYER_PAY",
            **(overrides or {}),
        }
        return protocol.signed(params, key or self.key)

    @staticmethod
    def query_string(params: dict[str, str]) -> str:
        return urlencode(params)
