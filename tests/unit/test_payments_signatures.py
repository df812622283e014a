"""Notification verification as pure functions: EPay MD5, Stripe-Signature (through the SDK),
Alipay RSA2 (through the SDK), plus decline wording and order matching."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tollway.payments.alipay import AlipayProvider
from tollway.payments.checks import mismatch
from tollway.payments.epay import EPayProvider, protocol
from tollway.payments.errors import NotificationRefused
from tollway.payments.fakes.alipay_fake import signing_string
from tollway.payments.fakes.keys import KeyPair
from tollway.payments.model import Order, OrderState, RefundState
from tollway.payments.provider import IncomingRequest, PaymentReport, PaymentState
from tollway.payments.stripe import StripeProvider
from tollway.payments.stripe.declines import GENERIC, decline_message

KEY = "merchant-key"


def req(
    params: dict[str, str] | None = None, body: bytes = b"", headers: dict[str, str] | None = None
) -> IncomingRequest:
    return IncomingRequest("POST", headers or {}, "", body, params or {})


# --- EPay ------------------------------------------------------------------------------------


def test_epay_signature_vector() -> None:
    params = {
        "pid": "1001",
        "type": "alipay",
        "out_trade_no": "T1",
        "money": "1.00",
        "name": "n",
        "empty": "",
    }
    expected = hashlib.md5(
        b"money=1.00&name=n&out_trade_no=T1&pid=1001&type=alipay" + KEY.encode()
    ).hexdigest()
    assert protocol.signing_string({**params, "sign": "x", "sign_type": "MD5"}) == (
        "money=1.00&name=n&out_trade_no=T1&pid=1001&type=alipay"
    )
    signed = protocol.signed(params, KEY)
    assert signed["sign"] == expected and signed["sign_type"] == "MD5" and "empty" not in signed
    assert protocol.verify(signed, KEY)
    assert protocol.verify({**signed, "sign": expected.upper()}, KEY)
    assert not protocol.verify({**signed, "money": "100.00"}, KEY)
    assert not protocol.verify({k: v for k, v in signed.items() if k != "sign"}, KEY)
    assert not protocol.verify(signed, "")
    url = protocol.submit_url("https://pay.example/", signed)
    assert url.startswith("https://pay.example/submit.php?") and "sign=" + expected in url


def test_epay_notifications() -> None:
    provider = EPayProvider("https://pay.example", "1001", KEY)
    base = {"pid": "1001", "trade_no": "E1", "out_trade_no": "TW1", "type": "alipay", "money": "10.00"}
    note = provider.parse_notification(req(protocol.signed({**base, "trade_status": "TRADE_SUCCESS"}, KEY)))
    assert note.dedupe_key == "E1:TRADE_SUCCESS" and note.payment is not None
    assert (note.payment.state, note.payment.amount_minor, note.payment.currency) == (
        PaymentState.PAID,
        1000,
        "CNY",
    )
    waiting = provider.parse_notification(req(protocol.signed({**base, "trade_status": "WAIT"}, KEY)))
    assert waiting.payment is not None and waiting.payment.state is PaymentState.PENDING
    bad_money = provider.parse_notification(req(protocol.signed({**base, "money": "x"}, KEY)))
    assert bad_money.payment is not None and bad_money.payment.amount_minor is None
    with pytest.raises(NotificationRefused, match="not ours") as info:
        provider.parse_notification(req(protocol.signed({**base, "pid": "2002"}, KEY)))
    assert info.value.order_number == "TW1"
    with pytest.raises(NotificationRefused, match="signature"):
        provider.parse_notification(req(protocol.signed(base, "other-key")))


# --- Stripe ----------------------------------------------------------------------------------

SECRET = "whsec_unit"


def stripe() -> StripeProvider:
    return StripeProvider("sk_test_unit", SECRET, api_base="http://127.0.0.1:9", tolerance_s=300)


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_1", "object": "event", "type": kind, "data": {"object": obj}}


def signed(doc: dict[str, Any], *, secret: str = SECRET, t: int | None = None) -> IncomingRequest:
    body = json.dumps(doc).encode()
    t = int(time.time()) if t is None else t
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return req(body=body, headers={"stripe-signature": f"t={t},v1={sig}"})


SESSION = {
    "id": "cs_1",
    "object": "checkout.session",
    "client_reference_id": "TW1",
    "metadata": {"order_number": "TW1"},
    "amount_total": 1000,
    "currency": "usd",
    "status": "complete",
    "payment_status": "paid",
    "payment_intent": "pi_1",
}


def test_stripe_signature_scheme() -> None:
    note = stripe().parse_notification(signed(event("checkout.session.completed", SESSION)))
    assert note.dedupe_key == "evt_1" and note.payment == PaymentReport(
        "TW1", PaymentState.PAID, 1000, "USD", "cs_1", "pi_1"
    )
    stale = signed(event("checkout.session.completed", SESSION), t=int(time.time()) - 301)
    with pytest.raises(NotificationRefused, match="Timestamp outside the tolerance zone") as info:
        stripe().parse_notification(stale)
    assert info.value.order_number == "TW1"  # recorded on the order it claims, for support
    with pytest.raises(NotificationRefused, match="signature"):
        stripe().parse_notification(
            signed(event("checkout.session.completed", SESSION), secret="whsec_other")
        )
    good = signed(event("checkout.session.completed", SESSION))
    tampered = IncomingRequest("POST", good.headers, "", good.body.replace(b"1000", b"1"), {})
    with pytest.raises(NotificationRefused):
        stripe().parse_notification(tampered)
    with pytest.raises(NotificationRefused):
        stripe().parse_notification(req(body=good.body))
    # Secret rotation: Stripe sends one v1 per secret; any valid one is enough.
    t = good.headers["stripe-signature"].split(",")[0]
    rotated = IncomingRequest(
        "POST",
        {"stripe-signature": f"{t},v1=deadbeef,{good.headers['stripe-signature'].split(',')[1]}"},
        "",
        good.body,
        {},
    )
    assert stripe().parse_notification(rotated).payment is not None


def test_stripe_event_types() -> None:
    p = stripe()
    unpaid = p.parse_notification(
        signed(event("checkout.session.completed", {**SESSION, "payment_status": "unpaid"}))
    )
    assert unpaid.payment is not None and unpaid.payment.state is PaymentState.PENDING
    failed = p.parse_notification(signed(event("checkout.session.async_payment_failed", SESSION)))
    assert (
        failed.payment is not None
        and failed.payment.state is PaymentState.FAILED
        and failed.payment.failure_reason
    )
    intent = {
        "id": "pi_1",
        "metadata": {"order_number": "TW1"},
        "last_payment_error": {"decline_code": "expired_card"},
    }
    declined = p.parse_notification(signed(event("payment_intent.payment_failed", intent)))
    assert (
        declined.payment is not None
        and declined.payment.failure_reason == "Your card has expired. Use another card."
    )
    refund = {"id": "re_1", "status": "succeeded", "metadata": {"out_request_no": "TR1"}}
    note = p.parse_notification(signed(event("refund.updated", refund)))
    assert note.payment is None and note.refund is not None and note.refund.state is RefundState.SUCCEEDED
    other = p.parse_notification(signed(event("customer.created", {"id": "cus_1"})))
    assert other.payment is None and other.refund is None
    with pytest.raises(NotificationRefused, match="two orders"):
        p.parse_notification(
            signed(event("checkout.session.completed", {**SESSION, "client_reference_id": "TW2"}))
        )


def test_decline_messages() -> None:
    assert decline_message(None) is None
    assert decline_message({"code": "card_declined", "decline_code": "insufficient_funds"}) == (
        "Your card has insufficient funds. Try another card."
    )
    assert decline_message({"code": "card_declined", "decline_code": "new_code"}).startswith(
        "Your card was declined"
    )
    assert decline_message({"code": "weird", "message": "Something odd."}) == "Something odd."
    assert decline_message({"code": "weird"}) == GENERIC


# --- Alipay ----------------------------------------------------------------------------------

ALIPAY_KEYS = KeyPair.generate()
APP_KEYS = KeyPair.generate()


def alipay(seller: str | None = "2088") -> AlipayProvider:
    return AlipayProvider(
        app_id="app1",
        private_key=APP_KEYS.private_pem,
        alipay_public_key=ALIPAY_KEYS.public_pem,
        gateway="http://127.0.0.1:9/gateway.do",
        seller_id=seller,
    )


def notify(keys: KeyPair = ALIPAY_KEYS, **fields: str) -> IncomingRequest:
    params = {
        "app_id": "app1", "seller_id": "2088", "out_trade_no": "TW1", "trade_no": "2026A", "notify_id": "n1",
        "trade_status": "TRADE_SUCCESS", "total_amount": "72.00", "sign_type": "RSA2", **fields,
    }  # fmt: skip
    params["sign"] = keys.sign(signing_string(params, exclude=("sign", "sign_type")))
    return req(params)


def test_alipay_rsa2_notifications() -> None:
    note = alipay().parse_notification(notify())
    assert note.dedupe_key == "n1:TRADE_SUCCESS" and note.payment is not None
    assert (note.payment.state, note.payment.amount_minor, note.payment.provider_ref) == (
        PaymentState.PAID,
        7200,
        "2026A",
    )
    finished = alipay().parse_notification(notify(trade_status="TRADE_FINISHED", notify_id="n2"))
    assert finished.payment is not None and finished.payment.state is PaymentState.PAID
    closed = alipay().parse_notification(notify(trade_status="TRADE_CLOSED"))
    assert closed.payment is not None and closed.payment.state is PaymentState.EXPIRED
    for bad, match in (
        (notify(keys=KeyPair.generate()), "signature"),
        (notify(app_id="app2"), "app"),
        (notify(seller_id="2099"), "seller"),
        (notify(sign_type="RSA"), "signature"),
    ):
        with pytest.raises(NotificationRefused, match=match):
            alipay().parse_notification(bad)
    assert alipay(seller=None).parse_notification(notify(seller_id="2099")).payment is not None


# --- matching a verified report with the stored order ------------------------------------------


def test_reports_must_match_the_order() -> None:
    now = datetime.now(UTC)
    order = Order("TW1", "a", "alipay", "qr", OrderState.PENDING, "CNY", 7200, "7.2", None, 10, None, None,
                  None, None, None, now, now + timedelta(hours=1))  # fmt: skip
    ok = PaymentReport("TW1", PaymentState.PAID, 7200, "CNY", "2026A")
    assert mismatch(order, ok, provider="alipay") is None
    assert "through alipay, not epay" in (mismatch(order, ok, provider="epay") or "")
    assert "amount 71.99 CNY" in (
        mismatch(order, PaymentReport("TW1", PaymentState.PAID, 7199, "CNY"), provider="alipay") or ""
    )
    assert "currency" in (
        mismatch(order, PaymentReport("TW1", PaymentState.PAID, 7200, "USD"), provider="alipay") or ""
    )
    assert "no amount" in (
        mismatch(order, PaymentReport("TW1", PaymentState.PAID, None, "CNY"), provider="alipay") or ""
    )
    known = dataclasses.replace(order, provider_ref="2026B")
    assert "another checkout" in (mismatch(known, ok, provider="alipay") or "")
