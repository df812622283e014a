"""Stripe decline and error codes in plain words, as the customer should read them.

From Stripe's documented decline codes (``last_payment_error.decline_code``) and error codes
(``last_payment_error.code``). Anything unknown falls back to Stripe's own message, and then
to a generic sentence: a customer always gets words, never a code alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DECLINES: dict[str, str] = {
    "insufficient_funds": "Your card has insufficient funds. Try another card.",
    "generic_decline": (
        "Your bank declined the payment without giving a reason. Contact your bank or try another card."
    ),
    "do_not_honor": "Your bank declined the payment. Contact your bank or try another card.",
    "lost_card": "The card was reported lost and cannot be used. Use another card.",
    "stolen_card": "The card was reported stolen and cannot be used. Use another card.",
    "expired_card": "Your card has expired. Use another card.",
    "incorrect_cvc": "The security code (CVC) is incorrect. Check it and try again.",
    "invalid_cvc": "The security code (CVC) is invalid. Check it and try again.",
    "incorrect_number": "The card number is incorrect. Check it and try again.",
    "invalid_number": "The card number is invalid. Check it and try again.",
    "invalid_expiry_month": "The card's expiry month is invalid.",
    "invalid_expiry_year": "The card's expiry year is invalid.",
    "incorrect_zip": "The postal code does not match the card. Check it and try again.",
    "card_not_supported": "This card does not support this kind of purchase. Use another card.",
    "currency_not_supported": "This card cannot pay in this currency. Use another card or currency.",
    "card_velocity_exceeded": (
        "The card has reached its spending limit for now. Try later or use another card."
    ),
    "withdrawal_count_limit_exceeded": "The card has reached its spending limit. Use another card.",
    "fraudulent": "The payment was declined as possibly fraudulent. Contact your bank.",
    "merchant_blacklist": "The payment was declined. Use another payment method.",
    "pickup_card": "The bank asked for this card to be retained. Contact your bank.",
    "restricted_card": "This card is restricted. Contact your bank or use another card.",
    "security_violation": "The payment was declined for security reasons. Contact your bank.",
    "service_not_allowed": "Your bank does not allow this kind of payment. Contact your bank.",
    "transaction_not_allowed": "Your bank does not allow this payment. Contact your bank.",
    "processing_error": "An error occurred while processing the card. Try again in a moment.",
    "issuer_not_available": "Your bank could not be reached. Try again in a moment.",
    "try_again_later": "The payment could not be completed right now. Try again in a moment.",
    "authentication_required": (
        "Your bank requires you to confirm the payment (3D Secure). Try again and confirm."
    ),
    "approve_with_id": "The payment could not be authorised. Try again or contact your bank.",
    "call_issuer": "Your bank declined the payment. Call your bank.",
    "card_declined": "Your card was declined. Contact your bank or try another card.",
    "payment_intent_authentication_failure": (
        "Confirming the payment with your bank (3D Secure) failed. Try again."
    ),
    "payment_method_not_available": "This payment method is not available right now. Try another one.",
    "highest_risk_level": "The payment was blocked as high risk. Use another card or contact support.",
    "elevated_risk_level": "The payment is held for review. You will be credited if it is approved.",
}

GENERIC = "The payment did not go through. Try again or use another payment method."


def decline_message(error: Mapping[str, Any] | None) -> str | None:
    """Plain words for a ``last_payment_error`` (or a charge outcome); ``None`` when no error."""
    if not error:
        return None
    for field in ("decline_code", "code", "reason"):
        code = error.get(field)
        if isinstance(code, str) and code in DECLINES:
            return DECLINES[code]
    message = error.get("message")
    return message if isinstance(message, str) and message else GENERIC
