"""A Stripe API subset the official SDK can talk to: Checkout Sessions (create, retrieve,
expire), Payment Intents (retrieve), Refunds (create with Idempotency-Key replay, retrieve),
signed webhook events (``Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``), and a
hosted checkout page (``stripe_checkout``) for browser tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

from aiohttp import web

from tollway.payments.fakes.forms import nested
from tollway.payments.fakes.server import ThreadedServer
from tollway.payments.fakes.stripe_checkout import add_checkout_pages

Json = dict[str, Any]


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _public(obj: Json) -> Json:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _error(
    status: int, message: str, *, code: str | None = None, kind: str = "invalid_request_error"
) -> web.Response:
    return web.json_response({"error": {"type": kind, "code": code, "message": message}}, status=status)


class FakeStripe:
    def __init__(self, *, secret_key: str = "sk_test_tollway", webhook_secret: str = "whsec_tollway") -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.sessions: dict[str, Json] = {}
        self.intents: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.refund_status = "succeeded"  # what the next refunds report: succeeded | pending | failed
        self.calls: list[tuple[str, str]] = []
        self._replays: dict[str, tuple[int, Json]] = {}
        self._lock = threading.Lock()
        self._server: ThreadedServer | None = None
        self.url = ""
        # Where the hosted checkout page sends its signed events (None: nowhere), and what came back.
        self.webhook_url: str | None = None
        self.deliveries: list[tuple[str, int]] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        self._server = ThreadedServer(self.app())
        self.url = self._server.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> FakeStripe:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create_session)
        app.router.add_get("/v1/checkout/sessions/{id}", self._get("sessions", "checkout.session"))
        app.router.add_post("/v1/checkout/sessions/{id}/expire", self._expire_session)
        app.router.add_get("/v1/payment_intents/{id}", self._get("intents", "payment_intent"))
        app.router.add_post("/v1/refunds", self._create_refund)
        app.router.add_get("/v1/refunds/{id}", self._get("refunds", "refund"))
        add_checkout_pages(app, self)
        return app

    # --- HTTP ----------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        self.calls.append((request.method, request.path))
        return request.headers.get("Authorization") == f"Bearer {self.secret_key}"

    def _get(self, store: str, name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            if not self._authorised(request):
                return _error(401, "Invalid API Key provided")
            with self._lock:
                obj = getattr(self, store).get(request.match_info["id"])
            if obj is None:
                return _error(404, f"No such {name}: '{request.match_info['id']}'", code="resource_missing")
            return web.json_response(_public(obj))

        return handler

    async def _idempotent(self, request: web.Request, create: Any) -> web.Response:
        if not self._authorised(request):
            return _error(401, "Invalid API Key provided")
        params = nested(await request.text())
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            if key and key in self._replays:
                status, body = self._replays[key]
                return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})
            status, body = create(params)
            if key:
                self._replays[key] = (status, body)
        return web.json_response(body, status=status)

    async def _create_session(self, request: web.Request) -> web.Response:
        return await self._idempotent(request, self._new_session)

    def _new_session(self, p: Json) -> tuple[int, Json]:
        items = p.get("line_items") or []
        if p.get("mode") != "payment" or not items or not p.get("success_url"):
            return 400, {
                "error": {"type": "invalid_request_error", "message": "mode, line_items, success_url"}
            }
        price = items[0].get("price_data", {})
        amount = int(price["unit_amount"]) * int(items[0].get("quantity", 1))
        sid = _id("cs_test")
        session = {
            "id": sid,
            "object": "checkout.session",
            "amount_total": amount,
            "currency": price["currency"],
            "client_reference_id": p.get("client_reference_id"),
            "metadata": p.get("metadata", {}),
            "mode": "payment",
            "payment_status": "unpaid",
            "status": "open",
            "payment_intent": None,
            "success_url": p["success_url"],
            "cancel_url": p.get("cancel_url"),
            "expires_at": int(p.get("expires_at", time.time() + 86400)),
            "created": int(time.time()),
            "livemode": False,
            "url": f"{self.url}/checkout/{sid}",
            "_pi_metadata": p.get("payment_intent_data", {}).get("metadata", {}),
        }
        self.sessions[sid] = session
        return 200, _public(session)

    async def _expire_session(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "Invalid API Key provided")
        with self._lock:
            session = self.sessions.get(request.match_info["id"])
            if session is None:
                return _error(404, "No such checkout.session", code="resource_missing")
            if session["status"] != "open":
                return _error(400, f"Only open sessions can be expired (this one is {session['status']})")
            session["status"] = "expired"
            return web.json_response(_public(session))

    async def _create_refund(self, request: web.Request) -> web.Response:
        return await self._idempotent(request, self._new_refund)

    def _new_refund(self, p: Json) -> tuple[int, Json]:
        pi = self.intents.get(p.get("payment_intent", ""))
        if pi is None or pi["status"] != "succeeded":
            return 400, {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}}
        left = pi["amount"] - pi["amount_refunded"]
        amount = int(p.get("amount", left))
        if amount > left or amount <= 0:
            message = f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
            return 400, {
                "error": {"type": "invalid_request_error", "code": "amount_too_large", "message": message}
            }
        refund = {
            "id": _id("re"),
            "object": "refund",
            "amount": amount,
            "currency": pi["currency"],
            "payment_intent": pi["id"],
            "charge": pi["latest_charge"],
            "reason": p.get("reason"),
            "metadata": p.get("metadata", {}),
            "status": self.refund_status,
            "failure_reason": "declined" if self.refund_status == "failed" else None,
            "created": int(time.time()),
        }
        if refund["status"] != "failed":
            pi["amount_refunded"] += amount
        self.refunds[refund["id"]] = refund
        return 200, refund

    # --- controls (what the customer and Stripe do) --------------------------------------------

    def _intent(self, session: Json, status: str) -> Json:
        pid = session["payment_intent"] or _id("pi")
        intent = self.intents.setdefault(
            pid,
            {
                "id": pid,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_refunded": 0,
                "currency": session["currency"],
                "metadata": session["_pi_metadata"],
                "latest_charge": _id("ch"),
                "last_payment_error": None,
            },
        )
        intent["status"] = status
        session["payment_intent"] = pid
        return intent

    def pay(self, session_id: str, *, delayed: bool = False) -> Json:
        """The customer paid (``delayed``: a bank debit that settles later)."""
        with self._lock:
            session = self.sessions[session_id]
            self._intent(session, "processing" if delayed else "succeeded")
            session["status"] = "complete"
            session["payment_status"] = "unpaid" if delayed else "paid"
            return dict(session)

    def settle(self, session_id: str, *, succeeded: bool = True) -> Json:
        """A delayed payment settled (or failed)."""
        with self._lock:
            session = self.sessions[session_id]
            self._intent(session, "succeeded" if succeeded else "requires_payment_method")
            session["payment_status"] = "paid" if succeeded else "unpaid"
            return dict(session)

    def decline(self, session_id: str, decline_code: str = "insufficient_funds") -> Json:
        with self._lock:
            session = self.sessions[session_id]
            intent = self._intent(session, "requires_payment_method")
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": "Your card was declined.",
            }
            return dict(intent)

    def set_refund_status(self, refund_id: str, status: str) -> Json:
        with self._lock:
            refund = self.refunds[refund_id]
            if status == "failed" and refund["status"] != "failed":
                self.intents[refund["payment_intent"]]["amount_refunded"] -= refund["amount"]
            refund["status"] = status
            refund["failure_reason"] = "declined" if status == "failed" else None
            return dict(refund)

    def event(self, kind: str, obj: Json) -> Json:
        data = _public(obj)
        return {
            "id": _id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "data": {"object": data},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }

    def signed(
        self, event: Json, *, secret: str | None = None, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        """The raw body and ``Stripe-Signature`` header Stripe would send."""
        body = json.dumps(event).encode()
        t = int(time.time()) if timestamp is None else timestamp
        key = (secret or self.webhook_secret).encode()
        signature = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return body, f"t={t},v1={signature}"
