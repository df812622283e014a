"""Stripe: Checkout Sessions, signed webhooks and the Refunds API through the official SDK."""

from tollway.payments.stripe.provider import StripeProvider

__all__ = ["StripeProvider"]
